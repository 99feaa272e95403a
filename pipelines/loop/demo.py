"""The whole MLOps loop on this machine, what `mlops demo` (and `make demo`) runs.

pipeline run -> version 1 registered and approved -> approval trigger -> local release ->
endpoint serves version 1 on loopback -> live traffic, captured -> a drifted batch arrives ->
monitoring detects drift -> the pipeline retrains -> version 2 passes the gate, is approved ->
guarded (canary) rollout to version 2 under live traffic -> report.

Everything lives under one work folder (default `.mlops/demo`), reset at the start of each run
(the step cache is kept), so re-running is safe. Ctrl-C or SIGTERM stops the traffic and the
endpoint and its model servers; a pipeline run in progress finishes first so the registry is
never left half-written.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from pipelines.data import LABEL, breast_cancer, synthetic
from pipelines.definition import PipelineSettings
from pipelines.local import default_tracking_uri, run_local
from pipelines.loop.monitor import DriftCheck, monitor_once
from pipelines.loop.report import write_report
from pipelines.loop.traffic import Traffic
from pipelines.release import ReleaseRecord
from pipelines.release.local import RolloutPlan, approved_version, release_local
from pipelines.serving.endpoint import Endpoint, find_endpoint, start_endpoint

DEFAULT_WORKDIR = Path(".mlops/demo")


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path = DEFAULT_WORKDIR
    port: int = 8080
    fast: bool = False
    """Less traffic, shorter waits and one permutation-importance repeat (the test suite's
    setting)."""
    keep_serving: bool = True
    """Leave the endpoint running at the end (stop it with `mlops serve stop`)."""
    detach: bool | None = None
    """Run the endpoint in its own session, outliving this process; None = keep_serving."""
    progress: bool = True
    """Show the pipeline steps' progress."""
    drift_shift: float = 1.0
    """How far (in standard deviations) the drifted batch moves every feature."""
    drifted_rows: int = 600

    @property
    def traffic_rows(self) -> int:
        return 240 if self.fast else 800

    @property
    def traffic_pause(self) -> float:
        """Seconds each traffic thread waits between requests (leaves CPU for the rest)."""
        return 0.02 if self.fast else 0.005

    @property
    def bake_seconds(self) -> float:
        return 0.5 if self.fast else 3.0

    @property
    def permutation_repeats(self) -> int:
        """Repeats of permutation importance in each run's evaluate step: one still ranks
        every feature for the report (the score drops without their spread), at a fifth of
        the evaluate step's largest cost."""
        return 1 if self.fast else PipelineSettings.permutation_repeats


@dataclass
class DemoResult:
    report: Path
    endpoint_url: str
    versions: list[int] = field(default_factory=list)
    releases: list[ReleaseRecord] = field(default_factory=list)
    checks: list[DriftCheck] = field(default_factory=list)
    rollout_failed_requests: int = -1
    traffic: dict[str, list[Any]] = field(default_factory=dict)
    keep_serving: bool = True


@contextlib.contextmanager
def deferred_interrupt(console: Console, what: str) -> Iterator[None]:
    """Hold SIGINT/SIGTERM while `what` runs (it writes the registry); raise after it."""
    received: list[int] = []

    def hold(signum: int, _frame: Any) -> None:
        if not received:
            console.print(
                f"[yellow]interrupt received: finishing {what} first so the "
                "registry stays consistent[/]"
            )
        received.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            raise KeyboardInterrupt


def _reset(workdir: Path, console: Console) -> None:
    running = find_endpoint(workdir)
    if running is not None:
        console.print(f"stopping the endpoint of the previous demo run ({running.url})")
        running.stop()
    if workdir.exists():
        for child in workdir.iterdir():
            if child.name != "cache":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    workdir.mkdir(parents=True, exist_ok=True)


