#!/usr/bin/env bash
# Throughput of stdin through a Session against the same pipeline run locally,
# in one run, on one random file (not part of CI: it needs 1 GiB in /tmp).
#   bash scripts/measure-stdin.sh [SIZE_MIB]     (default 1024)
# Starts its own rexecd on 127.0.0.1 with a throwaway key file and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
tmp=$(mktemp -d /tmp/rexec-measure.XXXXXX)
trap 'kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/rexec" ./cmd/rexec
go build -o "$tmp/rexecd" ./cmd/rexecd
head -c $((mib << 20)) /dev/urandom > "$tmp/data"
HOME="$tmp/home" "$tmp/rexecd" --listen 127.0.0.1:0 --addr-file "$tmp/addr" 2> "$tmp/rexecd.log" &
srv=$!
for _ in $(seq 100); do [ -s "$tmp/addr" ] && break; sleep 0.1; done
export REXEC_ADDR=$(cat "$tmp/addr") REXEC_KEY_FILE="$tmp/home/.config/rexec/keys"
cat "$tmp/data" > /dev/null # page cache warm for both
t0=$(date +%s.%N); local_sum=$(cat "$tmp/data" | sha256sum)
t1=$(date +%s.%N); remote_sum=$(cat "$tmp/data" | "$tmp/rexec" run -- sha256sum)
t2=$(date +%s.%N)
[ "$local_sum" = "$remote_sum" ] || { echo "hash mismatch: $local_sum vs $remote_sum" >&2; exit 1; }
awk -v s=$((mib << 20)) -v a="$t0" -v b="$t1" -v c="$t2" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
  l = b - a; r = c - b
  printf "%d MiB, hashes match, load %s\n", s / 1048576, load
  printf "local  cat | sha256sum:             %6.2f s %7.1f MB/s\n", l, s / l / 1e6
  printf "remote cat | rexec run -- sha256sum: %6.2f s %7.1f MB/s\n", r, s / r / 1e6
  printf "remote/local throughput: %.2f\n", l / r
}'
