#!/usr/bin/env python3
"""Per-group block shares of a hold-out model on the validation file (standard library only).

knockoff-train --holdout-categories home,pets --holdout-brand-share 0.2 prints one figure for
all unfamiliar validation listings together. peer_unseen.py also splits them into the held-out
categories and the held-out brands. The held-out *categories* are the same validation rows in
both protocols (the brands differ: knockoff picks them by a seeded hash of the name, the peers by
random.sample with seed 0), so this script gives the category figure for knockoff:

    target/release/knockoff-score --model /tmp/holdout --input training/data/listings-valid.csv.gz \
        --output /tmp/holdout-valid.csv
    python3 training/bench/unfamiliar_groups.py --scores /tmp/holdout-valid.csv --categories home,pets

The decisions are knockoff-score's, i.e. the hold-out model's own block threshold (chosen for
95% precision on the familiar validation rows). knockoff-score writes one output row per input
row, in order, so rows are matched by position (and the ids are checked).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path

VALID = Path(__file__).resolve().parents[2] / "training" / "data" / "listings-valid.csv.gz"


def key(s: str) -> str:
    return " ".join((s or "").lower().split())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--valid", default=str(VALID))
    ap.add_argument("--scores", required=True, help="knockoff-score --output of the validation file")
    ap.add_argument("--categories", default="home,pets")
    args = ap.parse_args()
    cats = {key(c) for c in args.categories.split(",") if key(c)}
    with gzip.open(args.valid, "rt", encoding="utf-8", newline="") as fh:
        valid = list(csv.DictReader(fh))
    with open(args.scores, encoding="utf-8", newline="") as fh:
        scores = list(csv.DictReader(fh))
    assert len(valid) == len(scores), (len(valid), len(scores))
    groups = {"held_out_categories": [], "other_categories": []}
    for v, s in zip(valid, scores):
        assert v["id"] == s["id"], (v["id"], s["id"])
        name = "held_out_categories" if key(v["category"]) in cats else "other_categories"
        groups[name].append((v["label"] == "1", s["decision"]))
    out = {"categories": sorted(cats)}
    for name, rows in groups.items():
        genuine = [d for fake, d in rows if not fake]
        fakes = [d for fake, d in rows if fake]
        out[name] = {
            "genuine_n": len(genuine),
            "genuine_blocked": sum(d == "block" for d in genuine),
            "genuine_block_share": round(sum(d == "block" for d in genuine) / max(1, len(genuine)), 5),
            "genuine_flagged_share": round(sum(d != "allow" for d in genuine) / max(1, len(genuine)), 5),
            "counterfeit_n": len(fakes),
            "counterfeit_block_share": round(sum(d == "block" for d in fakes) / max(1, len(fakes)), 5),
        }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
