#!/usr/bin/env python3
"""The "unfamiliar listings" check for the peer baselines.

Protocol
  1. From the training file remove every row of the held-out categories (--holdout-categories,
     default home,pets: ordinary goods) and every row whose brand is in a seeded random share of
     the training brands (--brand-share, default 0.2; --seed; distinct non-empty brand values,
     case-insensitive, sorted, sampled with Python's random.Random(seed)).
  2. Train each peer (peer_tfidf_lr.py, peer_fasttext.py; same settings as their own scripts)
     on what is left. Price references are recomputed from that reduced training set, so
     held-out brands/categories fall back to category or global medians as they would in use.
  3. Block threshold = the lowest score giving >= 95% precision on the *familiar* validation
     rows (neither held-out category nor held-out brand).
  4. Report, on GENUINE validation rows of the held-out categories / brands, the share scored at
     or above that threshold (would be blocked). Counterfeit block shares are reported too.

Prints one JSON line (both peers) on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peers_common as pc  # noqa: E402

import peer_fasttext  # noqa: E402
import peer_tfidf_lr  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", default=str(pc.DEFAULT_TRAIN), help="training CSV (.csv or .csv.gz)")
    ap.add_argument("--valid", default=str(pc.DEFAULT_VALID), help="validation CSV (.csv or .csv.gz)")
    ap.add_argument("--holdout-categories", default="home,pets")
    ap.add_argument("--brand-share", type=float, default=0.2, help="share of training brands held out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peers", default="tfidf_lr,fasttext", help="comma-separated: tfidf_lr,fasttext")
    ap.add_argument("--C", type=float, default=8.0, help="C for the TF-IDF + LR peer")
    args = ap.parse_args(argv)
    pc.limit_threads(2)
    load0 = pc.machine_info()["loadavg_1m"]

    train = pc.load_csv(args.train)
    valid = pc.load_csv(args.valid)
    cats = [c for c in args.holdout_categories.split(",") if c.strip()]
    train_kept, masks, info = pc.holdout_split(train, valid, cats, args.brand_share, args.seed)
    pc.log(f"hold-out: categories {info['holdout_categories']}, {info['brands_held_out']}/{info['brands_total']} "
           f"brands; training on {info['train_rows_kept']} of {len(train)} rows")
    pc.log(f"validation: {len(masks['familiar'])} familiar rows, {len(masks['held_out_categories'])} in held-out "
           f"categories, {len(masks['held_out_brands_only'])} more in held-out brands")
    y_valid = pc.labels(valid)

    results = {}
    for peer in [p.strip() for p in args.peers.split(",") if p.strip()]:
        t = pc.Timer()
        if peer == "tfidf_lr":
            bundle = peer_tfidf_lr.fit(train_kept, args.C, seed=args.seed)
            p_valid = peer_tfidf_lr.predict_proba(bundle, valid)
        elif peer == "fasttext":
            model, ref = peer_fasttext.fit(train_kept, seed=args.seed)
            p_valid = peer_fasttext.predict_proba(model, ref, valid)
        else:
            raise SystemExit(f"unknown peer {peer!r}")
        rep = pc.unseen_report(y_valid, p_valid, masks)
        rep["fit_and_score_s"] = round(t.lap(), 1)
        results[peer] = rep
        pc.log(
            f"{peer}: block threshold {rep['block_threshold']:.4f} (familiar recall@95%P "
            f"{rep['familiar']['recall_at_95p']:.4f}); genuine blocked: held-out categories "
            f"{rep['held_out_categories']['genuine_block_share']}, held-out brands "
            f"{rep['held_out_brands_only']['genuine_block_share']}, any {rep['held_out_any']['genuine_block_share']}"
        )

    pc.emit({
        "check": "unseen_listings",
        "date": _dt.date.today().isoformat(),
        "machine": dict(pc.machine_info(), loadavg_1m_at_start=load0),
        "train_file": os.path.basename(args.train),
        "valid_file": os.path.basename(args.valid),
        "holdout": info,
        "valid_counts": {k: len(v) for k, v in masks.items()},
        "peers": results,
        "peak_rss_mb": round(pc.peak_rss_mb(), 1),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
