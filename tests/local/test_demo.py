"""The whole loop on small data: two versions, two releases, drift that triggers retraining,
zero failed requests during the rollout, and a self-contained report with its plots."""

from __future__ import annotations

import json
import re
from pathlib import Path

from mlflow.tracking import MlflowClient

from pipelines.local import default_tracking_uri
from pipelines.loop.demo import DemoResult
from pipelines.loop.monitor import alerts, checks
from pipelines.release.local import release_history
from pipelines.serving.endpoint import Endpoint
from pipelines.serving.metrics import parse_exposition


def test_demo_registers_two_versions_and_releases_both(
    demo: DemoResult, demo_workdir: Path
) -> None:
    assert demo.versions == [1, 2]
    assert [r.outcome for r in demo.releases] == ["released", "released"]
    assert [r.version for r in demo.releases] == ["1", "2"]
    assert demo.releases[1].serving_before == ["1"]
    assert demo.releases[1].previous == "1"
    assert demo.releases[1].strategy == "canary"
    steps = [s["step"] for s in demo.releases[1].steps]
    assert steps == ["start", "health+smoke", "traffic 25%", "traffic 100%", "drain+stop 1"]
    client = MlflowClient(
        tracking_uri=default_tracking_uri(demo_workdir),
        registry_uri=default_tracking_uri(demo_workdir),
    )
    champion = client.get_model_version_by_alias("local-classifier", "champion")
    assert str(champion.version) == "2"


def test_rollout_to_version_2_had_zero_failed_requests_under_live_traffic(demo: DemoResult) -> None:
    sent, ok, failed, by_version = demo.traffic["rollout to version 2"][:4]
    assert sent > 0 and failed == 0 and ok == sent
    assert demo.rollout_failed_requests == 0
    assert "v2:" in by_version  # version 2 really answered live traffic


def test_every_release_is_recorded_with_lineage(demo: DemoResult, demo_workdir: Path) -> None:
    history = release_history(demo_workdir)
    assert [h["version"] for h in history] == ["1", "2"]
    for record in history:
        assert record["outcome"] == "released"
        assert record["started"] <= record["finished"]
        assert len(record["lineage"]["data_hash"]) == 64
        assert record["lineage"]["pipeline_run_id"]
        assert record["lineage"]["approval_status"] == "approved"
        assert record["metrics"]["roc_auc"] > 0.9
    assert history[0]["lineage"]["data_hash"] != history[1]["lineage"]["data_hash"]


def test_drift_in_captured_traffic_raised_an_alert_and_retrained(
    demo: DemoResult, demo_workdir: Path
) -> None:
    first, second = demo.checks
    assert first.status == "ok" and first.version == "1"
    assert second.status == "drift" and second.version == "1"
    assert second.max_psi > second.threshold > first.max_psi
    found = alerts(demo_workdir)
    assert len(found) == 1 and found[0]["kind"] == "drift"
    stored = checks(demo_workdir)
    assert [c["status"] for c in stored] == ["ok", "drift"]
    # the retraining run is the one that registered version 2, after the alert
    runs = sorted((demo_workdir / "runs").glob("*/run.json"))
    registered = [json.loads(p.read_text()).get("registered_version") for p in runs]
    assert registered == [1, 2]


def test_capture_holds_requests_and_responses(demo: DemoResult, demo_workdir: Path) -> None:
    lines = [
        json.loads(line)
        for p in (demo_workdir / "capture").glob("*.jsonl")
        for line in p.read_text().splitlines()
    ]
    assert len(lines) > 50
    record = lines[0]
    assert set(record) >= {"time", "version", "content_type", "request", "response", "latency_ms"}
    assert json.loads(record["response"])["predictions"]
    assert {r["content_type"] for r in lines} == {"application/json", "text/csv"}


def test_report_is_self_contained_with_every_plot(demo: DemoResult) -> None:
    page = demo.report.read_text()
    assert demo.report.suffix == ".html"
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    for version in ("1", "2"):
        assert f"version {version} roc_curve.png" in images
        assert f"version {version} confusion_matrix.png" in images
        assert f"version {version} feature_importance.png" in images
    assert "Explanations and edge export" in page
    assert "mean_" in page.split("Explanations and edge export")[1].split("</table>")[0]
    assert "psi_per_feature" in images
    assert sum(1 for alt in images if alt.startswith("bins_")) == 6
    assert "Release history" in page and "Lineage" in page
    assert 'src="http' not in page and "<link" not in page  # nothing fetched from elsewhere


def test_prometheus_metrics_count_requests_latency_and_errors(endpoint: Endpoint) -> None:
    before = parse_exposition(endpoint.metrics())
    bad = endpoint.invoke({"not_a_format": 1})
    assert bad.status_code == 400
    after = parse_exposition(endpoint.metrics())
    key = 'mlops_endpoint_errors_total{version="2",kind="client"}'
    assert after[key] == before.get(key, 0) + 1
    count = after['mlops_endpoint_latency_seconds_count{version="2"}']
    requests_v2 = sum(
        v for k, v in after.items() if k.startswith('mlops_endpoint_requests_total{version="2"')
    )
    assert count == requests_v2 > 0
    assert after['mlops_endpoint_latency_seconds_bucket{version="2",le="+Inf"}'] == count
    assert after['mlops_endpoint_traffic_weight{version="2"}'] == 100
