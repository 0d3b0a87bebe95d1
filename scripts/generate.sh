#!/usr/bin/env bash
# Lints the protos and regenerates gen/ with the pinned local plugins.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .bin/buf ] || bash scripts/tools.sh
export PATH="$PWD/.bin:$PATH"
buf lint
rm -rf gen
buf generate
