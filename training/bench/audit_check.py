#!/usr/bin/env python3
"""Audited prevalence on resampled populations: headline error and interval coverage.

For each counterfeit share and repetition: draw a population of --rows listings from a
labelled file at that share (seeded), run `knockoff-score --audit-sample N`, fill the audit
file's label column from the file's own labels (the reviewers' part), run
`knockoff-score --audit-labels`, and compare the audited headline and the model-based
estimate with the true share. Standard library only.

    cp /work/shared/data/listings-valid.csv /tmp/valid.csv   # or training/data/listings-valid.csv.gz
    python3 training/bench/audit_check.py --data /tmp/valid.csv \
        --bin target/release/knockoff-score --model models/default --reps 50

`--shift S` (0..1) makes each population drift the way the corpus README warns later
listings will: in a share S of listings every word of four letters or more gets a new
spelling (a letter doubled, dropped, swapped for a look-alike digit or split by a dot or a
space), and a share S of priced listings is restated in another currency (JPY, INR, HKD,
AUD, ...) at the default rates. The labels do not change, so the model's recall falls while
the audit, which only needs the reviewers' labels, should not care.
"""
import argparse
import csv
import gzip
import json
import os
import random
import subprocess
import tempfile


def read_rows(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def population(rows, share, size, rng):
    fake = [r for r in rows if r["label"].strip() == "1"]
    real = [r for r in rows if r["label"].strip() == "0"]
    n_fake = round(size * share)
    picked = rng.sample(fake, n_fake) + rng.sample(real, size - n_fake)
    rng.shuffle(picked)
    return picked, n_fake / size


LOOKALIKE = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "l": "1", "b": "8"}
# Units of the currency per US dollar (the inverse of the default rates in src/data/currency.rs).
OTHER = {"JPY": 149.0, "INR": 83.0, "HKD": 7.8, "AUD": 1.54, "CAD": 1.37, "SGD": 1.35, "EUR": 0.926}
FROM = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "CNY": 0.138}


def respell(word, rng):
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i] + word[i:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2 and word[i].lower() in LOOKALIKE:
        return word[:i] + LOOKALIKE[word[i].lower()] + word[i + 1:]
    return word[:i] + rng.choice(".- ") + word[i:]


def shifted(row, strength, rng):
    row = dict(row)
    if rng.random() < strength:
        for col in ("title", "description"):
            row[col] = " ".join(respell(w, rng) if len(w) >= 4 and w.isalpha() else w
                                for w in row[col].split(" "))
    if row["price"].strip() and row["currency"] in FROM and rng.random() < strength:
        code = rng.choice(sorted(OTHER))
        usd = float(row["price"]) * FROM[row["currency"]]
        row["price"], row["currency"] = f"{usd * OTHER[code]:.2f}", code
    return row


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")


def one(args, fields, rows, share, rep, work):
    rng = random.Random(f"{share}-{rep}")
    picked, truth = population(rows, share, args.rows, rng)
    if args.shift > 0:
        picked = [shifted(r, args.shift, rng) for r in picked]
    pop = os.path.join(work, "pop.csv")
    with open(pop, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(picked)
    labels = {r["id"]: r["label"].strip() for r in picked}
    base = [args.bin, "--model", args.model, "--input", pop, "--output", os.path.join(work, "s.csv")]
    audit = os.path.join(work, "audit.csv")
    run(base + ["--audit-sample", str(args.sample), "--audit-out", audit, "--seed", str(rep)])
    with open(audit, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        out_fields, drawn = reader.fieldnames, list(reader)
    for r in drawn:
        r["label"] = labels[r["id"]]
    with open(audit, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=out_fields)
        w.writeheader()
        w.writerows(drawn)
    report = os.path.join(work, "r.json")
    run(base + ["--audit-labels", audit, "--report", report])
    with open(report, encoding="utf-8") as f:
        js = json.load(f)
    return truth, js["overall"]["prevalence"], js["audit"]["model_based"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--bin", default="target/release/knockoff-score")
    p.add_argument("--model", default="models/default")
    p.add_argument("--shares", default="0.03,0.07,0.12")
    p.add_argument("--rows", type=int, default=10000)
    p.add_argument("--sample", type=int, default=400)
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--shift", type=float, default=0.0,
                   help="share of listings respelled and of prices restated in another currency")
    args = p.parse_args()
    fields, rows = read_rows(args.data)
    print("| true share | runs | audit mean abs. error | audit max abs. error | audit 95% CI covers | mean CI width | model-based mean abs. error | model-based covers |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as work:
        for share in (float(s) for s in args.shares.split(",")):
            errs, cover, width, merrs, mcover = [], 0, [], [], 0
            for rep in range(args.reps):
                truth, a, m = one(args, fields, rows, share, rep, work)
                errs.append(abs(a["estimate"] - truth))
                cover += a["ci_low"] <= truth <= a["ci_high"]
                width.append(a["ci_high"] - a["ci_low"])
                merrs.append(abs(m["estimate"] - truth))
                mcover += m["ci_low"] <= truth <= m["ci_high"]
            n = args.reps
            print(f"| {share:.0%} | {n} | {100*sum(errs)/n:.2f} pts | {100*max(errs):.2f} pts | "
                  f"{cover}/{n} | {100*sum(width)/n:.2f} pts | {100*sum(merrs)/n:.2f} pts | {mcover}/{n} |",
                  flush=True)


if __name__ == "__main__":
    main()
