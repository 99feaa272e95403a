"""Serving: throughput and p50/p99 latency under concurrent load on loopback.

    .venv/bin/python -m benchmarks.serving [--requests 2000] [--concurrency 8] [--batch 1]

Side by side, on the same registered model (trained by the local pipeline on the example
data): the bare `model.predict` (the floor: MLflow pyfunc, in-process, no HTTP), this kit's
model server alone (MLflow's scoring app + the hardening middleware), the kit's endpoint
(router + model server: what clients call), and `mlflow models serve` (uvicorn, one worker,
`--env-manager local`). The load generator is a thread pool of `requests` sessions on the
same machine, so it competes with the servers for the CPU: numbers are what one box does
end to end, not a server-only ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from benchmarks._common import percentile, write_section


def load(url: str, body: bytes, total: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    failed = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        nonlocal failed
        session = requests.Session()
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            started = time.perf_counter()
            resp = session.post(
                url, data=body, headers={"content-type": "application/json"}, timeout=30
            )
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed * 1000)
                failed += resp.status_code != 200

    for _ in range(50):  # warm up
        requests.post(url, data=body, headers={"content-type": "application/json"}, timeout=30)
    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "rps": len(latencies) / wall,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "failed": failed,
    }


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    import mlflow.pyfunc

    from pipelines.data import LABEL, breast_cancer
    from pipelines.definition import PipelineSettings
    from pipelines.local import run_local
    from pipelines.serving.endpoint import start_endpoint

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    result = run_local(PipelineSettings(client="bench"), workdir=tmp, progress=False)
    uri = result.registration["source"]
    frame = breast_cancer().drop(columns=LABEL).head(args.batch)
    body = json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()
    rows: list[str] = []

    model = mlflow.pyfunc.load_model(uri)
    for _ in range(50):
        model.predict(frame)
    times = []
    for _ in range(args.requests):
        started = time.perf_counter()
        model.predict(frame)
        times.append((time.perf_counter() - started) * 1000)
    rows.append(
        f"| bare `model.predict` (pyfunc, in-process, 1 thread) | "
        f"{1000 / (sum(times) / len(times)):.0f} | {percentile(times, 50):.2f} | "
        f"{percentile(times, 99):.2f} | 0 |"
    )

    def record(label: str, url: str) -> None:
        stats = load(url, body, args.requests, args.concurrency)
        print(label, stats)
        rows.append(
            f"| {label} | {stats['rps']:.0f} | {stats['p50']:.2f} | "
            f"{stats['p99']:.2f} | {stats['failed']} |"
        )

    endpoint = start_endpoint(tmp, port=0)
    try:
        endpoint.add_version("1", uri)
        endpoint.set_traffic({"1": 100})
        direct = endpoint.state()["versions"]["1"]["port"]
        record(
            "kit model server alone (MLflow scoring app + hardening)",
            f"http://127.0.0.1:{direct}/invocations",
        )
        record("kit endpoint (router + model server)", f"{endpoint.url}/invocations")
    finally:
        endpoint.stop()

    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # `mlflow models serve` runs `uvicorn` by name
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": result.tracking_uri,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping")
        record("`mlflow models serve` (uvicorn, 1 worker)", f"http://127.0.0.1:{port}/invocations")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    body_md = (
        f"{args.requests} requests of {args.batch} row(s) (`dataframe_split` JSON), "
        f"{args.concurrency} concurrent clients, after 50 warm-up requests.\n\n"
        "| server | requests/s | p50 ms | p99 ms | failed |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    write_section("serving", "Serving throughput and latency", body_md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
