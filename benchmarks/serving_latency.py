"""Latency of the registered generator served over HTTP by `mlflow models serve`, as a client sees it.

    .venv/bin/mlflow models serve -m models:/mnist-generator@champion --env-manager local -h 127.0.0.1 -p 5001
    .venv/bin/python benchmarks/serving_latency.py --url http://127.0.0.1:5001 [--requests 200] [--rows 64]

Sends `--requests` POST /invocations, one after another, each asking for `--rows` images
(`{"dataframe_records": [{"seed": s}, ...]}`: a conditional model draws digit s mod 10), after a few
warm-up requests it does not count, once per pixel format (`float`: pixels in [0, 1], the default;
`uint8`: 0-255, a quarter of the JSON). Checks every answer (shape, range, the same seeds give the same
images, the two formats agree) and what a bad request gets (a 4xx with a message, and the server still
serving after it). Prints p50, p90, p99 and the mean in milliseconds per format, then one JSON line with
everything measured (the test suite reads it). The goal: 64 images in under 100 ms p50 on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request

import numpy as np

WARM_UP_REQUESTS = 3
PIXEL_FORMATS = {"float": 1.0, "uint8": 255.0}  # the pyfunc's `pixels` parameter -> its largest value
NESTED_JSON = "JSON nested 100,000 deep"
BAD_REQUESTS: dict[str, dict | bytes] = {  # what a client may get wrong -> the request it sends
    "a string seed": {"dataframe_records": [{"seed": "abc"}]},
    "a negative seed": {"dataframe_records": [{"seed": -1}]},
    "a fractional seed": {"dataframe_records": [{"seed": 1.5}]},
    "a boolean seed": {"dataframe_records": [{"seed": True}]},
    "label 12": {"dataframe_records": [{"seed": 0, "label": 12}]},
    "10^7 rows": {"inputs": {"seed": range(10**7)}},
    "an unknown pixel format": {"dataframe_records": [{"seed": 0}], "params": {"pixels": "gray"}},
    # sent as written: MLflow's server parses it before the model is called (its answer: mlflow#4897)
    NESTED_JSON: b"[" * 100_000 + b"]" * 100_000,
}


def post(url: str, payload: dict | bytes) -> tuple[int, bytes, float]:
    """(HTTP status, body, seconds) of one POST /invocations of `payload` as JSON (bytes: as they are)."""
    request = urllib.request.Request(
        f"{url}/invocations",
        data=payload if isinstance(payload, bytes) else json.dumps(payload, default=list).encode(),
        headers={"Content-Type": "application/json"},
    )
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    return status, body, time.perf_counter() - began


def images(body: bytes) -> np.ndarray:
    return np.asarray(json.loads(body)["predictions"], dtype=np.float32)


def latencies(url: str, payload: dict, requests: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(milliseconds per request, the first answer's images, whether every answer was that answer)."""
    for _ in range(WARM_UP_REQUESTS):
        status, body, _ = post(url, payload)
        if status != 200:
            raise SystemExit(f"error: the server answered {status}: {body[:500]!r}")
    first, same, seconds = images(body), True, []
    for _ in range(requests):
        status, body, elapsed = post(url, payload)
        if status != 200:
            raise SystemExit(f"error: the server answered {status}: {body[:500]!r}")
        seconds.append(elapsed)
        same &= bool(np.array_equal(images(body), first))
    return 1000 * np.asarray(seconds), first, same


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:5001")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rows", type=int, default=64)
    args = parser.parse_args()
    records = [{"seed": seed} for seed in range(args.rows)]

    summary: dict = {"requests": args.requests, "rows": args.rows, "formats": {}}
    answers = {}
    for pixels, largest in PIXEL_FORMATS.items():
        payload = {"dataframe_records": records, "params": {"pixels": pixels}}
        ms, answers[pixels], same = latencies(args.url, payload, args.requests)
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        print(
            f"{args.requests} requests of {args.rows} images, pixels={pixels}: p50 {p50:.1f} ms, "
            f"p90 {p90:.1f} ms, p99 {p99:.1f} ms, mean {ms.mean():.1f} ms"
        )
        summary["formats"][pixels] = {
            "shape": list(answers[pixels].shape),
            "in_range": bool(answers[pixels].min() >= 0 and answers[pixels].max() <= largest),
            "same_seeds_same_images": same,
            "p50_ms": round(float(p50), 1),
            "p99_ms": round(float(p99), 1),
        }
    summary["formats_agree"] = bool(np.array_equal(answers["uint8"], np.rint(answers["float"] * 255)))
    summary["bad_requests"] = {}
    for name, wrong in BAD_REQUESTS.items():
        status, body, _ = post(args.url, wrong)
        message = json.loads(body).get("message", "") if body.startswith(b"{") else body.decode()[:200]
        last_line = (message.strip().splitlines() or [""])[-1]
        summary["bad_requests"][name] = {"status": status, "message": last_line[-200:]}
        print(f"{name}: HTTP {status}: {summary['bad_requests'][name]['message']}")
    summary["still_serving"] = post(args.url, {"dataframe_records": records[:1]})[0] == 200
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