def _phase(stats_before: tuple[int, int, int], traffic: Traffic) -> list[Any]:
    sent0, ok0, failed0 = stats_before
    s = traffic.stats
    recent = s.latencies_ms[sent0:]
    cuts = statistics.quantiles(recent, n=100) if len(recent) >= 2 else [0.0] * 99
    return [
        s.sent - sent0,
        s.ok - ok0,
        s.failed - failed0,
        ", ".join(f"v{v}: {n}" for v, n in sorted(s.by_version.items())),
        f"{cuts[49]:.1f}",
        f"{cuts[98]:.1f}",
    ]


def _snapshot(traffic: Traffic) -> tuple[int, int, int]:
    return traffic.stats.sent, traffic.stats.ok, traffic.stats.failed


def _check_when_captured(timeout: float = 60.0, **kwargs: Any) -> DriftCheck:
    """A monitoring check once `min_rows` captured rows are on disk (the endpoint flushes its
    capture every half second), or the 'insufficient' check after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        check = monitor_once(**kwargs)
        if check.status != "insufficient" or time.monotonic() > deadline:
            return check
        time.sleep(0.3)


def run_demo(options: DemoOptions, console: Console | None = None) -> DemoResult:
    """Run the loop; returns where the report and endpoint are. Cleans up on any failure."""
    console = console or Console()
    workdir = Path(options.workdir).resolve()
    settings = PipelineSettings(client="local", permutation_repeats=options.permutation_repeats)
    tracking_uri = default_tracking_uri(workdir)
    name = settings.registered_model_name
    plan = RolloutPlan(
        strategy="canary", step_percent=25, bake_seconds=options.bake_seconds, drain_seconds=15
    )
    total = 9
    stage = iter(range(1, total + 1))

    def say(msg: str) -> None:
        console.print(f"      {msg}")

    def head(msg: str) -> None:
        console.print(f"[bold cyan][{next(stage)}/{total}][/] [bold]{msg}[/]")

    endpoint: Endpoint | None = None
    traffic: Traffic | None = None
    finished = False
    result = DemoResult(report=Path(), endpoint_url="", keep_serving=options.keep_serving)
    try:
        head(f"fresh work folder {workdir} (the step cache is kept)")
        _reset(workdir, console)
        landing = workdir / "data" / "landing"
        landing.mkdir(parents=True)
        base = breast_cancer()
        base.to_csv(landing / "batch-0001.csv", index=False)

        head("training pipeline on the first batch")
        with deferred_interrupt(console, "the pipeline run"):
            first = run_local(
                settings,
                workdir=workdir,
                data=landing / "batch-0001.csv",
                progress=options.progress,
            )
        if first.status != "registered":
            raise RuntimeError(f"the first pipeline run did not register a version: {first.reason}")
        result.versions.append(int(first.registered_version or 0))
        say(f"{first.reason}; roc_auc {first.metrics['roc_auc']:.4f}")

        head("approval trigger: release the approved version to the local endpoint")
        detach = options.keep_serving if options.detach is None else options.detach
        endpoint = start_endpoint(workdir, port=options.port, detach=detach)
        result.endpoint_url = endpoint.url
        say(f"endpoint listening on {endpoint.url} (loopback only)")
        record = release_local(
            workdir=workdir,
            tracking_uri=tracking_uri,
            model_name=name,
            plan=RolloutPlan(),
            endpoint=endpoint,
            say=say,
        )
        result.releases.append(record)
        if record.outcome != "released":
            raise RuntimeError(
                f"release of version {record.version} {record.outcome}: {record.reason}"
            )

        head("live sample traffic, with request/response capture")
        features = base.drop(columns=LABEL)
        traffic = Traffic(
            endpoint.url, features, concurrency=2, batch=4, seed=7, pause=options.traffic_pause
        )
        traffic.start()
        snap = _snapshot(traffic)
        traffic.wait_for(options.traffic_rows // 4)
        check = _check_when_captured(
            workdir=workdir,
            tracking_uri=tracking_uri,
            model_name=name,
            threshold=settings.drift_threshold,
            min_rows=options.traffic_rows,
        )
        result.checks.append(check)
        result.traffic["version 1, training-like traffic"] = _phase(snap, traffic)
        say(
            f"{traffic.stats.sent} requests so far; monitoring: {check.status} "
            f"(max PSI {check.max_psi:.3f} on {check.rows} rows, threshold "
            f"{settings.drift_threshold})"
        )

        head("a drifted batch arrives (new labelled data, and live traffic shifts)")
        drifted = synthetic(options.drifted_rows, seed=11, shift=options.drift_shift)
        drifted.to_csv(landing / "batch-0002.csv", index=False)
        snap = _snapshot(traffic)
        traffic.rows = drifted.drop(columns=LABEL)
        traffic.wait_for(options.traffic_rows // 4)
        result.traffic["version 1, drifted traffic"] = _phase(snap, traffic)

        head("monitoring compares captured traffic with the training baseline")
        retrain: list[DriftCheck] = []
        check = _check_when_captured(
            workdir=workdir,
            tracking_uri=tracking_uri,
            model_name=name,
            threshold=settings.drift_threshold,
            min_rows=options.traffic_rows,
            on_drift=retrain.append,
        )
        result.checks.append(check)
        say(
            f"{check.status}: {len(check.drifted)} of {len(check.features)} features over "
            f"PSI {settings.drift_threshold} (max {check.max_psi:.2f}); alert raised"
            if check.status == "drift"
            else f"{check.status}: no drift found"
        )
        if not retrain:
            raise RuntimeError(
                "monitoring found no drift in the drifted batch; raise --drift-shift"
            )

        head("continuous training on the newest batch (a sliding window of one batch)")
        # The drift was seen and accepted by monitoring: the retraining run must not be stopped
        # by validate-data's own drift check against the old baseline, so it gets an empty one.
        accepted = workdir / "data" / "no-baseline"
        accepted.mkdir(parents=True, exist_ok=True)
        with deferred_interrupt(console, "the pipeline run"):
            second = run_local(
                settings,
                workdir=workdir,
                data=landing / "batch-0002.csv",
                baseline=accepted,
                progress=options.progress,
            )
        if second.status != "registered":
            raise RuntimeError(f"the retraining run did not register a version: {second.reason}")
        result.versions.append(int(second.registered_version or 0))
        say(
            f"{second.reason}; roc_auc {second.metrics['roc_auc']:.4f}, gate: "
            + "; ".join((second.gate or {}).get("reasons", []))
        )

        head("approval trigger: guarded canary rollout under live traffic")
        snap = _snapshot(traffic)
        if approved_version(tracking_uri, name) != str(second.registered_version):
            raise RuntimeError("the new version is not the approved champion")
        record = release_local(
            workdir=workdir,
            tracking_uri=tracking_uri,
            model_name=name,
            plan=plan,
            endpoint=endpoint,
            say=say,
        )
        result.releases.append(record)
        traffic.wait_for(20)
        traffic.stop()
        phase = _phase(snap, traffic)
        result.traffic["rollout to version 2"] = phase
        result.rollout_failed_requests = int(phase[2])
        colour = "green" if phase[2] == 0 else "red"
        say(
            f"{record.outcome}: {record.reason}; [{colour}]{phase[2]} failed of {phase[0]} "
            f"requests during the rollout[/]"
        )

        head("report")
        summary = {
            "endpoint": endpoint.url,
            "model": name,
            "versions": ", ".join(map(str, result.versions)),
            "requests sent": traffic.stats.sent,
            "failed requests": traffic.stats.failed,
            "failed during rollout": result.rollout_failed_requests,
        }
        result.report = write_report(
            workdir=workdir,
            tracking_uri=tracking_uri,
            model_name=name,
            extra={"summary": summary, "traffic": result.traffic, "prometheus": endpoint.metrics()},
        )
        finished = True
        return result
    finally:
        if traffic is not None:
            traffic.stop()
        if endpoint is not None and not (finished and options.keep_serving):
            endpoint.stop()
