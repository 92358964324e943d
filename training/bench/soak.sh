#!/usr/bin/env bash
# Soak: knockoff-serve under steady mixed load (single listings and 100-listing batches at
# once) for N minutes, one CSV line a minute: RSS, peak RSS, open file descriptors, and per
# load its requests/s, p50, p99 and errors.
#
#   training/bench/soak.sh [MINUTES]        (default 30)
#
# Environment (defaults measured on the 2-core machine of BENCHMARKS.md to give about half
# of the server's maximum listings/s):
#   KNOCKOFF_SOAK_BIN      knockoff-serve binary (default target/release/knockoff-serve)
#   KNOCKOFF_SOAK_MODEL    model directory (default models/default)
#   KNOCKOFF_SOAK_DIR      output directory (default /tmp/knockoff-soak/<timestamp>)
#   KNOCKOFF_SOAK_DATA     bench inputs from make_data.py (default /tmp/knockoff-bench/data;
#                          written when missing)
#   SINGLE_CONNS, SINGLE_DELAY_MS   single-listing connections and their mean pause (4, 2)
#   BATCH_CONNS, BATCH_DELAY_MS     100-listing batch connections and their pause (2, 20)
#   KNOCKOFF_SOAK_PORT     (default 8090)
# Writes soak.csv, server.log and each minute's wrk output into the output directory.
# Needs wrk (apt-get install -y wrk) and python3.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

MINUTES="${1:-30}"
BIN="${KNOCKOFF_SOAK_BIN:-$ROOT/target/release/knockoff-serve}"
MODEL="${KNOCKOFF_SOAK_MODEL:-$ROOT/models/default}"
OUT="${KNOCKOFF_SOAK_DIR:-/tmp/knockoff-soak/$(date -u +%Y%m%dT%H%M%SZ)}"
DATA="${KNOCKOFF_SOAK_DATA:-/tmp/knockoff-bench/data}"
PORT="${KNOCKOFF_SOAK_PORT:-8090}"
SINGLE_CONNS="${SINGLE_CONNS:-4}"
SINGLE_DELAY_MS="${SINGLE_DELAY_MS:-2}"
BATCH_CONNS="${BATCH_CONNS:-2}"
BATCH_DELAY_MS="${BATCH_DELAY_MS:-20}"
LUA="$ROOT/training/bench/post_bodies.lua"

[[ "$MINUTES" =~ ^[1-9][0-9]*$ ]] || { echo "MINUTES must be a positive whole number (got $MINUTES)" >&2; exit 2; }
command -v wrk > /dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no server binary at $BIN: cargo build --release --bin knockoff-serve" >&2; exit 1; }
mkdir -p "$OUT"
if [ ! -s "$DATA/single.jsonl" ] || [ ! -s "$DATA/batch-1000.jsonl" ]; then
  python3 training/bench/make_data.py --out "$DATA" --rows 10 >&2
fi
# 100-listing batches cut from the 1,000-listing ones.
python3 - "$DATA/batch-1000.jsonl" "$OUT/batch-100.jsonl" <<'PY'
import json, sys
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as dst:
    for line in src:
        listings = json.loads(line)["listings"]
        for i in range(0, len(listings), 100):
            dst.write(json.dumps({"listings": listings[i:i + 100]}) + "\n")
PY

"$BIN" --model "$MODEL" --addr "127.0.0.1:$PORT" > "$OUT/server.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$PORT/v2/health/ready" > /dev/null && break
  kill -0 "$PID" 2>/dev/null || { echo "server exited; see $OUT/server.log" >&2; exit 1; }
  sleep 0.1
done

status_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$PID/status"; }
# From the Lua summary lines of post_bodies.lua: requests/s, p50, p99 (ms), errors.
summary() {
  awk '/^requests / { rps = $6; err = $0; sub(/.*socket errors /, "", err); gsub(/,/, "", err) }
       /^latency p50/ { p50 = $3; p99 = $9 }
       END { printf "%s,%s,%s,%s", rps, p50, p99, err }' "$1"
}

echo "minute,rss_mib,peak_rss_mib,open_fds,single_req_per_s,single_p50_ms,single_p99_ms,single_errors,batch_req_per_s,batch_p50_ms,batch_p99_ms,batch_errors,listings_per_s" > "$OUT/soak.csv"
for minute in $(seq 1 "$MINUTES"); do
  WRK_DELAY_MS="$SINGLE_DELAY_MS" timeout 90 wrk -t1 -c"$SINGLE_CONNS" -d60s --timeout 5s \
    -s "$LUA" "http://127.0.0.1:$PORT" -- "$DATA/single.jsonl" > "$OUT/wrk.single.$minute" 2>&1 &
  SINGLE=$!
  WRK_DELAY_MS="$BATCH_DELAY_MS" timeout 90 wrk -t1 -c"$BATCH_CONNS" -d60s --timeout 5s \
    -s "$LUA" "http://127.0.0.1:$PORT" -- "$OUT/batch-100.jsonl" > "$OUT/wrk.batch.$minute" 2>&1 &
  BATCH=$!
  wait "$SINGLE" "$BATCH"
  kill -0 "$PID" 2>/dev/null || { echo "server died in minute $minute; see $OUT/server.log" >&2; exit 1; }
  rss=$(( $(status_kib VmRSS) / 1024 ))
  hwm=$(( $(status_kib VmHWM) / 1024 ))
  fds=$(ls "/proc/$PID/fd" | wc -l)
  s="$(summary "$OUT/wrk.single.$minute")"
  b="$(summary "$OUT/wrk.batch.$minute")"
  listings=$(awk -F, -v s="$s" -v b="$b" 'BEGIN { split(s, x, ","); split(b, y, ","); printf "%.0f", x[1] + 100 * y[1] }')
  echo "$minute,$rss,$hwm,$fds,$s,$b,$listings" | tee -a "$OUT/soak.csv"
done
echo "wrote $OUT/soak.csv" >&2
