#!/usr/bin/env python3
"""Markdown tables from one or more run.sh results directories (standard library only).

    python3 training/bench/summarize.py /tmp/knockoff-bench/results/<timestamp> [more dirs...]

Reads each directory's summary.tsv (later directories win for the same figure) and prints the
tables BENCHMARKS.md is built from. Every figure carries the 1-minute load average at the start
of its measurement.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from pathlib import Path


def load(dirs):
    figures: dict[tuple[str, str, str], tuple[str, str]] = {}
    for d in dirs:
        for i, line in enumerate(Path(d, "summary.tsv").read_text(encoding="utf-8").splitlines()):
            if i == 0 or not line.strip():
                continue
            parts = line.split("\t")
            section, subject, metric, value, load1 = (parts + [""] * 5)[:5]
            figures[(section, subject, metric)] = (value, load1)
    return figures


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def fmt(v, digits=0):
    x = num(v)
    if x is None:
        return v or "—"
    return f"{x:,.{digits}f}"


def main() -> int:
    dirs = sys.argv[1:]
    if not dirs:
        print(__doc__)
        return 2
    f = load(dirs)
    get = lambda s, sub, m: f.get((s, sub, m), ("", ""))  # noqa: E731

    # ---------------------------------------------------------------- training
    if any(k[0] == "train" for k in f):
        print("### Training\n")
        print("| program | wall, whole process | training only | peak RSS | ROC-AUC | PR-AUC | recall@95%P | ECE | load |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        k = "knockoff-train"
        print(f"| knockoff-train | {fmt(get('train', k, 'wall_s')[0], 1)} s | "
              f"{fmt(get('train', k, 'train_s_reported')[0], 1)} s (its own `seconds.total`) | "
              f"{fmt(get('train', k, 'peak_rss_mib')[0])} MiB | {get('train', k, 'roc_auc')[0]} | "
              f"{get('train', k, 'pr_auc')[0]} | {get('train', k, 'recall_at_95_precision')[0]} | "
              f"{get('train', k, 'expected_calibration_error')[0]} (10 bins) | {get('train', k, 'wall_s')[1]} |")
        k = "fasttext"
        print(f"| fastText (peer_fasttext.py) | {fmt(get('train', k, 'process_wall_s')[0], 1)} s | "
              f"{fmt(get('train', k, 'train_supervised_s')[0], 1)} s `train_supervised` (+{fmt(get('train', k, 'text_prep_s')[0], 1)} s text file) | "
              f"{fmt(get('train', k, 'peak_rss_mib')[0])} MiB | {get('train', k, 'roc_auc')[0]} | {get('train', k, 'pr_auc')[0]} | "
              f"{get('train', k, 'recall_at_95p')[0]} | {get('train', k, 'ece_15')[0]} (15 bins) | {get('train', k, 'process_wall_s')[1]} |")
        k = "tfidf_lr"
        print(f"| TF-IDF+LR (peer_tfidf_lr.py) | {fmt(get('train', k, 'process_wall_s')[0], 1)} s | "
              f"{fmt(get('train', k, 'train_s')[0], 1)} s featurise + LR | {fmt(get('train', k, 'peak_rss_mib')[0])} MiB | "
              f"{get('train', k, 'roc_auc')[0]} | {get('train', k, 'pr_auc')[0]} | {get('train', k, 'recall_at_95p')[0]} | "
              f"{get('train', k, 'ece_15')[0]} (15 bins) | {get('train', k, 'process_wall_s')[1]} |")
        print()

    # ---------------------------------------------------------------- unfamiliar
    if any(k[0] == "unfamiliar" for k in f):
        print("### Unfamiliar listings\n")
        for key, (value, load1) in f.items():
            if key[0] == "unfamiliar":
                print(f"- {key[1]} {key[2]} (load {load1}): `{value}`")
        print()

    # ---------------------------------------------------------------- scoring
    if any(k[0] == "scoring" for k in f):
        print("### Batch scoring, file -> file\n")
        print("| input | program | listings/s (scoring, as printed) | listings/s (whole process) | peak RSS | load |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, label in (("train206k", "training file, 206,078 rows, .csv.gz"), ("csv1m", "1,000,000 rows, plain CSV")):
            runs = sorted({k[1] for k in f if k[0] == "scoring" and k[1].startswith(f"knockoff/{name}/")})
            if runs:
                sf = [num(get("scoring", r, "score_file_rows_per_s")[0]) for r in runs]
                pr = [num(get("scoring", r, "process_rows_per_s")[0]) for r in runs]
                rss = [num(get("scoring", r, "peak_rss_mib")[0]) for r in runs]
                loads = [get("scoring", r, "rows")[1] for r in runs]
                sf = [x for x in sf if x is not None]
                pr = [x for x in pr if x is not None]
                rss = [x for x in rss if x is not None]
                if sf and pr and rss:
                    print(f"| {label} | knockoff-score (median of {len(runs)}; range) | "
                          f"**{statistics.median(sf):,.0f}** ({min(sf):,.0f}–{max(sf):,.0f}) | "
                          f"{statistics.median(pr):,.0f} ({min(pr):,.0f}–{max(pr):,.0f}) | {max(rss):,.0f} MiB | {', '.join(loads)} |")
            for peer, plabel in (("fasttext", "fastText"), ("tfidf", "TF-IDF+LR")):
                sub = f"{peer}/{name}"
                if (("scoring", sub, "rows")) in f:
                    pred = get("scoring", sub, "predict_rows_per_s")[0]
                    pp = get("scoring", sub, "prep_and_predict_rows_per_s")[0]
                    ff = get("scoring", sub, "file_to_file_rows_per_s")[0]
                    extra = f"predict only {fmt(pred)}; text prep + predict {fmt(pp)}" if peer == "fasttext" else f"featurise + predict_proba {fmt(pred)}"
                    print(f"| {label} | {plabel} (peer_predict.py) | {fmt(ff)} file→file ({extra}) | — | "
                          f"{fmt(get('scoring', sub, 'peak_rss_mib')[0])} MiB | {get('scoring', sub, 'rows')[1]} |")
        print()
        for name in ("train206k", "csv1m"):
            k = ("scoring", f"throughput-bench/{name}", "output")
            if k in f:
                print(f"`cargo bench --bench throughput` on {name} (load {f[k][1]}):\n")
                print("```")
                print(f[k][0].replace(";", "\n").strip())
                print("```\n")

    # ---------------------------------------------------------------- server
    servers = []
    for k in f:
        if k[0] == "server" and k[1] not in servers:
            servers.append(k[1])
    if servers:
        print("### Server, POST /v1/score\n")
        print("| server | req/s at 64 conns (p50 / p99 ms) | p50 / p99 ms at 4 conns (req/s) | paced ≈½ max: req/s achieved, p50 / p99 ms | batches of 1000: listings/s (p50 ms per batch) | RSS idle / max under load | load at start (c64, c4, ½, batch) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for s in servers:
            g = lambda m: get("server", s, m)[0]  # noqa: E731
            gl = lambda m: get("server", s, m)[1]  # noqa: E731
            batch = "—"
            if g("batch_listings_per_s") and s.startswith("trivial"):
                # The trivial handler scores nothing: only its request rate means something.
                batch = f"{fmt(g('batch_req_per_s'))} req/s of 1000-listing bodies, nothing scored ({fmt(g('batch_p50_ms'), 1)})"
            elif g("batch_listings_per_s"):
                batch = f"{fmt(g('batch_listings_per_s'))} ({fmt(g('batch_p50_ms'), 1)})"
            rss_max = max([x for x in (num(g("c64_rss_max_mib")), num(g("batch_rss_max_mib"))) if x is not None], default=None)
            print(f"| {s} | **{fmt(g('c64_req_per_s'))}** ({fmt(g('c64_p50_ms'), 2)} / {fmt(g('c64_p99_ms'), 2)}) | "
                  f"{fmt(g('c4_p50_ms'), 2)} / **{fmt(g('c4_p99_ms'), 2)}** ({fmt(g('c4_req_per_s'))}) | "
                  f"{fmt(g('half_req_per_s'))} of target {fmt(g('half_target_req_per_s'))} [{g('half_pacing')}]: {fmt(g('half_p50_ms'), 2)} / {fmt(g('half_p99_ms'), 2)} | "
                  f"{batch} | {fmt(g('rss_idle_mib'), 0)} / {fmt(rss_max, 0) if rss_max is not None else '—'} MiB | "
                  f"{gl('c64_req_per_s')}, {gl('c4_req_per_s')}, {gl('half_req_per_s')}, {gl('batch_req_per_s') or '—'} |")
        errs = [(s, m, get("server", s, m)[0]) for s in servers for m in ("c64_errors", "c4_errors", "half_errors", "batch_errors") if get("server", s, m)[0]]
        if errs:
            print("\nErrors reported by wrk:")
            for s, m, v in errs:
                print(f"- {s} {m}: {v}")
        print()
        base = num(get("server", "knockoff", "c64_req_per_s")[0])
        if base:
            print("Ratios at 64 connections: " + "; ".join(
                f"knockoff / {s} = {base / num(get('server', s, 'c64_req_per_s')[0]):.2f}"
                for s in servers if s != "knockoff" and num(get("server", s, "c64_req_per_s")[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
