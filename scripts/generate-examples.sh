#!/usr/bin/env bash
# Regenerates the example clients' stubs from proto/, each with the
# buf.gen.yaml beside it and local plugins only (no remote registry):
#   examples/python/gen/          protoc's python output + grpc_python_plugin (Debian)
#   examples/typescript/src/gen/  protoc-gen-es from node_modules (npm ci)
# scripts/install-examples.sh installs the plugins; CI fails when the committed
# stubs differ from what this writes.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .bin/buf ] || bash scripts/tools.sh
export PATH="$PWD/.bin:$PATH"
for need in protoc grpc_python_plugin examples/typescript/node_modules/.bin/protoc-gen-es; do
  if ! command -v "$need" >/dev/null; then
    echo "generate-examples: $need is missing: run scripts/install-examples.sh" >&2
    exit 1
  fi
done
(cd examples/python && buf generate)
(cd examples/typescript && buf generate)
