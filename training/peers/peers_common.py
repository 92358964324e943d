"""Shared pieces of the peer baselines: data loading, price features, metrics, hold-out splits.

Pure Python + numpy + scikit-learn (pandas is not needed). Imported by the peer scripts and by
serve_fastapi.py, so everything a saved model needs at scoring time lives here.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import random
import resource
import sys
import time
from pathlib import Path

# Keep every BLAS/OpenMP pool at <= 2 threads (the machine has 2 cores and is shared).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TRAIN = REPO_ROOT / "training" / "data" / "listings-train.csv.gz"
DEFAULT_VALID = REPO_ROOT / "training" / "data" / "listings-valid.csv.gz"

# Fixed conversion rates into USD (price_usd = amount * rate). Unknown currency => price missing.
USD_RATES = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "CNY": 0.14, "JPY": 0.0067, "INR": 0.012}

FIELDS = ("id", "title", "description", "price", "currency", "brand", "category")

# A brand+category group needs this many priced genuine training rows to give its own median;
# otherwise the reference falls back to the category median, then to the global median.
MIN_GROUP_ROWS = 3


# --------------------------------------------------------------------------------------------
# logging / resources


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine_info() -> dict:
    """Cores, Python version, thread cap and the 1-minute load average (the machine is shared:
    a load above ~2 means other work was competing for the 2 cores during the timings)."""
    import platform

    return {"cores": os.cpu_count(), "python": platform.python_version(), "threads": 2,
            "loadavg_1m": round(os.getloadavg()[0], 2)}


def limit_threads(n: int = 2) -> None:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except Exception:  # pragma: no cover - threadpoolctl is optional
        pass


def emit(result: dict) -> None:
    """The one JSON line of results on stdout."""
    sys.stdout.write(json.dumps(result, sort_keys=False) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------------------------
# data


def load_csv(path: str | os.PathLike) -> list[dict]:
    """Reads a listings CSV (optionally .gz) into a list of dicts with str fields and int label."""
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for r in reader:
            row = {k: (r.get(k) or "") for k in FIELDS}
            lab = r.get("label")
            row["label"] = int(lab) if lab not in (None, "") else -1
            rows.append(row)
    return rows


def labels(rows: list[dict]) -> np.ndarray:
    return np.fromiter((r["label"] for r in rows), dtype=np.int8, count=len(rows))


def norm_key(s) -> str:
    return (s or "").strip().lower()


def price_usd(row: dict) -> float:
    """USD price, or NaN when missing, unparsable, non-positive or in an unknown currency."""
    p = row.get("price")
    if p is None or p == "":
        return math.nan
    try:
        v = float(p)
    except (TypeError, ValueError):
        return math.nan
    rate = USD_RATES.get(str(row.get("currency") or "").strip().upper())
    if rate is None or not math.isfinite(v) or v <= 0:
        return math.nan
    return v * rate


class PriceReference:
    """Median genuine USD price per (brand, category), per category and globally, from training."""

    def __init__(self, min_group_rows: int = MIN_GROUP_ROWS):
        self.min_group_rows = min_group_rows
        self.by_brand_cat: dict[tuple[str, str], float] = {}
        self.by_cat: dict[str, float] = {}
        self.global_median = 1.0

    def fit(self, rows: list[dict]) -> "PriceReference":
        bc: dict[tuple[str, str], list[float]] = {}
        cat: dict[str, list[float]] = {}
        allp: list[float] = []
        for r in rows:
            if r["label"] != 0:
                continue
            p = price_usd(r)
            if not math.isfinite(p):
                continue
            b, c = norm_key(r["brand"]), norm_key(r["category"])
            if b:
                bc.setdefault((b, c), []).append(p)
            cat.setdefault(c, []).append(p)
            allp.append(p)
        m = self.min_group_rows
        self.by_brand_cat = {k: float(np.median(v)) for k, v in bc.items() if len(v) >= m}
        self.by_cat = {k: float(np.median(v)) for k, v in cat.items() if len(v) >= m}
        self.global_median = float(np.median(allp)) if allp else 1.0
        return self

    def reference(self, row: dict) -> float:
        b, c = norm_key(row.get("brand")), norm_key(row.get("category"))
        if b:
            v = self.by_brand_cat.get((b, c))
            if v is not None:
                return v
        v = self.by_cat.get(c)
        if v is not None:
            return v
        return self.global_median


def price_features(rows: list[dict], ref: PriceReference) -> np.ndarray:
    """Columns: log(USD price), log(price / reference genuine median), missing flag.

    Missing prices get log price = log(reference) and ratio 0 (i.e. "typical"), flag 1.
    The ratio is clipped to [-6, 6].
    """
    out = np.zeros((len(rows), 3), dtype=np.float64)
    for i, r in enumerate(rows):
        p = price_usd(r)
        refp = ref.reference(r)
        if math.isfinite(p):
            out[i, 0] = math.log(p)
            out[i, 1] = min(6.0, max(-6.0, math.log(p / refp)))
        else:
            out[i, 0] = math.log(refp)
            out[i, 1] = 0.0
            out[i, 2] = 1.0
    return out


def price_bucket(log_ratio: float, missing: bool) -> str:
    """Discretised price ratio token, e.g. `__price_bucket_-3` (half-log steps, clipped)."""
    if missing:
        return "__price_missing"
    k = int(math.floor(log_ratio * 2.0))
    k = max(-8, min(4, k))
    return f"__price_bucket_{k}"


def listing_text(row: dict) -> str:
    """title + description + brand + category, for the character n-gram TF-IDF."""
    return " | ".join(
        (row.get("title") or "", row.get("description") or "", row.get("brand") or "", row.get("category") or "")
    )


# --------------------------------------------------------------------------------------------
# metrics


def roc_auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def average_precision(y, p) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p))


def threshold_at_precision(y, p, target: float = 0.95) -> tuple[float, float, float]:
    """(threshold, recall, precision) of the lowest threshold whose precision is >= target.

    Scanning every distinct score, this is the operating point with the highest recall among
    those meeting the precision target. Returns (inf, 0, nan) if no threshold reaches it.
    """
    from sklearn.metrics import precision_recall_curve

    prec, rec, thr = precision_recall_curve(y, p)
    prec, rec = prec[:-1], rec[:-1]  # last point has no threshold
    ok = np.where(prec >= target)[0]
    if len(ok) == 0:
        return math.inf, 0.0, math.nan
    best = ok[np.argmax(rec[ok])]
    return float(thr[best]), float(rec[best]), float(prec[best])


def threshold_at_recall(y, p, target: float = 0.95) -> float:
    """Highest threshold whose recall is >= target (used as the `review` cut-off)."""
    from sklearn.metrics import precision_recall_curve

    prec, rec, thr = precision_recall_curve(y, p)
    ok = np.where(rec[:-1] >= target)[0]
    if len(ok) == 0:
        return float(thr[0])
    return float(thr[ok.max()])


def ece(y, p, n_bins: int = 15) -> float:
    """Expected calibration error, equal-width bins on P(counterfeit), weighted by bin size."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(p[m].mean() - y[m].mean())
    return float(total / len(p))


