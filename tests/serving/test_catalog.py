"""The catalog of models in production, built from registries seeded here: SageMaker under
moto, Azure ML through the real azure-ai-ml client with HTTP intercepted (`responses`), and
MLflow sqlite registries for on-prem and the local loop."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import responses
import yaml
from azure.core.credentials import AccessToken
from moto import mock_aws
from typer.testing import CliRunner

from components.azure._common import dashed_name
from core.config import PROJECT_ROOT
from mlops.catalog import CatalogSources, build_catalog, last_release, to_html, to_json
from pipelines.local import RunResult, default_tracking_uri
from tests.serving.conftest import register_copy

SUB = "00000000-0000-0000-0000-000000000000"
ARM = "https://management.azure.com"
WS_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-contoso-dev/providers/"
    "Microsoft.MachineLearningServices/workspaces/mlw-contoso-dev"
)
AZ_ENDPOINT = dashed_name("ep", "contoso-dev", "westeurope", 32)
ROLE = "arn:aws:iam::123456789012:role/acme-dev-serving"


class FakeCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("fake-token", int(time.time()) + 3600)


def _stack(root: Path, name: str, model: str | None) -> None:
    doc = yaml.safe_load((PROJECT_ROOT / f"Pulumi.{name}.yaml").read_text())
    if model:
        doc["config"]["mlops:model"] = model
    (root / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "stacks"
    root.mkdir()
    (root / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    _stack(root, "acme-dev", "2")
    _stack(root, "contoso-dev", "2")
    _stack(root, "globex-dev", "1")
    _stack(root, "globex-cluster", None)  # the shared layer: no endpoint, not in the catalog
    return root


def _seed_sagemaker() -> None:
    sm = boto3.client("sagemaker", region_name="eu-west-1")
    sm.create_model_package_group(ModelPackageGroupName="acme-dev-models")
    arns = []
    for version, data_hash in ((1, "a" * 64), (2, "b" * 64)):
        arns.append(
            sm.create_model_package(
                ModelPackageGroupName="acme-dev-models",
                ModelApprovalStatus="Approved",
                InferenceSpecification={
                    "Containers": [{"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/m:1"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
                CustomerMetadataProperties={
                    "data_hash": data_hash,
                    "code_version": f"c0de{version}",
                    "metric.roc_auc": f"0.9{version}",
                    "onnx_exportable": "true",
                },
            )["ModelPackageArn"]
        )
        sm.create_model(
            ModelName=f"acme-dev-v{version}",
            PrimaryContainer={"ModelPackageName": arns[-1]},
            ExecutionRoleArn=ROLE,
        )
    variant = {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    sm.create_endpoint_config(
        EndpointConfigName="acme-dev-endpoint-config",
        ProductionVariants=[
            {"VariantName": "blue", "ModelName": "acme-dev-v1", "InitialVariantWeight": 9,
             **variant},
            {"VariantName": "green", "ModelName": "acme-dev-v2", "InitialVariantWeight": 1,
             **variant},
        ],
    )  # fmt: skip
    sm.create_endpoint(
        EndpointName="acme-dev-endpoint", EndpointConfigName="acme-dev-endpoint-config"
    )
    cw = boto3.client("cloudwatch", region_name="eu-west-1")
    for name in ("acme-dev-data-quality-drift", "acme-dev-training-data-drift-alarm"):
        cw.put_metric_alarm(
            AlarmName=name,
            MetricName="feature_baseline_drift",
            Namespace="aws/sagemaker/Endpoints/data-metrics",
            Statistic="Maximum",
            Period=3600,
            EvaluationPeriods=1,
            Threshold=0.2,
            ComparisonOperator="GreaterThanThreshold",
        )
    cw.set_alarm_state(
        AlarmName="acme-dev-data-quality-drift", StateValue="ALARM", StateReason="PSI 0.4"
    )


def _azure(request: Any) -> tuple[int, dict[str, str], str]:
    """Just enough of the Azure ML ARM API: one endpoint, two deployments, two models."""
    assert request.headers["Authorization"] == "Bearer fake-token"
    rel = request.path_url.split("?")[0].removeprefix(WS_ID)
    if rel == f"/onlineEndpoints/{AZ_ENDPOINT}":
        body = {
            "id": WS_ID + rel, "name": AZ_ENDPOINT, "location": "westeurope", "kind": "Managed",
            "identity": {"type": "SystemAssigned"},
            "properties": {"authMode": "AADToken", "traffic": {"blue": 80, "green": 20},
                           "provisioningState": "Succeeded"},
        }  # fmt: skip
        return 200, {}, json.dumps(body)
    if rel == f"/onlineEndpoints/{AZ_ENDPOINT}/deployments":
        deployments = [
            {
                "id": f"{WS_ID}{rel}/{name}", "name": name, "location": "westeurope",
                "kind": "Managed", "sku": {"name": "Default", "capacity": 1},
                "properties": {"endpointComputeType": "Managed",
                               "scaleSettings": {"scaleType": "Default"},
                               "model": f"{WS_ID}/models/contoso-classifier/versions/{v}",
                               "provisioningState": "Succeeded"},
            }
            for name, v in (("blue", "2"), ("green", "3"))
        ]  # fmt: skip
        return 200, {}, json.dumps({"value": deployments})
    if m := re.fullmatch(r"/models/contoso-classifier/versions/(\d+)", rel):
        body = {
            "id": WS_ID + rel, "name": m[1],
            "properties": {"modelType": "mlflow_model", "flavors": {
                "python_function": {"data": {"loader_module": "mlflow.sklearn"}}}, "tags": {
                "data_hash": f"{m[1]}" * 64, "code_version": "azc0de", "metric.f1": "0.95",
                "onnx_exportable": "false", "onnx_reason": "parity failed: 1e-3 > 1e-4",
                "drift_status": "ok"}, "properties": {}},
        }  # fmt: skip
        return 200, {}, json.dumps(body)
    raise AssertionError(f"unexpected call {request.method} {request.url}")


@pytest.fixture(scope="module")
def registries(run: RunResult, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An on-prem MLflow registry (globex) and a local loop's (local), seeded once."""
    home = tmp_path_factory.mktemp("catalog")
    register_copy(run, home / "onprem", "globex-classifier")
    register_copy(run, home / "local", "local-classifier")
    return home / "onprem", home / "local"


