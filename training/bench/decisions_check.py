"""Decision figures of a scores file against its labels (knockoff-score's --output).

    python3 training/bench/decisions_check.py LISTINGS.csv[.gz] SCORES.csv

Prints rows, blocked and review-or-block shares, and, where labels exist, the share of blocked
listings that are counterfeit and the share of counterfeits flagged (review or block), with the
breakdown by the brand relation. Also makes a sample at a given counterfeit share:

    python3 training/bench/decisions_check.py --sample 0.03 LISTINGS.csv[.gz] OUT.csv
"""
import collections, csv, gzip, random, sys


def rows(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def sample(share, src, out, seed=7):
    data = rows(src)
    genuine = [r for r in data if r["label"] == "0"]
    fakes = [r for r in data if r["label"] == "1"]
    k = round(share / (1 - share) * len(genuine))
    random.Random(seed).shuffle(fakes)
    picked = genuine + fakes[:k]
    random.Random(seed + 1).shuffle(picked)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(data[0].keys()))
        w.writeheader()
        w.writerows(picked)
    print(f"wrote {len(picked)} rows, {k} counterfeit ({k / len(picked):.2%})")


def check(listings, scores):
    labels = {r["id"]: r.get("label", "") for r in rows(listings)}
    scored = [r for r in rows(scores) if r["decision"]]
    n = len(scored)
    dec = collections.Counter(r["decision"] for r in scored)
    print(f"rows {n}: blocked {dec['block'] / n:.2%}, review or block {(dec['block'] + dec['review']) / n:.2%}")
    by = collections.Counter((r["decision"], r.get("brand_relation") or "none") for r in scored)
    print("  by decision and brand relation:", dict(sorted(by.items())))
    lab = [(r, labels.get(r["id"])) for r in scored if labels.get(r["id"]) in ("0", "1")]
    fakes = [r for r, y in lab if y == "1"]
    if fakes and any(y == "0" for _, y in lab):
        blocked = [y for r, y in lab if r["decision"] == "block"]
        flagged = sum(r["decision"] != "allow" for r in fakes)
        prec = sum(y == "1" for y in blocked) / max(len(blocked), 1)
        print(f"  blocked that are counterfeit {prec:.2%}; counterfeits flagged {flagged / len(fakes):.2%};"
              f" counterfeits blocked {sum(r['decision'] == 'block' for r in fakes) / len(fakes):.2%}")


if __name__ == "__main__":
    if sys.argv[1] == "--sample":
        sample(float(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        check(sys.argv[1], sys.argv[2])
