#!/usr/bin/env bash
# Installs what the example clients in examples/ need, pinned:
#   Debian: protoc and grpc_python_plugin (to generate), python3-grpcio and
#           python3-protobuf (to run examples/python with /usr/bin/python3);
#   npm:    examples/typescript's package-lock.json (npm ci): protoc-gen-es,
#           connect-node, tsc (`npm run build` compiles the client).
# Pinned to the upstream versions that examples/python/gen was generated
# with; the Debian revision after them floats, because Debian replaces a
# revision in a point release (3.21.12-3 became 3.21.12-3+deb12u1) and the old
# one leaves the archive. A revision that changed the generated code would
# fail CI's freshness check. To move on: bump the versions here, run
# scripts/generate-examples.sh and commit what changes.
#   bash scripts/install-examples.sh
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(
  'protobuf-compiler=3.21.12-*'
  'protobuf-compiler-grpc=1.51.1-*'
  'python3-grpcio=1.51.1-*'
  'python3-protobuf=3.21.12-*'
)

# Warm path: every package already at its pinned version costs no apt-get.
missing=()
for d in "${debs[@]}"; do
  have=$(dpkg-query -W -f='${db:Status-Abbrev}${Version}' "${d%%=*}" 2>/dev/null || true)
  # shellcheck disable=SC2053 # the pin is a glob on purpose
  [[ "$have" == "ii "${d#*=} ]] || missing+=("$d")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  # Another apt-get on the machine holds the lock for a while: wait for it.
  lock=(-o DPkg::Lock::Timeout=300)
  "${sudo[@]}" apt-get "${lock[@]}" update -qq
  "${sudo[@]}" apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm ci installs exactly the lockfile, and fails if package.json disagrees
# with it (or, with .npmrc's engine-strict, if node is too old for a package).
(cd examples/typescript && npm ci --no-audit --no-fund --prefer-offline)
