#!/usr/bin/env python3
"""Python peer server: FastAPI + uvicorn serving the TF-IDF + LR peer (peer_tfidf_lr.py --save).

    POST /v1/score   body: one listing
        {"id": "x1", "title": "...", "description": "...", "price": 12.5, "currency": "USD",
         "brand": "...", "category": "..."}
    ->  {"results": [{"id": "x1", "probability": 0.031, "decision": "allow"}]}
    GET  /healthz    -> {"status": "ok", ...}

decision: "block" if probability >= the 95%-precision threshold chosen on validation by
peer_tfidf_lr.py, "review" if >= the 95%-recall threshold, else "allow" (the thresholds are
stored in the model bundle; --block/--review override them).

Run (single worker by default; access log off so the load test measures the model + framework):
    training/peers/.venv/bin/python training/peers/serve_fastapi.py --model /tmp/peer_tfidf_lr.joblib \
        --host 127.0.0.1 --port 8000 [--workers N]
or directly with uvicorn:
    KNOCKOFF_PEER_MODEL=/tmp/peer_tfidf_lr.joblib training/peers/.venv/bin/uvicorn \
        --app-dir training/peers serve_fastapi:app --port 8000 --workers 1 --no-access-log
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import asynccontextmanager
from typing import Optional, Union

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# One scoring request is tiny: one BLAS thread per worker process is plenty.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import peers_common as pc  # noqa: E402
import peer_tfidf_lr  # noqa: E402

from fastapi import FastAPI, HTTPException  # noqa: E402
from pydantic import BaseModel  # noqa: E402

MODEL_ENV = "KNOCKOFF_PEER_MODEL"
BLOCK_ENV = "KNOCKOFF_PEER_BLOCK"
REVIEW_ENV = "KNOCKOFF_PEER_REVIEW"

STATE: dict = {}


class Listing(BaseModel):
    id: Union[str, int, None] = None
    title: Optional[str] = ""
    description: Optional[str] = ""
    price: Union[float, str, None] = None
    currency: Optional[str] = ""
    brand: Optional[str] = ""
    category: Optional[str] = ""


def load_model(path: str) -> None:
    import joblib

    bundle = joblib.load(path)
    if bundle.get("kind") != "knockoff-peer-tfidf-lr":
        raise SystemExit(f"{path} is not a peer_tfidf_lr.py model bundle")
    th = dict(bundle.get("thresholds") or {"block": 0.5, "review": 0.2})
    if os.environ.get(BLOCK_ENV):
        th["block"] = float(os.environ[BLOCK_ENV])
    if os.environ.get(REVIEW_ENV):
        th["review"] = float(os.environ[REVIEW_ENV])
    STATE.update(bundle=bundle, thresholds=th, path=path)


@asynccontextmanager
async def lifespan(_app: FastAPI):
    if "bundle" not in STATE:
        path = os.environ.get(MODEL_ENV)
        if not path:
            raise SystemExit(f"set {MODEL_ENV} (or use --model) to a model saved by peer_tfidf_lr.py --save")
        load_model(path)
    yield


app = FastAPI(title="knockoff peer: TF-IDF + LR", lifespan=lifespan)


def decide(p: float, th: dict) -> str:
    if p >= th["block"]:
        return "block"
    if p >= th["review"]:
        return "review"
    return "allow"


@app.get("/healthz")
async def healthz():
    return {"status": "ok", "model": os.path.basename(STATE.get("path", "")), "thresholds": STATE.get("thresholds")}


@app.post("/v1/score")
async def score(listing: Listing):
    row = {
        "id": listing.id,
        "title": listing.title or "",
        "description": listing.description or "",
        "price": "" if listing.price is None else str(listing.price),
        "currency": listing.currency or "",
        "brand": listing.brand or "",
        "category": listing.category or "",
    }
    try:
        p = float(peer_tfidf_lr.predict_proba(STATE["bundle"], [row])[0])
    except Exception as e:  # pragma: no cover - defensive
        raise HTTPException(status_code=422, detail=f"could not score listing: {e}")
    return {"results": [{"id": listing.id, "probability": p, "decision": decide(p, STATE["thresholds"])}]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="joblib bundle written by peer_tfidf_lr.py --save")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    ap.add_argument("--access-log", action="store_true", help="enable uvicorn's access log (off by default)")
    ap.add_argument("--log-level", default="warning")
    args = ap.parse_args(argv)

    import uvicorn

    os.environ[MODEL_ENV] = os.path.abspath(args.model)
    load_model(os.environ[MODEL_ENV])  # fail fast on a bad path, before binding the port
    STATE.clear()  # each worker (or this process) loads it again in lifespan
    uvicorn.run("serve_fastapi:app", app_dir=HERE, host=args.host, port=args.port, workers=args.workers,
                access_log=args.access_log, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
