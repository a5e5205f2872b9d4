"""Latency of the registered generator served over HTTP by `mlflow models serve`, as a client sees it.

    .venv/bin/mlflow models serve -m models:/mnist-generator@champion --env-manager local -h 127.0.0.1 -p 5001
    .venv/bin/python benchmarks/serving_latency.py --url http://127.0.0.1:5001 [--requests 200] [--rows 64]

Sends `--requests` POST /invocations, one after another, each asking for `--rows` images
(`{"dataframe_records": [{"seed": s, "label": s % 10}, ...]}`), after a few warm-up requests it does not
count. Checks every answer (shape, pixels in [0, 1], the same seeds give the same images) and what a bad
request gets (a 4xx, and the server still serving after it). Prints p50, p90, p99 and the mean in
milliseconds, then one JSON line with everything measured (the test suite reads it). The goal: 64 images in
under 100 ms p50 on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request

import numpy as np

WARM_UP_REQUESTS = 3
BAD_REQUESTS = {  # what a client may get wrong -> the records it sends
    "a string seed": [{"seed": "abc"}],
    "a negative seed": [{"seed": -1}],
}


def post(url: str, records: list[dict]) -> tuple[int, bytes, float]:
    """(HTTP status, body, seconds) of one POST /invocations."""
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps({"dataframe_records": records}).encode(),
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:5001")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rows", type=int, default=64)
    args = parser.parse_args()
    records = [{"seed": seed, "label": seed % 10} for seed in range(args.rows)]

    for _ in range(WARM_UP_REQUESTS):
        status, body, _ = post(args.url, records)
        if status != 200:
            raise SystemExit(f"error: the server answered {status}: {body[:500]!r}")
    first = images(body)
    seconds, same, in_range = [], True, True
    for _ in range(args.requests):
        status, body, elapsed = post(args.url, records)
        if status != 200:
            raise SystemExit(f"error: the server answered {status}: {body[:500]!r}")
        answer = images(body)
        seconds.append(elapsed)
        same &= bool(np.array_equal(answer, first))
        in_range &= bool(answer.min() >= 0.0 and answer.max() <= 1.0)
    bad = {name: post(args.url, wrong)[0] for name, wrong in BAD_REQUESTS.items()}
    still_serving = post(args.url, records[:1])[0] == 200

    ms = 1000 * np.asarray(seconds)
    print(
        f"{args.requests} requests of {args.rows} images: p50 {np.percentile(ms, 50):.1f} ms, "
        f"p90 {np.percentile(ms, 90):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, mean {ms.mean():.1f} ms"
    )
    for name, status in bad.items():
        print(f"{name}: HTTP {status}")
    summary = {
        "requests": args.requests,
        "rows": args.rows,
        "shape": list(first.shape),
        "in_range": in_range,
        "same_seeds_same_images": same,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "bad_requests": bad,
        "still_serving": still_serving,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
