#!/usr/bin/env python3
"""How far the validation file lets recall at 95% precision go: averages the logits of several
models' scores (knockoff and the peers) and reports recall@95%P for each model and each
combination, and the listings every model gets wrong with confidence.

    target/release/knockoff-score --input training/data/listings-valid.csv.gz --output /tmp/valid-knockoff.csv
    training/peers/.venv/bin/python training/bench/peer_predict.py --peer tfidf \
        --model /tmp/knockoff-bench/peer_tfidf_lr.joblib --input training/data/listings-valid.csv.gz --output /tmp/valid-tfidf.csv
    training/peers/.venv/bin/python training/bench/peer_predict.py --peer fasttext \
        --model /tmp/knockoff-bench/peer_fasttext.bin --input training/data/listings-valid.csv.gz --output /tmp/valid-fasttext.csv
    training/peers/.venv/bin/python training/bench/ensemble_check.py \
        knockoff=/tmp/valid-knockoff.csv tfidf=/tmp/valid-tfidf.csv fasttext=/tmp/valid-fasttext.csv

Each score file has `id,probability,...`; rows are matched to the labelled file by id.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
from pathlib import Path

import numpy as np

VALID = Path(__file__).resolve().parents[2] / "training" / "data" / "listings-valid.csv.gz"


def labels(path: Path) -> dict[str, int]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return {row["id"]: int(row["label"]) for row in csv.DictReader(f)}


def scores(path: str) -> dict[str, float]:
    with open(path, encoding="utf-8", newline="") as f:
        return {row["id"]: float(row["probability"]) for row in csv.DictReader(f) if row["probability"]}


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def recall_at_precision(y: np.ndarray, s: np.ndarray, precision: float = 0.95) -> float:
    order = np.argsort(-s, kind="stable")
    hits = np.cumsum(y[order])
    prec = hits / np.arange(1, len(y) + 1)
    ok = np.where(prec >= precision)[0]
    return float(hits[ok].max() / y.sum()) if len(ok) else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="NAME=SCORES.csv")
    parser.add_argument("--valid", type=Path, default=VALID)
    args = parser.parse_args()
    truth = labels(args.valid)
    named = [m.split("=", 1) for m in args.models]
    tables = {name: scores(path) for name, path in named}
    ids = [i for i in truth if all(i in t for t in tables.values())]
    y = np.array([truth[i] for i in ids])
    probs = {name: np.array([t[i] for i in ids]) for name, t in tables.items()}
    logits = {name: logit(p) for name, p in probs.items()}
    print(f"{len(ids)} listings, {int(y.sum())} counterfeit")
    names = list(tables)
    for k in range(1, len(names) + 1):
        for combo in itertools.combinations(names, k):
            s = sum(logits[n] for n in combo)
            print(f"recall@95%P  {' + '.join(combo):40s} {recall_at_precision(y, s):.4f}")
    corr = np.corrcoef([logits[n] for n in names])
    for a, b in itertools.combinations(range(len(names)), 2):
        print(f"logit correlation {names[a]} / {names[b]}: {corr[a, b]:.2f}")
    every = np.stack([probs[n] for n in names])
    pos, neg = y == 1, y == 0
    for cut in (0.05, 0.15):
        print(f"counterfeits every model scores under {cut}: {int(((every < cut).all(axis=0) & pos).sum())}")
    print(f"genuine listings every model scores over 0.9: {int(((every > 0.9).all(axis=0) & neg).sum())}")


if __name__ == "__main__":
    main()
