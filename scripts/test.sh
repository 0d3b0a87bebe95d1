#!/usr/bin/env bash
# Runs every check and test of rexec; .ci/run calls exactly this.
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }

step "tools (pinned in tools/go.mod, built into .bin/)"
bash scripts/tools.sh
export PATH="$PWD/.bin:$PATH"

step "example clients' toolchains: Debian packages and npm ci, pinned (scripts/install-examples.sh)"
bash scripts/install-examples.sh

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

step "go test -race (all packages)"
go test -race -count=1 -timeout 15m ./...

step "fuzz the raw socket decoders, briefly (README: how to run longer)"
for target in FuzzFrame FuzzHandshake FuzzCommand; do
  # a short minimize time: minimizing one new input may otherwise take the whole budget
  go test -run '^$' -fuzz "^${target}\$" -fuzztime 10s -fuzzminimizetime 1s ./rawsock
done

step "benchmarks, once each, so that they cannot rot"
go test -run '^$' -bench . -benchtime 1x ./...

step "fuzz the token parser briefly (FuzzParseToken)"
go test -run '^$' -fuzz '^FuzzParseToken$' -fuzztime 10s -parallel 1 ./interceptors

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
