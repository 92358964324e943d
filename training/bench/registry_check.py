#!/usr/bin/env python3
"""Listings of a brand no training file names, for checking the brand registry.

Takes the small-brand (`sme`) listings of a labelled file, renames their brand to a new one
(obfuscated in counterfeits: leet, spaced, full-width, alias), maps each to one of three
registered products and sets its price from that product's list price: counterfeits at 5-40%,
genuine at 70-110%. Writes the listings (CSV, the listing schema plus `label`) and the
registration (`{"name", "aliases", "products"}`, one JSON line) the check uses.

    python3 training/bench/registry_check.py VALID.csv --out-dir /tmp/reg --seed 7
"""
import argparse
import csv
import json
import random
from pathlib import Path

PRODUCTS = [
    ("Aurora tote", "bags", 420.0),
    ("Meridian wallet", "bags", 180.0),
    ("Solstice scarf", "apparel", 95.0),
]


def disguise(name, rng):
    forms = [
        name,
        name.upper(),
        name.replace("e", "3").replace("a", "4"),
        " ".join(name.upper()),
        "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name),
        name.replace("a", "а").replace("e", "е"),  # Cyrillic look-alikes
    ]
    return rng.choice(forms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("labelled")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--brand", default="Verdanne")
    ap.add_argument("--alias", default="维丹妮")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows = [r for r in csv.DictReader(open(args.labelled, encoding="utf-8")) if r["category"] == "sme" and r["brand"]]
    # Words most of a brand's listings share name its product ("10x42 binoculars"): they go,
    # and the new brand's product name takes their place; the rest (coded words, colours,
    # conditions) stays.
    by_brand = {}
    for r in rows:
        by_brand.setdefault(r["brand"], []).append(set(r["title"].lower().split()))
    product_words = {}
    for brand, titles in by_brand.items():
        counts = {}
        for t in titles:
            for word in t:
                counts[word] = counts.get(word, 0) + 1
        product_words[brand] = {w for w, n in counts.items() if n >= 0.2 * len(titles)}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "listings.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "description", "price", "currency", "brand", "category", "label"])
        for i, r in enumerate(rows):
            fake = r["label"] == "1"
            product, category, list_price = rng.choice(PRODUCTS)
            # The row's own words after its brand stay (its coded words, colours, sizes).
            rest = "".join(
                " " + w for w in r["title"].split() if w.lower() not in product_words[r["brand"]]
            )
            if fake:
                name = args.alias if rng.random() < 0.2 else disguise(args.brand, rng)
                ratio = rng.uniform(0.05, 0.40)
                field = rng.choice(["", args.brand, "Generic"])
            else:
                name = args.brand
                ratio = rng.uniform(0.70, 1.10)
                field = args.brand
            title = f"{name} {product}{rest}"
            w.writerow([f"reg-{i}", title, "", f"{list_price * ratio:.2f}", "EUR", field, category, r["label"]])
    entry = {
        "name": args.brand,
        "aliases": [args.alias],
        "products": [{"name": p, "category": c, "list_price": lp, "currency": "EUR"} for p, c, lp in PRODUCTS],
    }
    (out / "registration.jsonl").write_text(json.dumps(entry, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
