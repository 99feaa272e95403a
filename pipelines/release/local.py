"""The local release: a guarded rollout of an approved registry version to the local endpoint.

    record = release_local(workdir=W, tracking_uri=URI, model_name="local-classifier")

1. resolve the version (default: the approved champion) and refuse one not approved;
2. start it beside the serving version; health check (`/ping`) and smoke prediction (the
   model's own serving example) straight to the new version, before it takes any traffic;
3. shift traffic in the plan's steps (all-at-once, canary, linear), watching the new version's
   5xx, upstream errors (requests whose retry failed too) and p99 latency of the requests it
   answered (not its 4xx: a client cannot trip the guard) for `bake_seconds` at each step;
4. drain the old version (wait for its in-flight requests) and stop it.

A version that fails a check is rolled back automatically: the old version keeps (or gets
back) all traffic and the new one is stopped. Every attempt is appended to
`<workdir>/releases/releases.jsonl` with the version, its lineage, times and outcome.
`release_if_approved` is the approval trigger: it releases the champion when it is not the
version being served.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from core.config import STRATEGIES
from pipelines.release import ReleaseError, ReleaseRecord, append_record, now_iso, read_records
from pipelines.serving.endpoint import Endpoint, EndpointError, find_endpoint, start_endpoint

LINEAGE_TAGS = (
    "data_hash",
    "code_version",
    "environment_fingerprint",
    "pipeline_run_id",
    "model_hash",
    "approval_status",
)


@dataclass(frozen=True)
class RolloutPlan:
    """How traffic moves to the new version and what rolls it back."""

    strategy: str = "all-at-once"
    """all-at-once, canary (step then 100) or linear (steps of step_percent)."""
    step_percent: int = 10
    """Canary share, or the size of each linear step."""
    bake_seconds: float = 0.0
    """Seconds each step is watched before traffic moves on."""
    latency_p99_ms: float = 500.0
    """p99 latency of the new version (ms) above which it is rolled back."""
    min_requests_for_latency: int = 20
    """The latency alarm needs this many requests to the new version within a step."""
    auto_rollback: bool = True
    """Roll back on an alarm; False only records the alarm and goes on."""
    drain_seconds: float = 30.0
    """Longest wait for the old version's in-flight requests before it is stopped."""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"rollout.strategy={self.strategy!r} is not one of "
                f"{', '.join(STRATEGIES)}; set rollout.strategy"
            )
        if not 1 <= self.step_percent <= 50:
            raise ValueError(
                f"rollout.traffic_step_percent={self.step_percent} is not within "
                "[1, 50]; set rollout.trafficStepPercent"
            )

    def steps(self) -> list[int]:
        if self.strategy == "canary":
            return [self.step_percent, 100]
        if self.strategy == "linear":
            return [*range(self.step_percent, 100, self.step_percent), 100]
        return [100]

    @classmethod
    def from_stack(cls, settings: Any, *, bake_seconds: float | None = None) -> RolloutPlan:
        """The stack's rollout settings; bake minutes become seconds unless overridden."""
        rollout = settings.rollout
        return cls(
            strategy=rollout.strategy,
            step_percent=rollout.traffic_step_percent,
            bake_seconds=rollout.bake_minutes * 60 if bake_seconds is None else bake_seconds,
            latency_p99_ms=float(rollout.latency_threshold_ms),
            auto_rollback=rollout.auto_rollback,
        )


def releases_file(workdir: Path) -> Path:
    return Path(workdir) / "releases" / "releases.jsonl"


def release_history(workdir: Path) -> list[dict[str, Any]]:
    return read_records(releases_file(workdir))


