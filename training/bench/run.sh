#!/usr/bin/env bash
# Reproduces the measurements in BENCHMARKS.md, end to end, on this machine.
#
#   training/bench/run.sh [SECTION...]     from anywhere; SECTIONs run in the order given
#
# SECTION: scoring   knockoff-score file -> file (206k-row training file, 1M-row CSV), the
#                    fastText and TF-IDF+LR peers predicting the same rows file -> file, and
#                    `cargo bench --bench throughput` on both files
#          server    knockoff-serve, the trivial axum handler (benches/trivial_axum.rs) and the
#                    FastAPI+uvicorn TF-IDF+LR peer (1 and 2 workers) under wrk, one at a time
#          train     knockoff-train vs fastText train_supervised (and the TF-IDF+LR peer)
#          unfamiliar  knockoff-train with home,pets + 20% of brands held out, and peer_unseen.py
#          all       train unfamiliar scoring server
# Default: scoring server.
#
# Everything goes to $KNOCKOFF_BENCH_DIR (default /tmp/knockoff-bench): inputs in data/, binaries
# copied to bin/ (so that another engineer's `cargo build` cannot swap them mid-run), peer
# models, and results/<timestamp>/ with every raw log and summary.tsv (one line per figure:
# section, subject, metric, value, 1-minute load when the measurement started).
#
# Before every timed measurement the script waits (polling every 10 s, at most
# $KNOCKOFF_BENCH_LOAD_WAIT s, default 300) for the 1-minute load average to drop below
# $KNOCKOFF_BENCH_LOAD_MAX (default 1.0); the load it started at is recorded either way.
# Other knobs: KNOCKOFF_BENCH_SECONDS (wrk run length, default 15), KNOCKOFF_BENCH_REPS
# (knockoff-score repetitions per file, default 3), KNOCKOFF_BENCH_NO_BUILD=1 (use bin/ as is).
#
# Servers listen on 127.0.0.1 only (8080 knockoff, 8081 trivial axum, 8000 FastAPI); each is
# started, measured and stopped before the next, and an EXIT trap stops any that is left.
# Every load run is bounded by wrk's -d and by `timeout`.
# Needs: wrk (apt-get install -y wrk), curl, /usr/bin/time (apt-get install -y time), and the
# peers' venv (bash training/peers/setup.sh).

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BENCH="${KNOCKOFF_BENCH_DIR:-/tmp/knockoff-bench}"
BIN="$BENCH/bin"
DATA="$BENCH/data"
LOAD_MAX="${KNOCKOFF_BENCH_LOAD_MAX:-1.0}"
LOAD_WAIT="${KNOCKOFF_BENCH_LOAD_WAIT:-300}"
SECS="${KNOCKOFF_BENCH_SECONDS:-15}"
REPS="${KNOCKOFF_BENCH_REPS:-3}"
PY="${KNOCKOFF_BENCH_PYTHON:-$ROOT/training/peers/.venv/bin/python}"
MODEL="$ROOT/models/default"
TRAIN_GZ="$ROOT/training/data/listings-train.csv.gz"
FT_MODEL="$BENCH/peer_fasttext.bin"
LR_MODEL="$BENCH/peer_tfidf_lr.joblib"
RUN="$BENCH/results/$(date -u +%Y%m%dT%H%M%SZ)"
SUMMARY="$RUN/summary.tsv"
mkdir -p "$BIN" "$DATA" "$RUN"

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$RUN/run.log" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }
# record SECTION SUBJECT METRIC VALUE LOAD
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" | tee -a "$SUMMARY" >&2; }

# Waits for a quiet machine; prints the 1-minute load it ends at.
wait_quiet() {
  local waited=0 l
  while :; do
    l="$(load1)"
    if awk -v l="$l" -v m="$LOAD_MAX" 'BEGIN { exit !(l < m) }'; then break; fi
    if [ "$waited" -ge "$LOAD_WAIT" ]; then
      log "load still $l after ${waited}s: measuring anyway (recorded)"
      break
    fi
    sleep 10
    waited=$((waited + 10))
  done
  echo "$l"
}

