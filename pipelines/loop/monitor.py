"""Monitoring: captured requests against the training baseline, per feature.

    result = monitor_once(workdir=W, tracking_uri=URI, model_name=NAME, threshold=0.2)

Reads the request/response pairs the endpoint captured since the last check (a cursor of byte
offsets per capture file), parses each request with MLflow's own payload parsers (the same code
the endpoint scored it with), and compares every feature with the baseline of the version that
answered (baseline.json, logged with the version by the register step) by population stability
index, the statistic the pipeline's validate-data step gates on. PSI above the threshold on any
feature is drift: the check is written to `<workdir>/monitoring/`, an alert is appended to
`alerts.jsonl`, and the caller starts the pipeline (`on_drift`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.serving.endpoint import capture_dir
from pipelines.steps.drift import parse_request
from pipelines.steps.validate import drift_report


@dataclass
class DriftCheck:
    """One monitoring check over a window of captured traffic."""

    status: str
    """'drift', 'ok' or 'insufficient' (fewer rows than min_rows; the window stays open)."""
    rows: int
    threshold: float
    version: str = ""
    drifted: list[str] = field(default_factory=list)
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    time: str = ""
    path: str = ""

    @property
    def max_psi(self) -> float:
        return max((f["psi"] for f in self.features.values()), default=0.0)


def monitoring_dir(workdir: Path) -> Path:
    return Path(workdir) / "monitoring"


def read_capture(
    workdir: Path, cursor: dict[str, int] | None = None
) -> tuple[pd.DataFrame, dict[str, int], Counter[str]]:
    """Rows captured after `cursor`, the new cursor, and rows per answering version."""
    cursor = dict(cursor or {})
    frames: list[pd.DataFrame] = []
    versions: Counter[str] = Counter()
    for path in sorted(capture_dir(workdir).glob("capture-*.jsonl")):
        with open(path, "rb") as fh:
            fh.seek(cursor.get(path.name, 0))
            for line in fh:
                if not line.endswith(b"\n"):  # being written; read it next time
                    break
                cursor[path.name] = fh.tell()
                record = json.loads(line)
                try:
                    frame = parse_request(record["request"], record["content_type"])
                except Exception:  # noqa: BLE001,S112 - it was scored, so this is rare; skip it
                    continue
                frames.append(frame)
                versions[str(record["version"])] += len(frame)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame, cursor, versions


def version_baseline(tracking_uri: str, model_name: str, version: str) -> dict[str, Any]:
    """baseline.json of a registered version (statistics of its training split)."""
    import mlflow.artifacts
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    run_id = client.get_model_version(model_name, version).run_id
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="baseline/baseline.json", tracking_uri=tracking_uri
    )
    return json.loads(Path(local).read_text())


def compare(frame: pd.DataFrame, baseline: dict[str, Any], threshold: float) -> dict[str, Any]:
    """Per-feature PSI and KS (the validate-data step's code) plus both bin proportions."""
    report = drift_report(frame, baseline, threshold)
    for name, stats in report["features"].items():
        ref = baseline["features"][name]
        edges = np.asarray(ref["edges"], dtype=float)
        values = pd.to_numeric(frame[name], errors="coerce").dropna().to_numpy(dtype=float)
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        stats["baseline_proportions"] = list(ref["proportions"])
        stats["current_proportions"] = (counts / max(len(values), 1)).round(6).tolist()
        stats["edges"] = list(ref["edges"])
        stats["baseline_mean"], stats["current_mean"] = ref["mean"], float(values.mean())
    return report


def monitor_once(
    *,
    workdir: Path,
    tracking_uri: str,
    model_name: str,
    threshold: float,
    min_rows: int = 200,
    on_drift: Callable[[DriftCheck], None] | None = None,
) -> DriftCheck:
    """Check the traffic captured since the last check; call `on_drift` when it drifted."""
    out_dir = monitoring_dir(workdir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cursor_path = out_dir / "cursor.json"
    cursor = json.loads(cursor_path.read_text()) if cursor_path.is_file() else {}
    frame, new_cursor, versions = read_capture(workdir, cursor)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if len(frame) < min_rows:
        return DriftCheck("insufficient", len(frame), threshold, time=now)
    version = versions.most_common(1)[0][0]
    report = compare(frame, version_baseline(tracking_uri, model_name, version), threshold)
    check = DriftCheck(
        "drift" if report["drifted"] else "ok",
        len(frame),
        threshold,
        version=version,
        drifted=report["drifted"],
        features=report["features"],
        time=now,
    )
    path = out_dir / f"check-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.json"
    check.path = str(path)
    path.write_text(json.dumps(asdict(check), indent=1))
    cursor_path.write_text(json.dumps(new_cursor))
    if check.status == "drift":
        alert = {
            "time": now,
            "kind": "drift",
            "version": version,
            "rows": check.rows,
            "drifted": check.drifted,
            "max_psi": round(check.max_psi, 4),
            "threshold": threshold,
            "check": str(path),
        }
        with open(out_dir / "alerts.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(alert) + "\n")
        if on_drift is not None:
            on_drift(check)
    return check


def checks(workdir: Path) -> list[dict[str, Any]]:
    """Every stored check, oldest first."""
    return [json.loads(p.read_text()) for p in sorted(monitoring_dir(workdir).glob("check-*.json"))]


def alerts(workdir: Path) -> list[dict[str, Any]]:
    path = monitoring_dir(workdir) / "alerts.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
