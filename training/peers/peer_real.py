#!/usr/bin/env python3
"""The TF-IDF + logistic-regression peer on real listings, with knockoff's decision rule of old.

    training/peers/.venv/bin/python training/peers/peer_real.py REAL.csv [REAL2.csv ...]

Trains the peer (peer_tfidf_lr.py, its default settings) on the training file, sets `block` at
95% precision and `review` at 90% recall on validation, and prints for each real file (all
presumed genuine) the share blocked and the share reviewed or blocked. One JSON line on stdout.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peers_common as pc  # noqa: E402
import peer_tfidf_lr as tfidf  # noqa: E402


def main(paths: list[str]) -> int:
    pc.limit_threads(2)
    train = pc.load_csv(pc.DEFAULT_TRAIN)
    valid = pc.load_csv(pc.DEFAULT_VALID)
    bundle = tfidf.fit(train, 8.0)
    y = pc.labels(valid)
    p = tfidf.predict_proba(bundle, valid)
    block, _, _ = pc.threshold_at_precision(y, p, 0.95)
    review = min(pc.threshold_at_recall(y, p, 0.90), block)
    result = {"peer": "tfidf-lr", "block_threshold": block, "review_threshold": review, "sets": {}}
    for path in paths:
        rows = pc.load_csv(path)
        q = tfidf.predict_proba(bundle, rows)
        result["sets"][os.path.basename(path)] = {
            "rows": len(rows),
            "blocked": float((q >= block).mean()),
            "review_or_block": float((q >= review).mean()),
        }
    pc.emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
