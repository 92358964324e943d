#!/usr/bin/env python3
"""Peer baseline 2: fastText supervised classifier with a price-ratio token.

Each listing becomes one line:
    __label__{0|1} <title> <description> __brand_<brand> __price_bucket_<k> __cat_<category>
lower-cased, whitespace-collapsed. `k` is floor(2 * log(price_usd / reference)), clipped to
[-8, 4], where the reference is the median genuine USD price of the same brand+category in
training (fallback category, then global) - the same price feature as peer_tfidf_lr.py;
`__price_missing` when there is no usable price. The brand, price and category tokens are
adjacent so that wordNgrams=2 gives brand x price and price x category bigrams.

fastText: train_supervised(epoch=5, thread=2, wordNgrams=2, minn=2, maxn=4, dim=50, lr=0.5,
loss=softmax, bucket=2M). With 2 threads (Hogwild) training is not bit-for-bit repeatable;
expect run-to-run differences in the 3rd-4th decimal.

Prediction rate is measured with the Python API: model.predict(list_of_texts) on all validation
texts, and on the validation texts repeated --repeat times (default 10) for a steadier figure.
P(counterfeit) is taken from k=1 (label and its probability): fasttext-wheel 0.9.2 returns wrong
probabilities for k>1 on list input, and its single-string predict() fails under numpy 2.

Prints one JSON line of results on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peers_common as pc  # noqa: E402

import numpy as np  # noqa: E402

_WS = re.compile(r"\s+")

FT_PARAMS = dict(epoch=5, thread=2, wordNgrams=2, minn=2, maxn=4, dim=50, lr=0.5, loss="softmax",
                 bucket=2_000_000, minCount=1, verbose=0)


def _tok(s: str) -> str:
    return _WS.sub("_", (s or "").strip().lower()) or "none"


def ft_texts(rows, ref: pc.PriceReference) -> list[str]:
    pf = pc.price_features(rows, ref)
    out = []
    for r, (_, ratio, missing) in zip(rows, pf):
        body = _WS.sub(" ", f"{r['title']} {r['description']}".lower()).strip()
        out.append(f"{body} __brand_{_tok(r['brand'])} {pc.price_bucket(ratio, bool(missing))} "
                   f"__cat_{_tok(r['category'])}")
    return out


def fit(rows, seed: int = 0, params: dict | None = None, timer_out: dict | None = None):
    """Returns (model, price_reference)."""
    import fasttext

    t = pc.Timer()
    ref = pc.PriceReference().fit(rows)
    texts = ft_texts(rows, ref)
    fd, path = tempfile.mkstemp(prefix="peer_ft_train_", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for r, x in zip(rows, texts):
                fh.write(f"__label__{r['label']} {x}\n")
        prep_s = t.lap()
        kw = dict(FT_PARAMS)
        kw.update(params or {})
        model = fasttext.train_supervised(input=path, seed=seed, **kw)
        train_s = t.lap()
    finally:
        os.unlink(path)
    if timer_out is not None:
        timer_out.update({"prep_s": round(prep_s, 3), "train_s": round(train_s, 3)})
    return model, ref


def proba_from_predict(labels, probs) -> np.ndarray:
    """P(label 1) from k=1 predictions of a two-label model."""
    out = np.empty(len(labels), dtype=np.float64)
    for i, (lab, pr) in enumerate(zip(labels, probs)):
        p = float(min(1.0, max(0.0, pr[0])))
        out[i] = p if lab[0] == "__label__1" else 1.0 - p
    return out


def predict_proba(model, ref, rows) -> np.ndarray:
    labels, probs = model.predict(ft_texts(rows, ref), k=1)
    return proba_from_predict(labels, probs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", default=str(pc.DEFAULT_TRAIN), help="training CSV (.csv or .csv.gz)")
    ap.add_argument("--valid", default=str(pc.DEFAULT_VALID), help="validation CSV (.csv or .csv.gz)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epoch", type=int, default=FT_PARAMS["epoch"])
    ap.add_argument("--lr", type=float, default=FT_PARAMS["lr"])
    ap.add_argument("--dim", type=int, default=FT_PARAMS["dim"])
    ap.add_argument("--repeat", type=int, default=10, help="also predict the validation texts repeated N times")
    ap.add_argument("--save", default="", help="write the fastText model (.bin) here")
    args = ap.parse_args(argv)
    pc.limit_threads(2)
    load0 = pc.machine_info()["loadavg_1m"]

    t = pc.Timer()
    train = pc.load_csv(args.train)
    valid = pc.load_csv(args.valid)
    pc.log(f"loaded {len(train)} train / {len(valid)} valid rows in {t.lap():.1f}s")

    params = {"epoch": args.epoch, "lr": args.lr, "dim": args.dim}
    timings: dict = {}
    pc.log(f"training fastText {dict(FT_PARAMS, **params)} ...")
    model, ref = fit(train, args.seed, params, timings)
    pc.log(f"  prep {timings['prep_s']:.1f}s, train_supervised {timings['train_s']:.1f}s")

    y_valid = pc.labels(valid)
    t.lap()
    texts = ft_texts(valid, ref)
    text_s = t.lap()
    labels, probs = model.predict(texts, k=1)
    pred_s = t.lap()
    p_valid = proba_from_predict(labels, probs)
    metrics = pc.evaluate(y_valid, p_valid)

    rep_rate = None
    if args.repeat > 1:
        big = texts * args.repeat
        t.lap()
        model.predict(big, k=1)
        rep_s = t.lap()
        rep_rate = round(len(big) / rep_s, 1)
        del big

    if args.save:
        model.save_model(args.save)
        pc.log(f"saved fastText model to {args.save} ({os.path.getsize(args.save) / 1e6:.1f} MB)")

    result = {
        "peer": "fasttext_supervised",
        "date": _dt.date.today().isoformat(),
        "machine": dict(pc.machine_info(), loadavg_1m_at_start=load0),
        "train_file": os.path.basename(args.train),
        "valid_file": os.path.basename(args.valid),
        "train_rows": len(train),
        "fasttext_params": dict(FT_PARAMS, **params, seed=args.seed),
        "valid": metrics,
        "train_s": timings["train_s"],
        "prep_s": timings["prep_s"],
        "predict_rows_per_s": round(len(valid) / pred_s, 1),
        "predict_repeat": args.repeat,
        "predict_repeat_rows_per_s": rep_rate,
        "predict_with_text_prep_rows_per_s": round(len(valid) / (pred_s + text_s), 1),
        "peak_rss_mb": round(pc.peak_rss_mb(), 1),
    }
    pc.log(
        f"valid ROC-AUC {metrics['roc_auc']:.4f}  PR-AUC {metrics['pr_auc']:.4f}  "
        f"recall@95%P {metrics['recall_at_95p']:.4f}  ECE15 {metrics['ece_15']:.4f}\n"
        f"train {timings['train_s']:.1f}s  predict {result['predict_rows_per_s']:.0f} listings/s "
        f"(x{args.repeat}: {rep_rate} listings/s)  peak RSS {result['peak_rss_mb']:.0f} MiB"
    )
    pc.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
