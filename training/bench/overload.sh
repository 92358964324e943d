#!/usr/bin/env bash
# Overload: knockoff-serve with its defaults (plus any flags given) under wrk, a fresh server
# per run so each peak RSS (VmHWM) is that run's own:
#   batch-c4     4 connections of 1,000-listing requests (the reference rate)
#   batch-c256   256 connections of 1,000-listing requests
#   single-c4    4 connections of single listings
#   single-c1000 1,000 connections of single listings
# Prints one line per run: answers/s, listings/s (200s only), non-2xx, socket errors,
# p50/p99 and peak RSS; raw wrk output goes to $OUT.
#
#   training/bench/overload.sh [SERVER FLAGS...]
#
# Environment: KNOCKOFF_BENCH_BIN (default target/release/knockoff-serve), KNOCKOFF_BENCH_DATA
# (default /tmp/knockoff-bench/data, written by make_data.py when missing), SECS (15),
# OUT (default /tmp/knockoff-overload/<timestamp>), PORT (8091).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BIN="${KNOCKOFF_BENCH_BIN:-$ROOT/target/release/knockoff-serve}"
DATA="${KNOCKOFF_BENCH_DATA:-/tmp/knockoff-bench/data}"
SECS="${SECS:-15}"
PORT="${PORT:-8091}"
OUT="${OUT:-/tmp/knockoff-overload/$(date -u +%Y%m%dT%H%M%SZ)}"
LUA="$ROOT/training/bench/post_bodies.lua"
mkdir -p "$OUT"
command -v wrk > /dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
[ -s "$DATA/batch-1000.jsonl" ] || python3 training/bench/make_data.py --out "$DATA" --rows 10 >&2
ulimit -n 65536 2>/dev/null || true

PID=
stop() { [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; PID=; }
trap stop EXIT

run() { # NAME CONNS BODIES LISTINGS_PER_REQUEST
  local name=$1 conns=$2 bodies=$3 per=$4 threads=2
  "$BIN" --model models/default --addr "127.0.0.1:$PORT" "${FLAGS[@]}" > "$OUT/server.$name.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT/v2/health/ready" > /dev/null && break
    sleep 0.1
  done
  timeout $((SECS + 30)) wrk -t$threads -c"$conns" -d"${SECS}s" --latency \
    -s "$LUA" "http://127.0.0.1:$PORT" -- "$bodies" > "$OUT/wrk.$name" 2>&1 || true
  local hwm rejected
  hwm=$(awk '$1 == "VmHWM:" { printf "%.0f", $2 / 1024 }' "/proc/$PID/status")
  rejected=$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^knockoff_rejected_requests_total/ { s += $2 } END { print s + 0 }')
  stop
  awk -v name="$name" -v per="$per" -v hwm="$hwm" -v rej="$rejected" -v secs="$SECS" '
    /^requests / { n = $2; t = $4; rps = $6; err = $0; sub(/.*socket errors /, "", err); sub(/; non-2xx.*/, "", err) }
    /^requests / { non2xx = $NF }
    /^latency p50/ { p50 = $3; p99 = $9 }
    END { printf "%-13s answers/s %8.1f  listings/s %9.0f  non-2xx %7d (rejected %d)  socket errors [%s]  p50 %s ms  p99 %s ms  peak RSS %s MiB\n",
                 name, rps, (n - non2xx) * per / t, non2xx, rej, err, p50, p99, hwm }' "$OUT/wrk.$name" | tee -a "$OUT/summary.txt"
}

FLAGS=("$@")
echo "load $(cut -d' ' -f1-3 /proc/loadavg); flags: ${FLAGS[*]:-(defaults)}" | tee "$OUT/summary.txt"
run batch-c4 4 "$DATA/batch-1000.jsonl" 1000
run batch-c256 256 "$DATA/batch-1000.jsonl" 1000
run single-c4 4 "$DATA/single.jsonl" 1
run single-c1000 1000 "$DATA/single.jsonl" 1
echo "raw output in $OUT" >&2
