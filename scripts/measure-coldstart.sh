#!/usr/bin/env bash
# Cold start of rexec builds side by side: `rexec --help` and `rexec run -n -- true`
# against one local rexecd, RUNS times each, interleaved (build A, B, C, A, B, C, …)
# so that a noisy machine weighs on every build alike. Prints the median and the
# mean of the middle half per build and command, and each build's size and the
# sum of its package inits (GODEBUG=inittrace=1). Not part of CI.
#   bash scripts/measure-coldstart.sh RUNS DIR...   (each DIR holds a rexec binary)
# e.g. after `go build -o /tmp/a/ ./cmd/rexec`, a change, `go build -o /tmp/b/ ./cmd/rexec`:
#   bash scripts/measure-coldstart.sh 200 /tmp/a /tmp/b
set -euo pipefail
cd "$(dirname "$0")/.."
runs=$1
shift
tmp=$(mktemp -d /tmp/rexec-coldstart.XXXXXX)
trap 'kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/rexecd" ./cmd/rexecd
HOME="$tmp/home" "$tmp/rexecd" --listen 127.0.0.1:0 --addr-file "$tmp/addr" 2> "$tmp/rexecd.log" &
srv=$!
for _ in $(seq 100); do [ -s "$tmp/addr" ] && break; sleep 0.1; done
export REXEC_ADDR=$(cat "$tmp/addr") REXEC_KEY_FILE="$tmp/home/.config/rexec/keys"

# Each binary is measured as a fresh copy written by cp: how a file was written
# shapes its page cache (large folios or not), and so its page faults. A copy of
# the very binary the linker wrote started 20% faster here than the original.
builds=()
declare -A label
for d in "$@"; do
  copy="$tmp/build$((${#builds[@]} + 1))"
  mkdir "$copy" && cp "$d/rexec" "$copy/rexec"
  builds+=("$copy")
  label[$copy]=$d
  "$copy/rexec" --help > /dev/null # warm the page cache, and check that each build works
  "$copy/rexec" run -n -- true
done
set -- "${builds[@]}"
for ((i = 0; i < runs; i++)); do
  for d in "$@"; do
    for what in help run; do
      t0=$EPOCHREALTIME
      if [ $what = help ]; then "$d/rexec" --help > /dev/null; else "$d/rexec" run -n -- true; fi
      t1=$EPOCHREALTIME
      echo "$d $what $t0 $t1" >> "$tmp/times"
    done
  done
done
printf 'load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-36s %-6s %10s %12s\n' build cmd "median ms" "mid-mean ms"
for d in "$@"; do
  for what in help run; do
    awk -v d="$d" -v w="$what" '$1 == d && $2 == w { printf "%.3f\n", ($4 - $3) * 1000 }' "$tmp/times" | sort -n > "$tmp/sorted"
    awk -v d="${label[$d]}" -v w="$what" '{ v[NR] = $1 } END {
      med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      lo = int(NR / 4) + 1; hi = NR - int(NR / 4); s = 0
      for (i = lo; i <= hi; i++) s += v[i]
      printf "%-36s %-6s %10.2f %12.2f\n", d, w, med, s / (hi - lo + 1) }' "$tmp/sorted"
  done
done
for d in "$@"; do # the sum of package inits, median of 21 runs (one run is noisy)
  for _ in $(seq 21); do
    GODEBUG=inittrace=1 "$d/rexec" --help 2>&1 > /dev/null | awk '/^init / { ms += $5; n++ } END { printf "%.3f %d\n", ms, n }'
  done | sort -n | awk -v d="${label[$d]}" -v size="$(stat -c %s "$d/rexec")" \
    'NR == 11 { printf "%-36s %10d bytes  %d inits, median %.3f ms of init\n", d, size, $2, $1 }'
done
