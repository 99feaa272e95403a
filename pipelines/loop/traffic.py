"""Live sample traffic: threads that keep calling the endpoint, rotating the payload forms.

    with Traffic(url, rows, concurrency=2) as traffic:
        ...                        # traffic flows until the block ends
    traffic.stats.failed            # requests that got anything but 200 (or no answer)

Bounded: it stops at `max_requests`, after `max_seconds`, or when the block exits. The rows
can be swapped while it runs (`traffic.rows = drifted`), which is how the demo's drifted batch
starts arriving at the endpoint.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
import requests

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs", "csv")


def payload(frame: pd.DataFrame, form: str) -> tuple[bytes, str]:
    """`frame` in one of the scoring contract's forms: (body, content type)."""
    if form == "csv":
        return frame.to_csv(index=False).encode(), "text/csv"
    if form == "dataframe_split":
        body = {"dataframe_split": frame.to_dict(orient="split")}
        body["dataframe_split"].pop("index", None)
    elif form == "dataframe_records":
        body = {"dataframe_records": frame.to_dict(orient="records")}
    elif form == "instances":
        body = {"instances": frame.to_dict(orient="records")}
    elif form == "inputs":
        body = {"inputs": frame.to_dict(orient="list")}
    else:
        raise ValueError(f"payload form {form!r} is not one of {', '.join(FORMATS)}")
    return json.dumps(body).encode(), "application/json"


@dataclass
class TrafficStats:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    by_version: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


class Traffic:
    """Background load on `url` with batches of `batch` rows drawn from `rows`."""

    def __init__(
        self,
        url: str,
        rows: pd.DataFrame,
        *,
        concurrency: int = 2,
        batch: int = 4,
        pause: float = 0.0,
        max_requests: int = 1_000_000,
        max_seconds: float = 600,
        seed: int = 0,
    ):
        self.url, self.rows, self.batch, self.pause = url, rows, batch, pause
        self.concurrency, self.max_requests, self.max_seconds = (
            concurrency,
            max_requests,
            max_seconds,
        )
        self.stats = TrafficStats()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._counter = itertools.count()
        self._seed = seed

    def __enter__(self) -> Traffic:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._deadline = time.monotonic() + self.max_seconds
        for i in range(self.concurrency):
            thread = threading.Thread(target=self._run, args=(i,), daemon=True, name=f"traffic-{i}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=35)
        self._threads.clear()

    def wait_for(self, sent: int, timeout: float = 120) -> bool:
        """Block until `sent` more requests went out (or timeout / stop); True if reached."""
        target = self.stats.sent + sent
        deadline = time.monotonic() + timeout
        while self.stats.sent < target and time.monotonic() < deadline and self.running:
            time.sleep(0.05)
        return self.stats.sent >= target

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _run(self, worker: int) -> None:
        session = requests.Session()
        import numpy as np

        rng = np.random.default_rng(self._seed + worker)
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            n = next(self._counter)
            if n >= self.max_requests:
                return
            rows = self.rows
            frame = rows.iloc[rng.integers(0, len(rows), self.batch)]
            body, ctype = payload(frame, FORMATS[n % len(FORMATS)])
            started = time.perf_counter()
            try:
                resp = session.post(
                    self.url + "/invocations",
                    data=body,
                    headers={"content-type": ctype},
                    timeout=30,
                )
                status, version = resp.status_code, resp.headers.get("x-model-version", "?")
                detail = resp.text[:200]
            except requests.RequestException as exc:
                status, version, detail = 0, "?", str(exc)[:200]
            elapsed = (time.perf_counter() - started) * 1000
            with self._lock:
                self.stats.sent += 1
                self.stats.latencies_ms.append(elapsed)
                if status == 200:
                    self.stats.ok += 1
                    self.stats.by_version[version] += 1
                else:
                    self.stats.failed += 1
                    if len(self.stats.failures) < 20:
                        self.stats.failures.append(f"{status}: {detail}")
            if self.pause:
                self._stop.wait(self.pause)
        session.close()