machine() {
  {
    echo "date_utc: $(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "uptime: $(uptime)"
    echo "rustc: $(rustc -V 2>/dev/null || echo '?')"
    echo "wrk: $(wrk -v 2>&1 | head -1 || true)"
    echo "python: $("$PY" -V 2>&1 || echo '?')"
    echo "git now: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "binaries in $BIN built from: $(cat "$BIN/BUILT_FROM" 2>/dev/null || echo '?')"
    echo "model: $(grep -o '"version": *"[^"]*"' "$MODEL/metrics.json" | head -1)"
  } > "$RUN/machine.txt"
  cat "$RUN/machine.txt" >&2
}

build() {
  if [ "${KNOCKOFF_BENCH_NO_BUILD:-0}" = 1 ] && [ -x "$BIN/knockoff-serve" ]; then
    log "KNOCKOFF_BENCH_NO_BUILD=1: using $BIN as is"
    return
  fi
  log "building release binaries and the trivial axum bench"
  cargo build --release --bins 2>&1 | tail -2 >&2
  cp target/release/knockoff-train target/release/knockoff-score target/release/knockoff-serve "$BIN/"
  local exe name
  for name in trivial_axum throughput; do
    exe="$(cargo bench --bench "$name" --no-run --message-format=json 2>/dev/null \
      | grep '"executable":"[^"]' | grep "/$name-" | tail -1 \
      | sed 's/.*"executable":"\([^"]*\)".*/\1/')"
    [ -x "$exe" ] || { log "could not find the $name bench executable"; exit 1; }
    cp "$exe" "$BIN/$name"
  done
  {
    git rev-parse --short HEAD 2>/dev/null || echo '?'
    git status --short 2>/dev/null | grep -v '^??' | sed 's/^/  uncommitted: /' || true
  } | tr '\n' ' ' > "$BIN/BUILT_FROM"
  sha256sum "$BIN"/* > "$RUN/binaries.sha256"
}

data() {
  if [ ! -s "$DATA/listings-1m.csv" ] || [ ! -s "$DATA/single.jsonl" ] || [ ! -s "$DATA/batch-1000.jsonl" ]; then
    log "writing benchmark inputs to $DATA"
    python3 training/bench/make_data.py --out "$DATA" >&2
  fi
}

peer_models() {
  if [ ! -s "$FT_MODEL" ]; then
    log "training the fastText peer (peer_fasttext.py --save $FT_MODEL)"
    "$PY" training/peers/peer_fasttext.py --save "$FT_MODEL" > "$RUN/peer_fasttext.save.json" 2> "$RUN/peer_fasttext.save.err"
  fi
  if [ ! -s "$LR_MODEL" ]; then
    log "training the TF-IDF+LR peer (peer_tfidf_lr.py --save $LR_MODEL), about 2 minutes"
    "$PY" training/peers/peer_tfidf_lr.py --save "$LR_MODEL" > "$RUN/peer_tfidf_lr.save.json" 2> "$RUN/peer_tfidf_lr.save.err"
  fi
}

# /usr/bin/time -v fields from a log: wall seconds, peak RSS in MiB
time_wall() {
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s }' "$1"
}
time_rss() { awk -F': ' '/Maximum resident set size/ { printf "%.1f\n", $2 / 1024 }' "$1"; }
json_field() { "$PY" -c 'import json,sys; d=json.loads(open(sys.argv[1]).readlines()[-1]); v=d
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"; }

# ---------------------------------------------------------------------------------------------
section_train() {
  local l out="$BENCH/train-model"
  l="$(wait_quiet)"; log "knockoff-train (load $l)"
  /usr/bin/time -v "$BIN/knockoff-train" --out "$out" > "$RUN/train.knockoff.out" 2> "$RUN/train.knockoff.time"
  record train knockoff-train wall_s "$(time_wall "$RUN/train.knockoff.time")" "$l"
  record train knockoff-train peak_rss_mib "$(time_rss "$RUN/train.knockoff.time")" "$l"
  "$PY" - "$out/metrics.json" <<'EOF' | while IFS=$'\t' read -r k v; do record train knockoff-train "$k" "$v" "$l"; done
import json, sys
m = json.load(open(sys.argv[1])); v = m["validation"]
for k in ("roc_auc", "pr_auc", "recall_at_95_precision", "expected_calibration_error", "brier_score"):
    print(f"{k}\t{v[k]:.5f}")
print(f"train_s_reported\t{m['seconds']['total']:.1f}")
print(f"epochs\t{len(m['epochs'])} (best {m['best_epoch']})")
EOF

  l="$(wait_quiet)"; log "fastText peer training (load $l)"
  /usr/bin/time -v "$PY" training/peers/peer_fasttext.py --save "$FT_MODEL" \
    > "$RUN/train.fasttext.json" 2> "$RUN/train.fasttext.time"
  record train fasttext process_wall_s "$(time_wall "$RUN/train.fasttext.time")" "$l"
  record train fasttext train_supervised_s "$(json_field "$RUN/train.fasttext.json" train_s)" "$l"
  record train fasttext text_prep_s "$(json_field "$RUN/train.fasttext.json" prep_s)" "$l"
  record train fasttext peak_rss_mib "$(time_rss "$RUN/train.fasttext.time")" "$l"
  for k in roc_auc pr_auc recall_at_95p ece_15; do
    record train fasttext "$k" "$(json_field "$RUN/train.fasttext.json" "valid.$k")" "$l"
  done
  record train fasttext predict_valid_rows_per_s "$(json_field "$RUN/train.fasttext.json" predict_rows_per_s)" "$l"
  record train fasttext predict_valid_x10_rows_per_s "$(json_field "$RUN/train.fasttext.json" predict_repeat_rows_per_s)" "$l"

  l="$(wait_quiet)"; log "TF-IDF+LR peer training (load $l)"
  /usr/bin/time -v "$PY" training/peers/peer_tfidf_lr.py --save "$LR_MODEL" \
    > "$RUN/train.tfidf.json" 2> "$RUN/train.tfidf.time"
  record train tfidf_lr process_wall_s "$(time_wall "$RUN/train.tfidf.time")" "$l"
  record train tfidf_lr train_s "$(json_field "$RUN/train.tfidf.json" train_s)" "$l"
  record train tfidf_lr peak_rss_mib "$(time_rss "$RUN/train.tfidf.time")" "$l"
  for k in roc_auc pr_auc recall_at_95p ece_15; do
    record train tfidf_lr "$k" "$(json_field "$RUN/train.tfidf.json" "valid.$k")" "$l"
  done
}

section_unfamiliar() {
  local l out="$BENCH/holdout"
  l="$(wait_quiet)"; log "knockoff-train with home,pets and 20% of brands held out (load $l)"
  /usr/bin/time -v "$BIN/knockoff-train" --out "$out" --holdout-categories home,pets --holdout-brand-share 0.2 \
    > "$RUN/unfamiliar.knockoff.out" 2> "$RUN/unfamiliar.knockoff.time"
  grep 'unfamiliar brands/categories' "$RUN/unfamiliar.knockoff.out" >&2
  record unfamiliar knockoff line "$(grep 'unfamiliar brands/categories' "$RUN/unfamiliar.knockoff.out")" "$l"
  # Per group on the validation file, with the hold-out model's own block threshold: the
  # held-out categories are the same rows as in peer_unseen.py (brand selection differs).
  "$BIN/knockoff-score" --model "$out" --input "$ROOT/training/data/listings-valid.csv.gz" \
    --output "$BENCH/holdout-valid.csv" > "$RUN/unfamiliar.knockoff-score.out" 2>&1
  "$PY" training/bench/unfamiliar_groups.py --scores "$BENCH/holdout-valid.csv" \
    --categories home,pets > "$RUN/unfamiliar.groups.json"
  record unfamiliar knockoff groups "$(cat "$RUN/unfamiliar.groups.json")" "$l"
  l="$(wait_quiet)"; log "peer_unseen.py, seed 0 (load $l)"
  "$PY" training/peers/peer_unseen.py > "$RUN/unfamiliar.peers.json" 2> "$RUN/unfamiliar.peers.err"
  record unfamiliar peers json "$(tail -1 "$RUN/unfamiliar.peers.json")" "$l"
}

# ---------------------------------------------------------------------------------------------
score_knockoff() { # NAME INPUT
  local name="$1" input="$2" i l
  for i in $(seq 1 "$REPS"); do
    l="$(wait_quiet)"; log "knockoff-score $name run $i (load $l)"
    /usr/bin/time -v "$BIN/knockoff-score" --model "$MODEL" --input "$input" --output "$BENCH/out.csv" \
      > "$RUN/score.$name.knockoff.$i.out" 2> "$RUN/score.$name.knockoff.$i.time"
    local line rows secs
    line="$(grep -m1 '^scored ' "$RUN/score.$name.knockoff.$i.out")"
    rows="$(echo "$line" | awk '{ print $4 }')"
    secs="$(echo "$line" | sed 's/.* in \([0-9.]*\)s.*/\1/')"
    record scoring "knockoff/$name/run$i" rows "$rows" "$l"
    record scoring "knockoff/$name/run$i" score_file_rows_per_s "$(awk -v r="$rows" -v s="$secs" 'BEGIN { printf "%.0f", r / s }')" "$l"
    record scoring "knockoff/$name/run$i" process_wall_s "$(time_wall "$RUN/score.$name.knockoff.$i.time")" "$l"
    record scoring "knockoff/$name/run$i" process_rows_per_s "$(awk -v r="$rows" -v s="$(time_wall "$RUN/score.$name.knockoff.$i.time")" 'BEGIN { printf "%.0f", r / s }')" "$l"
    record scoring "knockoff/$name/run$i" peak_rss_mib "$(time_rss "$RUN/score.$name.knockoff.$i.time")" "$l"
  done
}

score_peer() { # PEER MODEL NAME INPUT
  local peer="$1" model="$2" name="$3" input="$4" l
  l="$(wait_quiet)"; log "$peer predict $name (load $l)"
  /usr/bin/time -v "$PY" training/bench/peer_predict.py --peer "$peer" --model "$model" \
    --input "$input" --output "$BENCH/out-$peer.csv" \
    > "$RUN/score.$name.$peer.json" 2> "$RUN/score.$name.$peer.time"
  local f="$RUN/score.$name.$peer.json"
  record scoring "$peer/$name" rows "$(json_field "$f" rows)" "$l"
  record scoring "$peer/$name" predict_rows_per_s "$(json_field "$f" predict_rows_per_s)" "$l"
  record scoring "$peer/$name" prep_and_predict_rows_per_s "$(json_field "$f" prep_and_predict_rows_per_s)" "$l"
  record scoring "$peer/$name" file_to_file_rows_per_s "$(json_field "$f" file_to_file_rows_per_s)" "$l"
  record scoring "$peer/$name" peak_rss_mib "$(time_rss "$RUN/score.$name.$peer.time")" "$l"
}

section_scoring() {
  data
  peer_models
  score_knockoff train206k "$TRAIN_GZ"
  score_knockoff csv1m "$DATA/listings-1m.csv"
  score_peer fasttext "$FT_MODEL" train206k "$TRAIN_GZ"
  score_peer fasttext "$FT_MODEL" csv1m "$DATA/listings-1m.csv"
  score_peer tfidf "$LR_MODEL" train206k "$TRAIN_GZ"
  score_peer tfidf "$LR_MODEL" csv1m "$DATA/listings-1m.csv"
  local l name input
  for name in train206k csv1m; do
    input="$TRAIN_GZ"; [ "$name" = csv1m ] && input="$DATA/listings-1m.csv"
    l="$(wait_quiet)"; log "cargo bench --bench throughput on $name (load $l)"
    # The executable `cargo bench --bench throughput` runs, copied to bin/ at build time.
    KNOCKOFF_BENCH_INPUT="$input" timeout 600 "$BIN/throughput" --bench > "$RUN/throughput.$name.out" 2> "$RUN/throughput.$name.err"
    cat "$RUN/throughput.$name.out" >&2
    record scoring "throughput-bench/$name" output "$(tr '\n' ';' < "$RUN/throughput.$name.out")" "$l"
  done
}

# ---------------------------------------------------------------------------------------------
SERVER_PID=""
SAMPLER_PID=""

tree_pids() { # PID: the pid and all its descendants
  local p="$1" c
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null || true); do tree_pids "$c"; done
}

rss_sampler() { # PID OUT: total RSS (KiB) of the process tree, every 0.5 s
  local pid="$1" out="$2" total p r
  while kill -0 "$pid" 2>/dev/null; do
    total=0
    for p in $(tree_pids "$pid"); do
      r="$(ps -o rss= -p "$p" 2>/dev/null | tr -d ' ' || true)"
      [ -n "$r" ] && total=$((total + r))
    done
    echo "$total" >> "$out"
    sleep 0.5
  done
}

start_sampler() { rss_sampler "$SERVER_PID" "$1" & SAMPLER_PID=$!; }
stop_sampler() {
  if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
  SAMPLER_PID=""
}
max_rss_mib() { sort -n "$1" | tail -1 | awk '{ printf "%.1f\n", $1 / 1024 }'; }

stop_server() {
  stop_sampler
  [ -n "$SERVER_PID" ] || return 0
  local pids p i
  pids="$(tree_pids "$SERVER_PID" | tr '\n' ' ')"
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for i in $(seq 1 100); do
    local alive=""
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for p in $pids; do kill -0 "$p" 2>/dev/null && { log "killing leftover pid $p"; kill -KILL "$p" 2>/dev/null || true; }; done
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap 'stop_server' EXIT
trap 'exit 130' INT TERM

start_server() { # NAME PORT CMD...
  local name="$1" port="$2"; shift 2
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
    log "port $port is already in use: stop whatever listens there first"; exit 1
  fi
  "$@" > "$RUN/server.$name.log" 2>&1 &
  SERVER_PID=$!
  local i
  for i in $(seq 1 120); do
    if head -1 "$DATA/single.jsonl" | curl -sf -o /dev/null --max-time 2 -XPOST "http://127.0.0.1:$port/v1/score" \
         -H 'content-type: application/json' --data-binary @- ; then
      log "$name up on 127.0.0.1:$port (pid $SERVER_PID, RSS idle $(ps -o rss= -p "$SERVER_PID" | awk '{ printf "%.1f MiB", $1 / 1024 }'))"
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { log "$name exited; see $RUN/server.$name.log"; exit 1; }
    sleep 0.5
  done
  log "$name did not answer within 60 s"; exit 1
}

wrk_run() { # OUT CONNS SECONDS BODIES [extra env]
  local out="$1" c="$2" d="$3" bodies="$4" port="$5" t=2
  [ "$c" -lt 2 ] && t=1
  timeout $((d + 30)) wrk -t"$t" -c"$c" -d"${d}s" --timeout 5s --latency \
    -s training/bench/post_bodies.lua "http://127.0.0.1:$port" -- "$bodies" > "$out" 2>&1 || true
}
wrk_rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
wrk_pct() { # FILE PERCENT (from the Lua summary line), ms
  sed -n "s/.* p$2 \([0-9.]*\) ms.*/\1/p" "$1" | head -1
}
wrk_errors() { grep -E 'Non-2xx|Socket errors' "$1" | tr '\n' ' ' | sed 's/  */ /g'; }

measure_server() { # NAME PORT BATCH(yes/no) CMD...
  local name="$1" port="$2" batch="$3"; shift 3
  local l f max
  log "=== $name"
  start_server "$name" "$port" "$@"
  record server "$name" rss_idle_mib "$(tree_pids "$SERVER_PID" | xargs ps -o rss= -p 2>/dev/null | awk '{ s += $1 } END { printf "%.1f", s / 1024 }')" "-"
  wrk_run "$RUN/wrk.$name.warmup" 64 3 "$DATA/single.jsonl" "$port"

  # 1. max rate, 64 connections, single listings; RSS sampled throughout
  l="$(wait_quiet)"; log "$name: 64 connections, ${SECS}s (load $l)"
  start_sampler "$RUN/rss.$name.c64"
  f="$RUN/wrk.$name.c64"; wrk_run "$f" 64 "$SECS" "$DATA/single.jsonl" "$port"
  stop_sampler
  max="$(wrk_rps "$f")"
  record server "$name" c64_req_per_s "$max" "$l"
  record server "$name" c64_p50_ms "$(wrk_pct "$f" 50)" "$l"
  record server "$name" c64_p99_ms "$(wrk_pct "$f" 99)" "$l"
  record server "$name" c64_errors "$(wrk_errors "$f")" "$l"
  record server "$name" c64_rss_max_mib "$(max_rss_mib "$RUN/rss.$name.c64")" "$l"

  # 2. latency at 4 connections
  l="$(wait_quiet)"; log "$name: 4 connections, ${SECS}s (load $l)"
  f="$RUN/wrk.$name.c4"; wrk_run "$f" 4 "$SECS" "$DATA/single.jsonl" "$port"
  record server "$name" c4_req_per_s "$(wrk_rps "$f")" "$l"
  for p in 50 90 99 99.9; do record server "$name" "c4_p${p}_ms" "$(wrk_pct "$f" "$p")" "$l"; done
  record server "$name" c4_errors "$(wrk_errors "$f")" "$l"

  # 3. latency at about half the max rate: paced closed loop (see post_bodies.lua). The mean
  # random pause between a connection's requests is chosen for about 50 connections (whole
  # milliseconds, at least 1), then the connection count is corrected twice from 4-second trials.
  local target delay c a i p50
  target="$(awk -v m="$max" 'BEGIN { printf "%.0f", m / 2 }')"
  p50="$(wrk_pct "$f" 50)"
  delay="$(awk -v t="$target" 'BEGIN { d = int(50000 / t - 1); if (d < 1) d = 1; print d }')"
  c="$(awk -v t="$target" -v d="$delay" -v p="$p50" 'BEGIN { c = int(t * (d + p) / 1000 + 0.5); if (c < 1) c = 1; print c }')"
  for i in 1 2; do
    WRK_DELAY_MS="$delay" wrk_run "$RUN/wrk.$name.half.calib$i" "$c" 4 "$DATA/single.jsonl" "$port"
    a="$(wrk_rps "$RUN/wrk.$name.half.calib$i")"
    c="$(awk -v c="$c" -v t="$target" -v a="$a" 'BEGIN { n = int(c * t / a + 0.5); if (n < 1) n = 1; print n }')"
  done
  l="$(wait_quiet)"; log "$name: paced at ~${target} req/s ($c connections, random pauses of mean ${delay} ms), ${SECS}s (load $l)"
  f="$RUN/wrk.$name.half"; WRK_DELAY_MS="$delay" wrk_run "$f" "$c" "$SECS" "$DATA/single.jsonl" "$port"
  record server "$name" half_target_req_per_s "$target" "$l"
  record server "$name" half_pacing "$c conns, mean pause ${delay} ms" "$l"
  record server "$name" half_req_per_s "$(wrk_rps "$f")" "$l"
  for p in 50 90 99 99.9; do record server "$name" "half_p${p}_ms" "$(wrk_pct "$f" "$p")" "$l"; done
  record server "$name" half_errors "$(wrk_errors "$f")" "$l"

  # 4. batches of 1000 listings, 4 connections; RSS sampled throughout
  if [ "$batch" = yes ]; then
    l="$(wait_quiet)"; log "$name: batches of 1000 listings, 4 connections, ${SECS}s (load $l)"
    start_sampler "$RUN/rss.$name.batch"
    f="$RUN/wrk.$name.batch"; wrk_run "$f" 4 "$SECS" "$DATA/batch-1000.jsonl" "$port"
    stop_sampler
    record server "$name" batch_req_per_s "$(wrk_rps "$f")" "$l"
    record server "$name" batch_listings_per_s "$(awk -v r="$(wrk_rps "$f")" 'BEGIN { printf "%.0f", r * 1000 }')" "$l"
    record server "$name" batch_p50_ms "$(wrk_pct "$f" 50)" "$l"
    record server "$name" batch_p99_ms "$(wrk_pct "$f" 99)" "$l"
    record server "$name" batch_errors "$(wrk_errors "$f")" "$l"
    record server "$name" batch_rss_max_mib "$(max_rss_mib "$RUN/rss.$name.batch")" "$l"
  fi
  stop_server
}

section_server() {
  data
  peer_models
  command -v wrk > /dev/null || { log "wrk is missing: apt-get install -y wrk"; exit 1; }
  measure_server knockoff 8080 yes "$BIN/knockoff-serve" --model "$MODEL" --addr 127.0.0.1:8080
  # The same server without explanations (--reasons 0): what the 3 default reasons cost.
  measure_server knockoff-reasons0 8080 yes "$BIN/knockoff-serve" --model "$MODEL" --addr 127.0.0.1:8080 --reasons 0
  measure_server trivial-axum 8081 yes \
    env KNOCKOFF_TRIVIAL_ADDR=127.0.0.1:8081 KNOCKOFF_TRIVIAL_SECS=1800 "$BIN/trivial_axum" --bench
  measure_server fastapi-1w 8000 no "$PY" training/peers/serve_fastapi.py --model "$LR_MODEL" \
    --host 127.0.0.1 --port 8000 --workers 1
  measure_server fastapi-2w 8000 no "$PY" training/peers/serve_fastapi.py --model "$LR_MODEL" \
    --host 127.0.0.1 --port 8000 --workers 2
}

# ---------------------------------------------------------------------------------------------
sections=("$@")
[ "${#sections[@]}" -eq 0 ] && sections=(scoring server)
[ "${sections[0]}" = all ] && sections=(train unfamiliar scoring server)
log "results in $RUN; sections: ${sections[*]}"
build
machine
printf 'section\tsubject\tmetric\tvalue\tload1_at_start\n' > "$SUMMARY"
for s in "${sections[@]}"; do
  case "$s" in
    train) section_train ;;
    unfamiliar) section_unfamiliar ;;
    scoring) section_scoring ;;
    server) section_server ;;
    *) log "unknown section $s"; exit 2 ;;
  esac
done
machine_end="$(uptime)"; log "done: $machine_end"
log "summary: $SUMMARY"