@pytest.fixture
def seeded(root: Path, tmp_path: Path, run: RunResult, registries: tuple[Path, Path]):
    releases = tmp_path / "releases"
    releases.mkdir()
    (releases / "acme-dev.jsonl").write_text(
        json.dumps({"stack": "acme-dev", "version": "1", "outcome": "released",
                    "finished": "2026-01-01T00:00:00+00:00"}) + "\n"
        + json.dumps({"stack": "acme-dev", "version": "2", "outcome": "canary",
                      "finished": "2026-02-01T00:00:00+00:00"}) + "\n"
        + "not json\n"
    )  # fmt: skip
    (releases / "other.json").write_text(json.dumps({"stack": "contoso-dev", "version": "2"}))
    (releases / "broken.json").write_text("{")
    onprem, local = registries
    (local / "releases").mkdir(exist_ok=True)
    (local / "releases" / "releases.jsonl").write_text(
        json.dumps({"version": "1", "outcome": "released", "finished": "2026-03-01"}) + "\n"
    )
    (local / "monitoring").mkdir(exist_ok=True)
    (local / "monitoring" / "check-20260301T000000.json").write_text(
        json.dumps({"status": "drift", "drifted": ["mean_radius"], "time": "2026-03-01"})
    )
    sources = CatalogSources(
        root=root,
        releases_dir=releases,
        local_workdir=local,
        tracking_uris={"globex-dev": default_tracking_uri(onprem)},
        azure_subscription=SUB,
        azure_credential=FakeCredential(),
    )
    with mock_aws(), responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        _seed_sagemaker()
        for method in (responses.GET, responses.POST):
            rsps.add_callback(method, re.compile(re.escape(ARM) + ".*"), callback=_azure)
        yield sources, run


