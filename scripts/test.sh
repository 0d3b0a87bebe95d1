#!/usr/bin/env bash
# Runs every check and test of rexec; .ci/run calls exactly this.
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# step prints a section's title, and how long the one before it took (so a
# CI log says what each part costs).
step() {
	local now=$SECONDS
	[ -n "${step_name:-}" ] && printf '== %s: %ds\n' "$step_name" $((now - step_start))
	step_name=$1 step_start=$now
	printf '\n== %s\n' "$*"
}
trap '[ -n "${step_name:-}" ] && printf "== %s: %ds (total %ds)\n" "$step_name" $((SECONDS - step_start)) $SECONDS' EXIT

step "tools (pinned in tools/go.mod, built into .bin/)"
bash scripts/tools.sh
export PATH="$PWD/.bin:$PATH"

step "example clients' toolchains: Debian packages and npm ci, pinned (scripts/install-examples.sh)"
bash scripts/install-examples.sh

step "Debian packages the tests use (bash-completion: rexec completion bash is tested in a real bash)"
if [ ! -f /usr/share/bash-completion/bash_completion ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bash-completion
  else
    echo "bash-completion is not installed and cannot be installed here: its test will skip" >&2
  fi
fi

step "buf lint, and gen/ regenerated with no diff"
bash scripts/generate.sh
# Against the index, so that a regenerated-and-staged gen/ passes too.
if ! git diff --quiet -- gen || [ -n "$(git ls-files --others --exclude-standard -- gen)" ]; then
  git diff --stat -- gen
  git ls-files --others --exclude-standard -- gen
  echo "gen/ is stale: run scripts/generate.sh and commit the result" >&2
  exit 1
fi

step "gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^gen/'))
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
go vet ./...

step "rexec cross-compiles for the laptops it runs on (build only)"
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64; do
  CGO_ENABLED=0 GOOS=${target%/*} GOARCH=${target#*/} go build -trimpath -o /dev/null ./cmd/rexec
done

step "go test -race (all packages)"
go test -race -count=1 -timeout 15m ./...

step "fuzz the raw socket decoders, briefly (README: how to run longer)"
# Budgets are counts of executions, not seconds: Go 1.26's fuzz coordinator can
# fail a target with a bare "context deadline exceeded" when a -fuzztime
# duration ends while a worker is mid-call on a loaded machine (golang/go#75804,
# fixed in Go 1.27). A count has no deadline to race; each is ~10 s idle here.
fuzz() { # TARGET PACKAGE COUNT [FLAGS...]
  go test -run '^$' -fuzz "^$1\$" -fuzztime "$3x" -fuzzminimizetime 100x "${@:4}" "$2"
}
fuzz FuzzFrame ./rawsock 100000
fuzz FuzzHandshake ./rawsock/rawserver 60000
fuzz FuzzCommand ./rawsock/rawserver 60000

step "benchmarks, once each, so that they cannot rot"
go test -run '^$' -bench . -benchtime 1x ./...

step "fuzz the token parser briefly (FuzzParseToken)"
fuzz FuzzParseToken ./interceptors 100000 -parallel 1

step "examples/: the Python and TypeScript stubs regenerated with no diff"
bash scripts/generate-examples.sh
stubs=(examples/python/gen examples/typescript/src/gen)
if ! git diff --quiet -- "${stubs[@]}" || [ -n "$(git ls-files --others --exclude-standard -- "${stubs[@]}")" ]; then
  git diff --stat -- "${stubs[@]}"
  git ls-files --others --exclude-standard -- "${stubs[@]}"
  echo "examples' stubs are stale: run scripts/generate-examples.sh and commit the result" >&2
  exit 1
fi

step "deploy/: the systemd unit (systemd-analyze verify, security), the Kubernetes manifests strictly decoded (a module of its own)"
if ! command -v systemd-analyze >/dev/null; then
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends systemd
fi
(cd deploy && go vet ./... && go test -count=1 ./...)

step "buf breaking against the previous commit (README: how to decide a break)"
bash scripts/buf-breaking.sh