def evaluate(y, p) -> dict:
    thr, rec, prec = threshold_at_precision(y, p, 0.95)
    return {
        "roc_auc": round(roc_auc(y, p), 5),
        "pr_auc": round(average_precision(y, p), 5),
        "recall_at_95p": round(rec, 5),
        "threshold_at_95p": thr,
        "ece_15": round(ece(y, p, 15), 5),
        "n": int(len(y)),
        "positives": int(np.sum(y)),
    }


# --------------------------------------------------------------------------------------------
# the "unfamiliar listings" protocol


def holdout_split(train: list[dict], valid: list[dict], holdout_categories, brand_share: float, seed: int):
    """Removes held-out categories and a seeded random share of brands from training.

    Brands are the distinct non-empty `brand` values (case-insensitive) of the training file,
    sorted, then sampled with random.Random(seed). Rows with an empty brand are never brand-held-out.
    Returns (train_kept, valid_familiar, valid_unseen_masks, info): valid_familiar are validation
    rows from neither held-out set; valid_unseen_masks holds index lists into `valid`.
    """
    cats = {norm_key(c) for c in holdout_categories if norm_key(c)}
    brands = sorted({norm_key(r["brand"]) for r in train if norm_key(r["brand"])})
    rng = random.Random(seed)
    k = int(round(brand_share * len(brands)))
    held_brands = set(rng.sample(brands, k)) if k else set()

    def is_cat(r):
        return norm_key(r["category"]) in cats

    def is_brand(r):
        b = norm_key(r["brand"])
        return bool(b) and b in held_brands

    train_kept = [r for r in train if not is_cat(r) and not is_brand(r)]
    familiar, in_cat, in_brand_only, unseen_any = [], [], [], []
    for i, r in enumerate(valid):
        c, b = is_cat(r), is_brand(r)
        if c or b:
            unseen_any.append(i)
            if c:
                in_cat.append(i)
            else:
                in_brand_only.append(i)
        else:
            familiar.append(i)
    info = {
        "holdout_categories": sorted(cats),
        "brand_share": brand_share,
        "seed": seed,
        "brands_total": len(brands),
        "brands_held_out": len(held_brands),
        "train_rows_kept": len(train_kept),
        "train_rows_removed": len(train) - len(train_kept),
    }
    masks = {"familiar": familiar, "held_out_categories": in_cat, "held_out_brands_only": in_brand_only,
             "held_out_any": unseen_any}
    return train_kept, masks, info


def unseen_report(y_valid, p_valid, masks) -> dict:
    """Block share on genuine held-out validation rows at the 95%-precision threshold of familiar rows."""
    y = np.asarray(y_valid)
    p = np.asarray(p_valid)
    fam = np.asarray(masks["familiar"], dtype=np.int64)
    thr, rec, prec = threshold_at_precision(y[fam], p[fam], 0.95)
    out = {
        "block_threshold": thr,
        "familiar": {"n": int(len(fam)), "recall_at_95p": round(rec, 5), "precision": round(prec, 5),
                     "roc_auc": round(roc_auc(y[fam], p[fam]), 5)},
    }
    for name in ("held_out_categories", "held_out_brands_only", "held_out_any"):
        idx = np.asarray(masks[name], dtype=np.int64)
        if len(idx) == 0:
            out[name] = {"genuine_n": 0, "genuine_block_share": None}
            continue
        yy, pp = y[idx], p[idx]
        gen = yy == 0
        cf = yy == 1
        out[name] = {
            "genuine_n": int(gen.sum()),
            "genuine_blocked": int((pp[gen] >= thr).sum()),
            "genuine_block_share": round(float((pp[gen] >= thr).mean()), 5) if gen.any() else None,
            "counterfeit_n": int(cf.sum()),
            "counterfeit_block_share": round(float((pp[cf] >= thr).mean()), 5) if cf.any() else None,
        }
    return out


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def lap(self) -> float:
        t = time.perf_counter()
        d = t - self.t0
        self.t0 = t
        return d
