#!/usr/bin/env python3
"""Learning from reviews: does the retrained model decide reviewed listings as reviewers did,
without losing validation quality?

Scores the first --rows training listings with the current model, takes those whose label
disagrees with its decision (a counterfeit allowed, a genuine listing blocked) as the
reviewed set, writes them as a JSON Lines review export, retrains with `--reviews`, and
prints, for both models, the share of reviewed listings decided as the reviewers did
(counterfeit not allowed, genuine not blocked), the same share for the listings after a small
edit (where a kept verdict no longer applies: what the model itself learned), and the
validation ROC-AUC and recall at 95% precision from metrics.json. Standard library only.

    python3 training/bench/reviews_check.py --bin-dir target/release --model models/default
"""
import argparse
import csv
import gzip
import json
import os
import subprocess
import tempfile


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return done.stdout


def agreement(bin_dir, model, reviewed, work, fields):
    """Share of `reviewed` rows decided as their reviewers did (counterfeit not allowed,
    genuine not blocked)."""
    pop = os.path.join(work, "reviewed.csv")
    with open(pop, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(reviewed)
    scores = os.path.join(work, "rs.csv")
    run([os.path.join(bin_dir, "knockoff-score"), "--model", model, "--input", pop, "--output", scores])
    with open(scores, newline="", encoding="utf-8") as f:
        decided = {r["id"]: r["decision"] for r in csv.DictReader(f)}
    agree = sum(
        (decided[r["id"]] != "allow") if r["label"] == "1" else (decided[r["id"]] != "block")
        for r in reviewed
    )
    return agree / len(reviewed)


def edited(row):
    """The same listing after a small edit (price up 1%, or a word added to the description):
    a verdict the model keeps no longer applies, so this shows what the model itself learned."""
    row = dict(row)
    if row["price"]:
        row["price"] = f"{float(row['price']) * 1.01:.2f}"
    else:
        row["description"] = (row["description"] + " new").strip()
    return row


def figures(model):
    with open(os.path.join(model, "metrics.json"), encoding="utf-8") as f:
        v = json.load(f)["validation"]
    return v["roc_auc"], v["recall_at_95_precision"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin-dir", default="target/release")
    p.add_argument("--model", default="models/default")
    p.add_argument("--train", default="training/data/listings-train.csv.gz")
    p.add_argument("--rows", type=int, default=40000)
    p.add_argument("--max-reviews", type=int, default=300)
    p.add_argument("--review-weight", default="4")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        with gzip.open(args.train, "rt", newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames
            rows = [r for _, r in zip(range(args.rows), reader)]
        head = os.path.join(work, "head.csv")
        with open(head, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
        scores = os.path.join(work, "s.csv")
        run([os.path.join(args.bin_dir, "knockoff-score"), "--model", args.model, "--input", head, "--output", scores])
        with open(scores, newline="", encoding="utf-8") as f:
            decided = {r["id"]: r["decision"] for r in csv.DictReader(f)}
        wrong = [r for r in rows if (r["label"] == "1" and decided.get(r["id"]) == "allow")
                 or (r["label"] == "0" and decided.get(r["id"]) == "block")][: args.max_reviews]
        reviews = os.path.join(work, "reviews.jsonl")
        with open(reviews, "w", encoding="utf-8") as f:
            for r in wrong:
                f.write(json.dumps({
                    "id": r["id"], "title": r["title"], "description": r["description"],
                    "price": float(r["price"]) if r["price"] else None, "currency": r["currency"] or None,
                    "brand": r["brand"], "category": r["category"],
                    "label": "counterfeit" if r["label"] == "1" else "genuine",
                    "reviewer": "bench", "reviewed_at": "2026-01-01T00:00:00Z",
                    "model_version": None, "probability": None, "note": None}) + "\n")
        counterfeit = sum(r["label"] == "1" for r in wrong)
        print(f"reviewed listings: {len(wrong)} ({counterfeit} counterfeit allowed, "
              f"{len(wrong) - counterfeit} genuine blocked by {args.model})")
        retrained = os.path.join(work, "with-reviews")
        print(run([os.path.join(args.bin_dir, "knockoff-train"), "--out", retrained,
                   "--reviews", reviews, "--review-weight", args.review_weight]).strip().splitlines()[-2])
        copies = [edited(r) for r in wrong]
        print("| model | reviewed listings decided as reviewers did | the same after a small edit | validation ROC-AUC | recall at 95% precision |")
        print("| --- | --- | --- | --- | --- |")
        for name, model in (("without reviews", args.model), (f"--reviews, weight {args.review_weight}", retrained)):
            auc, r95 = figures(model)
            same = agreement(args.bin_dir, model, wrong, work, fields)
            near = agreement(args.bin_dir, model, copies, work, fields)
            print(f"| {name} | {100 * same:.1f}% | {100 * near:.1f}% | {auc:.4f} | {r95:.4f} |")


if __name__ == "__main__":
    main()
