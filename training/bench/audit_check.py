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


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")


def one(args, fields, rows, share, rep, work):
    rng = random.Random(f"{share}-{rep}")
    picked, truth = population(rows, share, args.rows, rng)
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
