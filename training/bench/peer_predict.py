#!/usr/bin/env python3
"""File -> file batch prediction with a saved peer model, for BENCHMARKS.md's scoring table.

knockoff-score reads a listings file and writes `id,probability,decision`; this does the same
with a peer so that the two rates measure the same job. It reuses the peers' own code
(training/peers/): the fastText text format and k=1 probability rule of peer_fasttext.py, and
the featurising + predict_proba of peer_tfidf_lr.py. Threads are capped at 2 as in the peers.

    training/peers/.venv/bin/python training/bench/peer_predict.py --peer fasttext \
        --model /tmp/peer_fasttext.bin --input FILE --output /tmp/out-ft.csv
    training/peers/.venv/bin/python training/bench/peer_predict.py --peer tfidf \
        --model /tmp/peer_tfidf_lr.joblib --input FILE --output /tmp/out-lr.csv

The fastText .bin does not hold the price reference that its price-bucket token needs, so
for `--peer fasttext` the reference is refitted on the training file (as peer_fasttext.py does
before training; deterministic, and not counted in the rates). The TF-IDF bundle carries its own.

Stages timed separately (time.perf_counter), each over all rows:
  read      CSV(.gz) -> list of dicts (peers_common.load_csv)
  prep      fastText only: build the input texts (price features + tokens)
  predict   model.predict(texts, k=1) (fastText), or featurise + predict_proba (TF-IDF+LR),
            in chunks of --chunk rows so memory stays bounded
  write     id,probability,decision CSV
It prints one JSON line: rows, seconds per stage, rows/s for predict only, for prep+predict,
and file -> file (read + prep + predict + write), and peak RSS (ru_maxrss).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(os.path.dirname(HERE), "peers")
sys.path.insert(0, PEERS)

import peers_common as pc  # noqa: E402  (caps BLAS/OpenMP threads at 2 before numpy loads)

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", choices=("fasttext", "tfidf"), required=True)
    ap.add_argument("--model", required=True, help="peer_fasttext.py --save .bin, or peer_tfidf_lr.py --save .joblib")
    ap.add_argument("--input", required=True, help="listings .csv or .csv.gz")
    ap.add_argument("--output", required=True, help="id,probability,decision CSV")
    ap.add_argument("--train", default=str(pc.DEFAULT_TRAIN), help="fastText: training file for the price reference")
    ap.add_argument("--chunk", type=int, default=50_000, help="rows per predict call")
    args = ap.parse_args(argv)
    pc.limit_threads(2)
    load0 = round(os.getloadavg()[0], 2)

    t = pc.Timer()
    if args.peer == "fasttext":
        import fasttext
        import peer_fasttext

        model = fasttext.load_model(args.model)
        ref = pc.PriceReference().fit(pc.load_csv(args.train))
        block = 0.5
    else:
        import joblib
        import peer_tfidf_lr

        bundle = joblib.load(args.model)
        block = float((bundle.get("thresholds") or {}).get("block", 0.5))
    setup_s = t.lap()

    rows = pc.load_csv(args.input)
    read_s = t.lap()
    n = len(rows)
    probs = np.empty(n, dtype=np.float64)
    prep_s = predict_s = 0.0
    for start in range(0, n, args.chunk):
        chunk = rows[start:start + args.chunk]
        t.lap()
        if args.peer == "fasttext":
            texts = peer_fasttext.ft_texts(chunk, ref)
            prep_s += t.lap()
            labels, p = model.predict(texts, k=1)
            probs[start:start + len(chunk)] = peer_fasttext.proba_from_predict(labels, p)
            predict_s += t.lap()
        else:
            probs[start:start + len(chunk)] = peer_tfidf_lr.predict_proba(bundle, chunk)
            predict_s += t.lap()
    t.lap()
    with open(args.output, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "probability", "decision"])
        for r, p in zip(rows, probs):
            w.writerow([r["id"], f"{p:.6f}", "block" if p >= block else "allow"])
    write_s = t.lap()

    total = read_s + prep_s + predict_s + write_s
    result = {
        "peer": args.peer,
        "date": _dt.date.today().isoformat(),
        "input": os.path.basename(args.input),
        "rows": n,
        "loadavg_1m_at_start": load0,
        "seconds": {"model_setup": round(setup_s, 3), "read": round(read_s, 3), "prep": round(prep_s, 3),
                    "predict": round(predict_s, 3), "write": round(write_s, 3), "file_to_file": round(total, 3)},
        "predict_rows_per_s": round(n / predict_s, 1),
        "prep_and_predict_rows_per_s": round(n / (prep_s + predict_s), 1),
        "file_to_file_rows_per_s": round(n / total, 1),
        "peak_rss_mb": round(pc.peak_rss_mb(), 1),
    }
    pc.log(f"{args.peer}: {n} rows; predict {result['predict_rows_per_s']:.0f}/s, prep+predict "
           f"{result['prep_and_predict_rows_per_s']:.0f}/s, file->file {result['file_to_file_rows_per_s']:.0f}/s; "
           f"peak RSS {result['peak_rss_mb']:.0f} MiB")
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
