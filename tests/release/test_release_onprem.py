"""`mlops release` / `promote` on-prem: a local sqlite MLflow registry (no server process);
the KServe endpoint's `/ready` and `/infer` answered through `responses`; the Automation API
runs the recording stand-in `pulumi` on PATH (conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from mlflow.tracking import MlflowClient

from pipelines import release as rel
from pipelines.release import orchestrate
from pipelines.release.mlflow import MlflowPlatform
from tests.release.conftest import in_github_actions, restore_stack_file

MODEL = "globex-classifier"
BASE = "https://globex-dev-model.ml.dev.globex.internal/v2/models/globex-dev-model"


_TEMPLATE: list[Path] = []


def registry(tmp_path: Path, name: str) -> str:
    """A fresh sqlite registry holding the model (copied from one migrated template: creating
    an MLflow database runs its migrations, which takes seconds)."""
    import shutil

    if not _TEMPLATE:
        import tempfile

        template = Path(tempfile.mkdtemp()) / "template.db"
        uri = f"sqlite:///{template}"
        MlflowClient(tracking_uri=uri, registry_uri=uri).create_registered_model(MODEL)
        _TEMPLATE.append(template)
    shutil.copy(_TEMPLATE[0], tmp_path / f"{name}.db")
    return f"sqlite:///{tmp_path / name}.db"


def register(tmp_path: Path, uri: str, status: str, **tags: str) -> str:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    count = len(client.search_model_versions(f"name = '{MODEL}'"))
    files = tmp_path / f"{Path(uri).stem}-model-{count}"
    files.mkdir()
    (files / "MLmodel").write_text("flavors: {python_function: {}}\n")
    return client.create_model_version(
        MODEL, str(files), tags={"approval_status": status, **tags}
    ).version


@pytest.fixture
def endpoint():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def ready(rsps, *statuses: int, prediction: object = 1) -> None:
    for status in statuses:
        rsps.add(responses.GET, f"{BASE}/ready", status=status)
    rsps.add(
        responses.POST,
        f"{BASE}/infer",
        json={
            "model_name": "globex-dev-model",
            "outputs": [
                {"name": "predict", "shape": [1], "datatype": "INT64", "data": [prediction]}
            ],
        },
    )


def test_release_from_the_mlflow_registry_waits_for_ready_and_smoke_tests(
    tmp_path, standin, endpoint
):
    uri = registry(tmp_path, "dev")
    register(tmp_path, uri, "approved")
    register(tmp_path, uri, "approved", data_hash="h2")
    register(tmp_path, uri, "pending")
    standin.seed_outputs({"trackingUri": uri, "endpointUrl": f"{BASE}/infer"})
    ready(endpoint, 503, 503, 200)
    naps: list[float] = []
    platform = MlflowPlatform(tracking_uri=uri, model=MODEL, poll_s=10, sleep=naps.append)
    record = orchestrate.release("globex-dev", root=standin.root, platform=platform)
    assert naps == [10, 10]
    assert (record.outcome, record.version, record.ref) == ("released", "2", f"models:/{MODEL}/2")
    assert record.lineage["data_hash"] == "h2"
    assert "healthy after 20 s" in record.steps[2]["detail"]
    body = endpoint.calls[-1].request.body
    assert b'"name": "mean_radius"' in body and b'"datatype": "FP64"' in body
    tags = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(MODEL, "2").tags
    assert tags["mlops.release.globex-dev"].startswith("released")
    assert standin.stack_config("globex-dev")["mlops:model"] == "2"


def test_a_failed_smoke_prediction_rolls_back(tmp_path, standin, endpoint):
    uri = registry(tmp_path, "dev")
    register(tmp_path, uri, "approved")
    ready(endpoint, 200, prediction=3)
    standin.seed_outputs({"trackingUri": uri, "endpointUrl": f"{BASE}/infer"})
    with pytest.raises(rel.ReleaseFailed, match="not in the label domain"):
        orchestrate.release("globex-dev", root=standin.root)
    assert "mlops:model" not in standin.stack_config("globex-dev")
    tags = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(MODEL, "1").tags
    assert tags["mlops.release.globex-dev"].startswith("rolled-back")


def test_version_not_in_registry_is_refused(tmp_path, standin):
    uri = registry(tmp_path, "dev")
    standin.seed_outputs({"trackingUri": uri})
    with pytest.raises(rel.ReleaseError, match="version 4 is not in MLflow model"):
        orchestrate.release("globex-dev", version="4", root=standin.root)
    with pytest.raises(rel.ReleaseError, match="has no approved version"):
        orchestrate.release("globex-dev", root=standin.root)
    assert not (standin.root / rel.RECORDS).exists()


def test_promotion_copies_files_and_lineage_into_the_prod_registry(tmp_path, standin, endpoint):
    dev_uri, prod_uri = registry(tmp_path, "dev"), registry(tmp_path, "prod")
    register(tmp_path, dev_uri, "approved", pipeline_run_id="p-9")
    for _ in range(4):  # prod already holds versions 1-4 (it serves 4)
        register(tmp_path, prod_uri, "approved")
    ready(endpoint, 200)
    standin.seed_outputs({"endpointUrl": f"{BASE}/infer"})
    source = MlflowPlatform(tracking_uri=dev_uri, model=MODEL)
    target = MlflowPlatform(tracking_uri=prod_uri, model=MODEL)
    with pytest.raises(rel.ReleaseError, match="needs the approval"):
        orchestrate.promote(
            "globex-dev",
            "globex-prod",
            root=standin.root,
            source_platform=source,
            target_platform=target,
        )
    record = orchestrate.promote(
        "globex-dev",
        "globex-prod",
        approval=rel.Approval("ops-lead", "77"),
        root=standin.root,
        source_platform=source,
        target_platform=target,
    )
    assert (record.version, record.previous, record.outcome) == ("5", "4", "released")
    prod = MlflowClient(tracking_uri=prod_uri, registry_uri=prod_uri)
    copied = prod.get_model_version(MODEL, "5")
    assert copied.tags["pipeline_run_id"] == "p-9"
    assert copied.tags["mlops.promoted_from"] == f"models:/{MODEL}/1@{dev_uri}"
    files = Path(prod.get_run(copied.run_id).info.artifact_uri.removeprefix("file://"))
    assert (files / "model" / "MLmodel").read_text().startswith("flavors")
    assert rel.read_records(standin.root / rel.RECORDS)[-1]["approval"] == {
        "approver": "ops-lead",
        "run_id": "77",
    }


def test_an_apply_from_main_with_the_old_pin_keeps_the_release(
    tmp_path, standin, endpoint, monkeypatch
):
    """Today's race: release v2, then an unrelated apply from main whose stack file still pins
    v1. The registry's release marker decides: v2 keeps serving, and the override is loud."""
    uri = registry(tmp_path, "dev")
    register(tmp_path, uri, "approved")
    register(tmp_path, uri, "approved")
    ready(endpoint, 200)
    ready(endpoint, 200)
    standin.seed_outputs({"trackingUri": uri, "endpointUrl": f"{BASE}/infer"})
    in_github_actions(monkeypatch, "c0ffee1")
    orchestrate.release("globex-dev", version="1", root=standin.root)
    record = orchestrate.release("globex-dev", root=standin.root)
    assert (record.version, record.commit, record.ref) == ("2", "c0ffee1", f"models:/{MODEL}/2")

    restore_stack_file(standin.root, "globex-dev", pin="1")  # main before the pin PR merged
    said: list[str] = []
    applied = orchestrate.apply("globex-dev", root=standin.root, say=said.append)
    assert standin.stack_config("globex-dev")["mlops:model"] == "2"
    assert json.loads(standin.state.read_text())["outputs"]["modelVersion"] == "2"
    assert (applied.kind, applied.outcome, applied.version, applied.pinned) == (
        "apply",
        "applied",
        "2",
        "1",
    )
    assert any("pins mlops:model=1" in line and "applying 2" in line for line in said), said
    assert rel.read_records(standin.root / rel.RECORDS)[-1]["kind"] == "apply"

    # a rollback is explicit and recorded, and then the apply keeps v1
    ready(endpoint, 200)
    back = orchestrate.release("globex-dev", version="1", root=standin.root)
    assert (back.kind, back.outcome, back.previous) == ("rollback", "released", "2")
    restore_stack_file(standin.root, "globex-dev", pin="2")
    with pytest.raises(rel.ReleaseError, match="newer than version 1"):
        orchestrate.apply("globex-dev", root=standin.root)


def test_a_cluster_stack_applies_without_a_registry(standin) -> None:
    """`mlops apply globex-cluster`: the shared layer serves no model, so no registry is asked
    (it has no trackingUri) and the stack file is applied as it is."""
    standin.seed_outputs({"blueprint": "cluster", "clusterIssuer": "internal-ca"})
    said: list[str] = []
    record = orchestrate.apply("globex-cluster", root=standin.root, say=said.append)
    assert (record.kind, record.outcome, record.version) == ("apply", "applied", "")
    assert any("cluster stack" in line for line in said), said
    assert "up" in standin.commands()
