#!/usr/bin/env python3
"""Inputs for the benchmarks (standard library only; any python3 runs it).

    python3 training/bench/make_data.py --out /tmp/knockoff-bench/data

writes into --out:
  listings-1m.csv     exactly --rows (default 1,000,000) rows, plain CSV, the training file's
                      rows repeated in order (ids repeat; knockoff-score does not need unique ids)
  single.jsonl        one JSON listing per line: the first --single (default 1000) validation
                      rows without the label, the body of a single-listing POST /v1/score
  batch-1000.jsonl    --batches (default 8) lines, each {"listings": [1000 listings]} taken from
                      consecutive validation rows (different listings in every batch)

Prices are sent as JSON numbers when they parse, else as the original string (or null when
empty), the way a client holding the CSV would send them.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "training" / "data" / "listings-train.csv.gz"
VALID = REPO / "training" / "data" / "listings-valid.csv.gz"
FIELDS = ("id", "title", "description", "price", "currency", "brand", "category")


def read(path: Path):
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        return header, list(reader)


def listing(row: dict) -> dict:
    out = {k: row.get(k, "") for k in FIELDS}
    price = out["price"]
    if price == "":
        out["price"] = None
    else:
        try:
            out["price"] = float(price)
        except ValueError:
            pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/knockoff-bench/data")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--single", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=8)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    header, train = read(TRAIN)
    big = out / "listings-1m.csv"
    with open(big, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        for i in range(args.rows):
            w.writerow(train[i % len(train)])
    del train

    _, valid = read(VALID)
    with open(out / "single.jsonl", "w", encoding="utf-8") as fh:
        for row in valid[: args.single]:
            fh.write(json.dumps(listing(row), ensure_ascii=False) + "\n")
    with open(out / "batch-1000.jsonl", "w", encoding="utf-8") as fh:
        for b in range(args.batches):
            rows = valid[b * 1000 : (b + 1) * 1000]
            fh.write(json.dumps({"listings": [listing(r) for r in rows]}, ensure_ascii=False) + "\n")
    for name in ("listings-1m.csv", "single.jsonl", "batch-1000.jsonl"):
        p = out / name
        print(f"{p}: {os.path.getsize(p) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
