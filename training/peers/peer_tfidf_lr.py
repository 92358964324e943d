#!/usr/bin/env python3
"""Peer baseline 1: character n-gram TF-IDF + price features + logistic regression.

Features
  * TF-IDF over `title | description | brand | category`, analyzer=char_wb, 2-4-grams,
    sublinear tf, min_df (default 3).
  * price: log USD price (fixed rates, see peers_common.USD_RATES), log ratio to the median
    genuine price of the same brand+category in training (fallback: category, then global),
    a missing-price flag, and the ratio as one-hot half-log buckets (so the linear model can
    bend on price). The two continuous columns are standardised on training.
Model
  * sklearn LogisticRegression (liblinear by default), C given by --C, or picked by --tune-c
    on a seeded 10% split of the *training* file (never on validation).

Prints one JSON line of results to stdout; progress to stderr. --save writes a joblib bundle
that serve_fastapi.py loads.

Example
  training/peers/.venv/bin/python training/peers/peer_tfidf_lr.py \
      --train training/data/listings-train.csv.gz --valid training/data/listings-valid.csv.gz \
      --save /tmp/peer_tfidf_lr.joblib
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peers_common as pc  # noqa: E402  (sets thread env vars before numpy loads)

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

N_BUCKETS = 14  # price_bucket k in [-8, 4] plus "missing"


def _bucket_index(log_ratio: float, missing: float) -> int:
    if missing:
        return N_BUCKETS - 1
    k = max(-8, min(4, int(math.floor(log_ratio * 2.0))))
    return k + 8


def numeric_block(rows, bundle) -> sp.csr_matrix:
    pf = pc.price_features(rows, bundle["price_ref"])
    mu, sd = bundle["num_mean"], bundle["num_std"]
    cont = (pf[:, :2] - mu) / sd
    n = len(rows)
    buckets = np.fromiter((_bucket_index(a, m) for a, m in zip(pf[:, 1], pf[:, 2])), dtype=np.int64, count=n)
    onehot = sp.csr_matrix((np.ones(n), (np.arange(n), buckets)), shape=(n, N_BUCKETS))
    dense = np.column_stack([cont, pf[:, 2:3]])
    return sp.hstack([sp.csr_matrix(dense), onehot], format="csr")


def featurize(rows, bundle) -> sp.csr_matrix:
    texts = [pc.listing_text(r) for r in rows]
    x_text = bundle["vectorizer"].transform(texts)
    return sp.hstack([x_text, numeric_block(rows, bundle)], format="csr", dtype=np.float64)


def fit_features(rows, min_df: int, max_features: int | None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    ref = pc.PriceReference().fit(rows)
    pf = pc.price_features(rows, ref)
    bundle = {
        "price_ref": ref,
        "num_mean": pf[:, :2].mean(axis=0),
        "num_std": pf[:, :2].std(axis=0) + 1e-9,
        "vectorizer": TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 4), min_df=min_df, max_features=max_features,
            sublinear_tf=True, lowercase=True, dtype=np.float32,
        ),
    }
    texts = [pc.listing_text(r) for r in rows]
    x_text = bundle["vectorizer"].fit_transform(texts)
    x = sp.hstack([x_text, numeric_block(rows, bundle)], format="csr", dtype=np.float64)
    return bundle, x


def make_lr(C: float, solver: str, seed: int):
    from sklearn.linear_model import LogisticRegression

    if solver == "saga":
        return LogisticRegression(C=C, solver="saga", max_iter=200, tol=1e-3, random_state=seed)
    return LogisticRegression(C=C, solver="liblinear", max_iter=200, tol=1e-4, random_state=seed)


def fit(rows, C: float, solver: str = "liblinear", min_df: int = 3, max_features: int | None = None,
        seed: int = 0, timer_out: dict | None = None) -> dict:
    t = pc.Timer()
    bundle, x = fit_features(rows, min_df, max_features)
    t_feat = t.lap()
    y = pc.labels(rows)
    lr = make_lr(C, solver, seed)
    lr.fit(x, y)
    t_lr = t.lap()
    bundle.update({"lr": lr, "C": C, "solver": solver, "n_features": int(x.shape[1]),
                   "kind": "knockoff-peer-tfidf-lr", "version": 1})
    if timer_out is not None:
        timer_out.update({"featurize_fit_s": round(t_feat, 3), "lr_fit_s": round(t_lr, 3),
                          "train_s": round(t_feat + t_lr, 3)})
    return bundle


def predict_proba(bundle, rows) -> np.ndarray:
    return bundle["lr"].predict_proba(featurize(rows, bundle))[:, 1]


def tune_c(rows, grid, solver, min_df, max_features, seed) -> tuple[float, list]:
    """Picks C by average precision on a seeded 10% split of the training rows."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(rows))
    cut = len(rows) // 10
    dev = [rows[i] for i in perm[:cut]]
    fit_rows = [rows[i] for i in perm[cut:]]
    bundle, x = fit_features(fit_rows, min_df, max_features)
    y = pc.labels(fit_rows)
    x_dev = featurize(dev, bundle)
    y_dev = pc.labels(dev)
    scores = []
    for C in grid:
        t = pc.Timer()
        lr = make_lr(C, solver, seed).fit(x, y)
        p = lr.predict_proba(x_dev)[:, 1]
        ap = pc.average_precision(y_dev, p)
        _, rec, _ = pc.threshold_at_precision(y_dev, p, 0.95)
        scores.append({"C": C, "dev_pr_auc": round(ap, 5), "dev_recall_at_95p": round(rec, 5),
                       "fit_s": round(t.lap(), 2)})
        pc.log(f"  tune C={C}: dev AP={ap:.4f} recall@95P={rec:.4f}")
    best = max(scores, key=lambda s: s["dev_pr_auc"])["C"]
    return best, scores


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", default=str(pc.DEFAULT_TRAIN), help="training CSV (.csv or .csv.gz)")
    ap.add_argument("--valid", default=str(pc.DEFAULT_VALID), help="validation CSV (.csv or .csv.gz)")
    ap.add_argument("--C", type=float, default=8.0, help="inverse regularisation strength (default 8)")
    ap.add_argument("--tune-c", default="", help="comma-separated C grid to tune on a 10%% train split, e.g. 2,4,8,16")
    ap.add_argument("--solver", choices=("liblinear", "saga"), default="liblinear")
    ap.add_argument("--min-df", type=int, default=3)
    ap.add_argument("--max-features", type=int, default=0, help="cap the TF-IDF vocabulary (0 = no cap)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", default="", help="write the fitted model bundle here (joblib)")
    ap.add_argument("--single-rows", type=int, default=1000,
                    help="rows scored one at a time to measure per-request rate (0 = skip)")
    args = ap.parse_args(argv)
    pc.limit_threads(2)
    load0 = pc.machine_info()["loadavg_1m"]

    t = pc.Timer()
    train = pc.load_csv(args.train)
    valid = pc.load_csv(args.valid)
    load_s = t.lap()
    pc.log(f"loaded {len(train)} train / {len(valid)} valid rows in {load_s:.1f}s")

    max_features = args.max_features or None
    tuning = None
    C = args.C
    if args.tune_c:
        grid = [float(c) for c in args.tune_c.split(",") if c.strip()]
        pc.log(f"tuning C over {grid} on a 10% split of training ...")
        C, tuning = tune_c(train, grid, args.solver, args.min_df, max_features, args.seed)
        pc.log(f"chose C={C} ({t.lap():.1f}s)")

    timings: dict = {}
    pc.log(f"fitting TF-IDF + LR (C={C}, solver={args.solver}) on {len(train)} rows ...")
    bundle = fit(train, C, args.solver, args.min_df, max_features, args.seed, timings)
    pc.log(f"  features {bundle['n_features']}, train {timings['train_s']:.1f}s "
           f"(featurize {timings['featurize_fit_s']:.1f}s + LR {timings['lr_fit_s']:.1f}s)")

    y_valid = pc.labels(valid)
    t.lap()
    p_valid = predict_proba(bundle, valid)
    pred_s = t.lap()
    metrics = pc.evaluate(y_valid, p_valid)
    bundle["thresholds"] = {"block": metrics["threshold_at_95p"],
                            "review": pc.threshold_at_recall(y_valid, p_valid, 0.95)}

    single = None
    if args.single_rows > 0:
        sub = valid[: args.single_rows]
        t.lap()
        for r in sub:
            predict_proba(bundle, [r])
        s = t.lap()
        single = round(len(sub) / s, 1)

    if args.save:
        import joblib

        joblib.dump(bundle, args.save, compress=3)
        pc.log(f"saved model bundle to {args.save} ({os.path.getsize(args.save) / 1e6:.1f} MB)")

    result = {
        "peer": "tfidf_char2-4_lr",
        "date": _dt.date.today().isoformat(),
        "machine": dict(pc.machine_info(), loadavg_1m_at_start=load0),
        "train_file": os.path.basename(args.train),
        "valid_file": os.path.basename(args.valid),
        "train_rows": len(train),
        "C": C,
        "solver": args.solver,
        "min_df": args.min_df,
        "n_features": bundle["n_features"],
        "valid": metrics,
        "thresholds": bundle["thresholds"],
        "train_s": timings["train_s"],
        "featurize_fit_s": timings["featurize_fit_s"],
        "lr_fit_s": timings["lr_fit_s"],
        "predict_batch_rows_per_s": round(len(valid) / pred_s, 1),
        "predict_batch_s": round(pred_s, 3),
        "predict_single_rows_per_s": single,
        "peak_rss_mb": round(pc.peak_rss_mb(), 1),
        "tuning": tuning,
    }
    pc.log(
        f"valid ROC-AUC {metrics['roc_auc']:.4f}  PR-AUC {metrics['pr_auc']:.4f}  "
        f"recall@95%P {metrics['recall_at_95p']:.4f}  ECE15 {metrics['ece_15']:.4f}\n"
        f"train {timings['train_s']:.1f}s  predict {result['predict_batch_rows_per_s']:.0f} rows/s batch, "
        f"{single} rows/s one at a time  peak RSS {result['peak_rss_mb']:.0f} MiB"
    )
    pc.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
