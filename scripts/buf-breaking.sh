#!/usr/bin/env bash
# buf breaking: the protos of HEAD against those of the previous commit
# (HEAD~1; after a merge, its first parent: main as it was before the merge),
# with buf.yaml's rules. The API's users are generated clients, so a breaking
# change must be a decision, not an accident: it passes only when a commit in
# HEAD~1..HEAD carries the trailer
#     API-Breaking-Change: <what breaks, and what generated clients must do>
# (README, "grpcurl and buf").
#   bash scripts/buf-breaking.sh [REPO_DIR]       (default: this repository)
# In a shallow clone without HEAD~1 it says so and passes: fetch one more
# commit (git fetch --deepen=1) to check.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
buf=${BUF:-$root/.bin/buf}
[ -x "$buf" ] || { bash "$root/scripts/tools.sh"; buf=$root/.bin/buf; }
cd "${1:-$root}"

against=HEAD~1
if ! git rev-parse -q --verify "$against^{commit}" >/dev/null; then
  if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
    echo "buf breaking: skipped: $against is not in this shallow clone (git fetch --deepen=1 to check)"
  else
    echo "buf breaking: skipped: HEAD is the first commit, there is nothing to compare with"
  fi
  exit 0
fi
if ! git cat-file -e "$against:buf.yaml" 2>/dev/null; then
  echo "buf breaking: skipped: $against has no buf.yaml"
  exit 0
fi

rc=0
out=$("$buf" breaking --against ".git#ref=$against" 2>&1) || rc=$?
if [ $rc = 0 ]; then
  echo "buf breaking: no breaking change against $against ($(git rev-parse --short "$against"))"
  exit 0
fi
echo "$out"
if [ $rc != 100 ]; then # buf's status for "found breaking changes"
  echo "buf breaking: buf failed (status $rc), see above" >&2
  exit 1
fi
why=$(git log --format='%(trailers:key=API-Breaking-Change,valueonly)' "$against..HEAD" | sed '/^[[:space:]]*$/d')
if [ -n "$why" ]; then
  echo "buf breaking: the changes above break the API, as decided in HEAD~1..HEAD:"
  echo "$why" | sed 's/^/  API-Breaking-Change: /'
  exit 0
fi
cat >&2 <<'EOF'
buf breaking: the changes above break the API for every generated client.
Add fields, messages or services instead (never renumber, rename or remove).
If the break is a decision, say so in the commit message's last paragraph:
    API-Breaking-Change: <what breaks, and what generated clients must do>
EOF
exit 1
