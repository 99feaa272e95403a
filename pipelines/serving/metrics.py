"""Request counters and latency histograms per model version, in Prometheus text format.

No client library is needed for the exposition format (version 0.0.4): it is a few lines of
text per series. Counters are process-local and reset when the endpoint restarts, as
Prometheus expects of counters.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field

BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
RECENT = 2048


@dataclass
class _Series:
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    count: int = 0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))


class Metrics:
    """Counts by (version, status code) and latency by version; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, _Series] = defaultdict(_Series)
        self.upstream_errors: dict[str, int] = defaultdict(int)
        self.retries: dict[str, int] = defaultdict(int)
        self.captured = 0
        self.capture_pruned = 0

    def observe(self, version: str, status: int, seconds: float) -> None:
        """Count the answer and its latency; the recent latencies behind p50/p99 (the release
        guard's signal) leave out 4xx answers, which the client caused, not the server."""
        with self._lock:
            self.requests[(version, status)] += 1
            series = self.latency[version]
            series.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            series.total += seconds
            series.count += 1
            if not 400 <= status < 500:
                series.recent.append(seconds)

    def upstream_error(self, version: str) -> None:
        """A request the version could not answer, even on a retry."""
        with self._lock:
            self.upstream_errors[version] += 1

    def retried(self, version: str) -> None:
        """A connection to the version failed and the request was retried."""
        with self._lock:
            self.retries[version] += 1

    def summary(self, version: str) -> dict[str, float]:
        """Requests, 5xx, 4xx, and p50/p99 latency (ms) over the last RECENT requests."""
        with self._lock:
            codes = {c: n for (v, c), n in self.requests.items() if v == version}
            recent = sorted(self.latency[version].recent) if version in self.latency else []
        total = sum(codes.values())

        def pct(q: float) -> float:
            return recent[min(len(recent) - 1, int(q * len(recent)))] * 1000 if recent else 0.0

        return {
            "requests": total,
            "errors_5xx": sum(n for c, n in codes.items() if c >= 500),
            "errors_4xx": sum(n for c, n in codes.items() if 400 <= c < 500),
            "upstream_errors": self.upstream_errors.get(version, 0),
            "retries": self.retries.get(version, 0),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
        }

    def exposition(self, weights: dict[str, float], inflight: dict[str, int]) -> str:
        """The Prometheus text exposition of every series."""
        lines = [
            "# HELP mlops_endpoint_requests_total Invocations answered, by model version and "
            "HTTP status.",
            "# TYPE mlops_endpoint_requests_total counter",
        ]
        with self._lock:
            for (version, code), n in sorted(self.requests.items()):
                lines.append(
                    f'mlops_endpoint_requests_total{{version="{version}",code="{code}"}} {n}'
                )
            lines += [
                "# HELP mlops_endpoint_errors_total Invocations that failed, by kind: client "
                "(4xx), server (5xx), upstream (model server unreachable).",
                "# TYPE mlops_endpoint_errors_total counter",
            ]
            kinds: dict[tuple[str, str], int] = defaultdict(int)
            for (version, code), n in self.requests.items():
                if code >= 400:
                    kinds[(version, "client" if code < 500 else "server")] += n
            for version, n in self.upstream_errors.items():
                kinds[(version, "upstream")] += n
            for (version, kind), n in sorted(kinds.items()):
                lines.append(
                    f'mlops_endpoint_errors_total{{version="{version}",kind="{kind}"}} {n}'
                )
            lines += [
                "# HELP mlops_endpoint_latency_seconds Time from request to response at the "
                "endpoint, by model version.",
                "# TYPE mlops_endpoint_latency_seconds histogram",
            ]
            for version, series in sorted(self.latency.items()):
                running = 0
                for bound, n in zip((*BUCKETS, float("inf")), series.buckets, strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(
                        f'mlops_endpoint_latency_seconds_bucket{{version="{version}",'
                        f'le="{le}"}} {running}'
                    )
                lines.append(
                    f'mlops_endpoint_latency_seconds_sum{{version="{version}"}} {series.total:.6f}'
                )
                lines.append(
                    f'mlops_endpoint_latency_seconds_count{{version="{version}"}} {series.count}'
                )
            captured = self.captured
        lines += [
            "# HELP mlops_endpoint_traffic_weight Share of traffic routed to a version.",
            "# TYPE mlops_endpoint_traffic_weight gauge",
        ]
        lines += [
            f'mlops_endpoint_traffic_weight{{version="{v}"}} {w:g}'
            for v, w in sorted(weights.items())
        ]
        lines += [
            "# HELP mlops_endpoint_inflight Requests being answered, by version.",
            "# TYPE mlops_endpoint_inflight gauge",
        ]
        lines += [
            f'mlops_endpoint_inflight{{version="{v}"}} {n}' for v, n in sorted(inflight.items())
        ]
        lines += [
            "# HELP mlops_endpoint_captured_total Request/response pairs captured.",
            "# TYPE mlops_endpoint_captured_total counter",
            f"mlops_endpoint_captured_total {captured}",
        ]
        return "\n".join(lines) + "\n"


def parse_exposition(text: str) -> dict[str, float]:
    """`{'name{labels}': value}` for every sample line (for tests and the report)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out
