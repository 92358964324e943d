"""Scores listings on a running knockoff-serve with an unmodified tritonclient[http].

JSON encoding only (binary_data=False). Exits non-zero with a message on the first wrong
answer; on success prints one JSON line: {"probability": [...], "decision": [...]} for the
listings below, so the Rust test can compare them with /v1/score.

Usage: python tests/triton_client.py --url 127.0.0.1:8080 --model NAME
Needs: pip install "tritonclient[http]" numpy
"""

import argparse
import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

LISTINGS = [
    {"title": "Rolex Submariner 1:1 super clone AAA", "description": "factory direct, wholesale price",
     "price": 45.0, "currency": "USD", "brand": "Rolex", "category": "watches"},
    {"title": "Irontek ceramic coffee mug set of 4 green", "description": "",
     "price": 37.46, "currency": "USD", "brand": "Irontek", "category": "home"},
    {"title": "Nike Air Jordan 1 Retro High OG red", "description": "48小时内发货",
     "price": 160.37, "currency": "EUR", "brand": "Nike", "category": "sneakers"},
]


def fail(message):
    print(f"triton_client: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def text_input(name, values, nested):
    # Both [n] and [n, 1] layouts, as real clients send either.
    array = np.array([v.encode("utf-8") for v in values], dtype=np.object_)
    if nested:
        array = array.reshape(-1, 1)
    tensor = httpclient.InferInput(name, list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array, binary_data=False)
    return tensor


def price_input(values, dtype, datatype):
    array = np.array(values, dtype=dtype)
    tensor = httpclient.InferInput("price", list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=False)
    return tensor


def inputs_for(listings, price_dtype=np.float64, price_datatype="FP64"):
    column = lambda key: [item[key] for item in listings]
    return [
        text_input("title", column("title"), nested=False),
        text_input("description", column("description"), nested=True),
        text_input("brand", column("brand"), nested=False),
        text_input("category", column("category"), nested=True),
        text_input("currency", column("currency"), nested=False),
        price_input(column("price"), price_dtype, price_datatype),
    ]


def as_text(values):
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="host:port of knockoff-serve")
    parser.add_argument("--model", required=True, help="the served model's name")
    args = parser.parse_args()

    client = httpclient.InferenceServerClient(url=args.url)
    check(client.is_server_live(), "server is not live")
    check(client.is_server_ready(), "server is not ready")
    check(client.is_model_ready(args.model), "model is not ready")
    check(not client.is_model_ready("no-such-model"), "an unknown model claims to be ready")

    server = client.get_server_metadata()
    check(server["name"] == "knockoff-serve", f"server metadata: {server}")
    metadata = client.get_model_metadata(args.model)
    check(metadata["name"] == args.model, f"model metadata: {metadata}")
    inputs = {t["name"]: t["datatype"] for t in metadata["inputs"]}
    outputs = {t["name"]: t["datatype"] for t in metadata["outputs"]}
    check(inputs.get("title") == "BYTES" and inputs.get("price") == "FP64", f"inputs: {inputs}")
    check(outputs == {"probability": "FP32", "decision": "BYTES"}, f"outputs: {outputs}")

    requested = [
        httpclient.InferRequestedOutput("probability", binary_data=False),
        httpclient.InferRequestedOutput("decision", binary_data=False),
    ]
    result = client.infer(args.model, inputs_for(LISTINGS), outputs=requested, request_id="req-1")
    probability = result.as_numpy("probability")
    decision = as_text(result.as_numpy("decision"))
    n = len(LISTINGS)
    check(probability is not None and probability.shape == (n,), f"probability: {probability!r}")
    check(probability.dtype == np.float32, f"probability dtype {probability.dtype}")
    check(all(0.0 <= p <= 1.0 for p in probability), f"probabilities out of range: {probability}")
    check(len(decision) == n and set(decision) <= {"allow", "review", "block"}, f"decisions: {decision}")
    response = result.get_response()
    check(response["id"] == "req-1", f"id not echoed: {response}")
    check(response["model_name"] == args.model, f"model_name: {response}")

    # FP32 prices give the same answers; only the requested output comes back.
    again = client.infer(
        args.model,
        inputs_for(LISTINGS, np.float32, "FP32"),
        outputs=[httpclient.InferRequestedOutput("probability", binary_data=False)],
    )
    check(again.as_numpy("decision") is None, "decision returned although not requested")
    check(np.allclose(again.as_numpy("probability"), probability, atol=1e-4), "FP32 prices changed the scores")

    # Errors reach the client as InferenceServerException with the server's message.
    try:
        client.infer("no-such-model", inputs_for(LISTINGS), outputs=requested)
        fail("an unknown model was accepted")
    except InferenceServerException as e:
        check("no-such-model" in str(e), f"unknown model error: {e}")
    bad = [dict(item) for item in LISTINGS]
    bad[1]["price"] = -5.0
    try:
        client.infer(args.model, inputs_for(bad), outputs=requested)
        fail("a negative price was accepted")
    except InferenceServerException as e:
        check("price[1]" in str(e), f"negative price error: {e}")

    print(json.dumps({"probability": [float(p) for p in probability], "decision": decision}))


if __name__ == "__main__":
    main()