def _client(tracking_uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def approved_version(tracking_uri: str, model_name: str) -> str | None:
    """The version under the 'champion' alias when it is approved; None otherwise."""
    from mlflow.exceptions import MlflowException

    try:
        version = _client(tracking_uri).get_model_version_by_alias(model_name, "champion")
    except MlflowException:
        return None
    return str(version.version) if version.tags.get("approval_status") == "approved" else None


def describe_version(tracking_uri: str, model_name: str, version: str) -> dict[str, Any]:
    """Source URI, lineage tags, metrics and run id of a registered version."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        found = client.get_model_version(model_name, version)
    except MlflowException as exc:
        raise ReleaseError(
            f"{model_name} version {version} is not in the registry at "
            f"{tracking_uri}; run the pipeline first (`mlops pipeline run`)"
        ) from exc
    metrics = {
        k.removeprefix("metric."): float(v)
        for k, v in found.tags.items()
        if k.startswith("metric.")
    }
    return {
        "version": str(found.version),
        "source": found.source,
        "run_id": found.run_id,
        "lineage": {k: found.tags.get(k, "") for k in LINEAGE_TAGS}
        | {"run_id": found.run_id, "created": found.creation_timestamp},
        "metrics": metrics,
    }


def smoke_payload(model_uri: str) -> tuple[str, int]:
    """The model's own serving example (MLflow writes it at save time) and its row count."""
    from mlflow.artifacts import download_artifacts

    local = Path(
        download_artifacts(artifact_uri=model_uri.rstrip("/") + "/serving_input_example.json")
    )
    payload = json.loads(local.read_text())
    key = next(iter(payload))
    body = payload[key]
    rows = len(body["data"]) if isinstance(body, dict) and "data" in body else len(body)
    return json.dumps(payload), rows


def _check_candidate(endpoint: Endpoint, version: str, model_uri: str) -> str | None:
    """None when the version answers /ping and a smoke prediction; else what failed."""
    try:
        status = endpoint.version_ping(version)
    except requests.RequestException as exc:
        return f"health check failed: {exc}"
    if status != 200:
        return f"health check failed: /ping answered {status}"
    try:
        body, rows = smoke_payload(model_uri)
    except Exception as exc:  # noqa: BLE001 - a model without an example fails its smoke test
        return f"smoke test impossible: no serving_input_example.json in the model ({exc})"
    resp = endpoint.invoke(body, version=version)
    if resp.status_code != 200:
        return f"smoke prediction failed: {resp.status_code} {resp.text[:300]}"
    try:
        predictions = resp.json()["predictions"]
    except (ValueError, KeyError):
        return f"smoke prediction failed: no predictions in {resp.text[:200]!r}"
    if not isinstance(predictions, list) or len(predictions) != rows:
        return f"smoke prediction failed: {rows} rows in, {predictions!r} out"
    return None


def _alarm(before: dict[str, Any], after: dict[str, Any], plan: RolloutPlan) -> str | None:
    errors = (
        after["errors_5xx"]
        + after["upstream_errors"]
        - before["errors_5xx"]
        - before["upstream_errors"]
    )
    if errors > 0:
        return f"{errors} failed request(s) (5xx or unreachable) on the new version"
    if not after.get("alive", True):
        return "the new version's process exited"
    served = after["requests"] - before["requests"]
    if served >= plan.min_requests_for_latency and after["p99_ms"] > plan.latency_p99_ms:
        return f"p99 latency {after['p99_ms']:.0f} ms is over {plan.latency_p99_ms:.0f} ms"
    return None


def release_local(
    *,
    workdir: Path,
    tracking_uri: str,
    model_name: str,
    version: str | None = None,
    plan: RolloutPlan | None = None,
    endpoint: Endpoint | None = None,
    port: int = 8080,
    say: Callable[[str], None] | None = None,
) -> ReleaseRecord:
    """Release `version` (default: the approved champion) to the local endpoint.

    Starts a detached endpoint on `port` when none runs under `workdir`. Raises
    ReleaseError when there is nothing to release; returns the record otherwise."""
    say = say or (lambda _msg: None)
    plan = plan or RolloutPlan()
    workdir = Path(workdir).resolve()
    started = time.monotonic()
    if version is None:
        version = approved_version(tracking_uri, model_name)
        if version is None:
            raise ReleaseError(
                f"{model_name} has no approved version (no 'champion' alias "
                "with approval_status=approved); run the pipeline, or approve "
                "a version"
            )
    info = describe_version(tracking_uri, model_name, version)
    if info["lineage"].get("approval_status") != "approved":
        raise ReleaseError(
            f"{model_name} version {version} is "
            f"{info['lineage'].get('approval_status') or 'not approved'}; "
            "approve it before releasing it"
        )
    record = ReleaseRecord(
        stack="local",
        platform="local",
        version=version,
        previous=None,
        outcome="failed",
        model_name=model_name,
        model_uri=info["source"],
        lineage=info["lineage"],
        metrics=info["metrics"],
        strategy=plan.strategy,
        started=now_iso(),
    )
    try:
        if endpoint is None:
            endpoint = find_endpoint(workdir) or start_endpoint(workdir, port=port, detach=True)
        record.endpoint = endpoint.url
        _rollout(endpoint, record, plan, say, started)
    except KeyboardInterrupt:
        record.outcome, record.reason = "interrupted", "stopped by the user"
        _restore(endpoint, record)
        raise
    except EndpointError as exc:
        record.outcome, record.reason = "failed", str(exc)
        _restore(endpoint, record)
    finally:
        record.finished = now_iso()
        record.seconds = round(time.monotonic() - started, 3)
        append_record(record, releases_file(workdir))
    return record


def _restore(endpoint: Endpoint | None, record: ReleaseRecord) -> None:
    """After a failure or interrupt: the previous versions take all traffic, the new one stops."""
    if endpoint is None:
        return
    try:
        running = endpoint.state()["versions"]
        old = [v for v in record.serving_before if v in running]
        if old:
            endpoint.set_traffic({v: 100.0 / len(old) for v in old})
        if record.version in running and record.version not in record.serving_before:
            endpoint.remove_version(record.version, drain_seconds=5)
    except (EndpointError, requests.RequestException):
        pass


def _rollout(
    endpoint: Endpoint,
    record: ReleaseRecord,
    plan: RolloutPlan,
    say: Callable[[str], None],
    started: float,
) -> None:
    version = record.version
    serving = endpoint.serving()
    record.serving_before = sorted(serving)
    record.previous = ", ".join(record.serving_before) or None
    if list(serving) == [version]:
        record.outcome, record.reason = "unchanged", f"version {version} already takes all traffic"
        say(record.reason)
        return
    if version in endpoint.state()["versions"]:  # a leftover from an interrupted release
        endpoint.remove_version(version, drain_seconds=plan.drain_seconds)
    say(f"starting version {version} beside {', '.join(record.serving_before) or 'nothing'}")
    try:
        endpoint.add_version(version, record.model_uri)
    except EndpointError as exc:
        record.outcome, record.reason = "rolled-back", f"did not start: {exc}"
        record.steps.append({"step": "start", "ok": False, "detail": str(exc)})
        say(f"[red]rolled back[/]: version {version} {record.reason}")
        return
    record.steps.append({"step": "start", "ok": True})
    problem = _check_candidate(endpoint, version, record.model_uri)
    record.steps.append({"step": "health+smoke", "ok": problem is None, "detail": problem or ""})
    if problem:
        endpoint.remove_version(version, drain_seconds=0)
        record.outcome, record.reason = "rolled-back", problem
        say(
            f"[red]rolled back[/]: version {version} {problem}; "
            f"{', '.join(record.serving_before) or 'nothing'} keeps serving"
        )
        return
    say(f"version {version} passed health and smoke checks")
    for percent in plan.steps():
        before = endpoint.state()["versions"][version]
        weights = {version: float(percent)}
        if record.serving_before and percent < 100:
            share = (100.0 - percent) / len(record.serving_before)
            weights.update({v: share for v in record.serving_before})
        elif record.serving_before:
            weights.update({v: 0.0 for v in record.serving_before})
        endpoint.set_traffic(weights)
        elapsed = time.monotonic() - started
        if percent == 100:
            record.seconds_to_full_traffic = round(elapsed, 3)
        say(f"traffic: version {version} at {percent}% ({elapsed:.1f} s after approval)")
        deadline = time.monotonic() + plan.bake_seconds
        alarm = None
        while True:
            after = endpoint.state()["versions"][version]
            alarm = _alarm(before, after, plan)
            if alarm or time.monotonic() >= deadline:
                break
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
        record.steps.append(
            {
                "step": f"traffic {percent}%",
                "ok": alarm is None,
                "detail": alarm or "",
                "requests": after["requests"] - before["requests"],
            }
        )
        if alarm and plan.auto_rollback:
            if record.serving_before:
                endpoint.set_traffic(
                    {v: 100.0 / len(record.serving_before) for v in record.serving_before}
                )
            endpoint.remove_version(version, drain_seconds=plan.drain_seconds)
            record.outcome, record.reason = "rolled-back", alarm
            say(f"[red]rolled back[/]: {alarm}; {', '.join(record.serving_before)} serves again")
            return
    for old in record.serving_before:
        drained = endpoint.remove_version(old, drain_seconds=plan.drain_seconds)
        record.steps.append(
            {
                "step": f"drain+stop {old}",
                "ok": drained["drained"],
                "detail": f"{drained['inflight_at_stop']} in flight at stop",
            }
        )
        say(f"version {old} drained and stopped")
    record.outcome = "released"
    record.reason = f"version {version} takes all traffic"
