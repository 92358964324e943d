#!/usr/bin/env bash
# Issue 10: the serving restructure alone (325cdb8: src/data, src/serve, src/http, src/batch.rs)
# beside its parent 407920a, in the same run. Needs both built, each with its own model:
#   git worktree add /tmp/old 407920a && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release)
#   git worktree add /tmp/wt325 325cdb8 && (cd /tmp/wt325 && CARGO_TARGET_DIR=/tmp/t325 cargo build --release)
# and /tmp/knockoff-bench/data from training/bench/run.sh. Run from the repository root.
set -u
B=/tmp/knockoff-bench/data; L=training/bench/post_bodies.lua
run_one() { # name cmd...
  local name=$1; shift
  "$@" > /tmp/cmp10-$name.log 2>&1 & local pid=$!
  for _ in $(seq 1 300); do curl -s -o /dev/null -X POST -H 'content-type: application/json' -d '{"listings":[]}' http://127.0.0.1:8080/v1/score && break; sleep 0.1; done
  wrk -t2 -c64 -d3s -s $L http://127.0.0.1:8080 -- $B/single.jsonl > /dev/null 2>&1
  local s=$(wrk -t2 -c64 -d15s --timeout 5s --latency -s $L http://127.0.0.1:8080 -- $B/single.jsonl 2>&1)
  local b=$(wrk -t2 -c4 -d15s --timeout 5s --latency -s $L http://127.0.0.1:8080 -- $B/batch-1000.jsonl 2>&1)
  local l=$(wrk -t2 -c4 -d15s --timeout 5s --latency -s $L http://127.0.0.1:8080 -- $B/single.jsonl 2>&1)
  echo "$name | single c64 $(echo "$s" | awk '/Requests\/sec/{print $2}') req/s p50 $(echo "$s" | awk '/ 50%/{print $2}') p99 $(echo "$s" | awk '/ 99%/{print $2}') | c4 single $(echo "$l" | awk '/Requests\/sec/{print $2}') p50 $(echo "$l" | awk '/ 50%/{print $2}') | batch c4 $(echo "$b" | awk '/Requests\/sec/{print $2*1000}') listings/s | load $(cut -d' ' -f1 /proc/loadavg)"
  kill $pid; wait $pid 2>/dev/null
}
batch_one() { # name binary model
  local t0=$(date +%s.%N)
  $2 --model $3 --input training/data/listings-train.csv.gz --output /tmp/cmp10-$1.scores.csv > /tmp/cmp10-$1.batch.log 2>&1
  local t1=$(date +%s.%N)
  echo "$1 | batch file 206,078 rows: $(python3 -c "print(f'{($t1-$t0):.2f} s, {206078/($t1-$t0):,.0f} listings/s')") | $(grep -o '[0-9,.]* listings/s' /tmp/cmp10-$1.batch.log | head -1)"
}
for round in 1 2; do
  run_one before /tmp/old-target/release/knockoff-serve --model /tmp/old/models/default --addr 127.0.0.1:8080
  run_one restructure /tmp/t325/release/knockoff-serve --model /tmp/wt325/models/default --addr 127.0.0.1:8080
done
for round in 1 2 3; do
  batch_one before /tmp/old-target/release/knockoff-score /tmp/old/models/default
  batch_one restructure /tmp/t325/release/knockoff-score /tmp/wt325/models/default
done