def test_catalog_reads_every_platform_registry(seeded) -> None:
    sources, run = seeded
    entries = {e.stack: e for e in build_catalog(sources)}
    assert list(entries) == ["acme-dev", "contoso-dev", "globex-dev", "local"]
    assert all(not e.error for e in entries.values()), [e.error for e in entries.values()]

    acme = entries["acme-dev"]
    assert (acme.endpoint, acme.version, acme.traffic) == (
        "acme-dev-endpoint", "1", {"1": 90, "2": 10}
    )  # fmt: skip
    assert acme.lineage["data_hash"] == "a" * 64 and acme.lineage["code_version"] == "c0de1"
    assert acme.metrics == {"roc_auc": 0.91} and acme.exportable == "true"
    assert acme.pinned == "2"
    assert acme.drift["status"] == "drift" and "acme-dev-data-quality-drift" in acme.drift["detail"]
    assert acme.last_release["version"] == "2" and acme.last_release["outcome"] == "canary"

    contoso = entries["contoso-dev"]
    assert (contoso.endpoint, contoso.version, contoso.traffic) == (
        AZ_ENDPOINT, "2", {"2": 80, "3": 20}
    )  # fmt: skip
    assert contoso.lineage["code_version"] == "azc0de" and contoso.metrics == {"f1": 0.95}
    assert contoso.exportable == "false" and "parity failed" in contoso.lineage["onnx_reason"]
    assert contoso.drift["status"] == "ok"
    assert contoso.last_release == {"stack": "contoso-dev", "version": "2", "time": ""}

    globex = entries["globex-dev"]
    data_hash = run.registration["lineage"]["data_hash"]
    assert (globex.version, globex.traffic) == ("1", {"1": 100})
    assert globex.lineage["data_hash"] == data_hash
    assert globex.metrics["roc_auc"] == pytest.approx(run.metrics["roc_auc"], abs=1e-6)
    assert globex.exportable == "true" and globex.drift["status"] == "unknown"
    assert globex.last_release is None

    local = entries["local"]
    assert (local.version, local.traffic) == ("1", {"1": 100})
    assert local.lineage["data_hash"] == data_hash
    assert local.drift["status"] == "drift" and "mean_radius" in local.drift["detail"]


def test_json_and_html_carry_each_entry(seeded) -> None:
    sources, _ = seeded
    entries = build_catalog(sources)
    data = json.loads(to_json(entries))
    assert [d["stack"] for d in data] == [e.stack for e in entries]
    assert data[0]["traffic"] == {"1": 90, "2": 10}
    page = to_html(entries)
    assert page.startswith("<!doctype html>") and page.count("<tr>") == len(entries) + 1
    assert "acme-dev-endpoint" in page and "v1: 90%" in page and "not exportable" in page


def test_an_unreachable_platform_is_an_entry_with_the_error(root: Path, tmp_path: Path) -> None:
    sources = CatalogSources(root=root, stacks=("contoso-dev",), local_workdir=None)
    (entry,) = build_catalog(sources)
    assert entry.status == "error"
    assert "AZURE_SUBSCRIPTION_ID" in entry.error and "--azure-subscription" in entry.error


def test_a_stack_without_an_endpoint_reads_as_not_deployed(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    _stack(root, "acme-dev", None)
    with mock_aws():
        (entry,) = build_catalog(CatalogSources(root=root, local_workdir=None))
    assert (entry.status, entry.version, entry.error) == ("not-deployed", "", "")


def test_release_records_are_read_defensively(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"stack": "s", "version": "3", "time": "2026-05"}\n[1]\n')
    (tmp_path / "b.json").write_text('[{"stack": "s", "version": "4", "time": "2026-06"}, 7]')
    (tmp_path / "c.json").write_text("garbage")
    assert last_release([tmp_path], "s")["version"] == "4"
    assert last_release([tmp_path], "nope") is None
    assert last_release([tmp_path / "missing"], "s") is None


def test_cli_catalog_writes_json_and_html(tmp_path: Path) -> None:
    from mlops.cli_serving import app

    page = tmp_path / "catalog.html"
    with mock_aws():
        result = CliRunner().invoke(
            app,
            ["catalog", "--json", "--html", str(page), "--stack", "acme-dev",
             "--workdir", str(tmp_path / "none")],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    assert (entry["stack"], entry["status"]) == ("acme-dev", "not-deployed")
    assert "acme-dev-endpoint" in page.read_text()
