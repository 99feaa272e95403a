"""The whole promotion chain on one platform path (on-prem: MLflow registries in sqlite, the
KServe endpoint answered through `responses`, the recording stand-in `pulumi`), as the release
workflows run it: `mlops chain` finds dev -> staging -> prod, then release to dev, promote to
staging with the staging environment's approval, promote to prod with prod's. Each step's
record names its source stack and version and the approval."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from core.config import PROJECT_ROOT
from pipelines import release as rel
from pipelines.release import orchestrate
from pipelines.release.mlflow import MlflowPlatform
from tests.release.conftest import in_github_actions
from tests.release.test_release_onprem import BASE, MODEL, endpoint, ready, register, registry

__all__ = ["endpoint"]  # the fixture, shared with the on-prem release tests


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The example stack files unchanged: globex-dev promotes to globex-staging, which
    promotes to globex-prod (the conftest fixture shortens dev -> prod)."""
    root = tmp_path / "project"
    root.mkdir()
    for path in [PROJECT_ROOT / "Pulumi.yaml", *PROJECT_ROOT.glob("Pulumi.globex-*.yaml")]:
        shutil.copy(path, root)
    return root


def test_release_walks_dev_staging_prod_with_approvals_and_lineage(
    tmp_path, standin, endpoint, monkeypatch
):
    links = orchestrate.chain("globex-dev", standin.root)
    assert links == {
        "blueprint": "onprem",
        "source": "globex-dev",
        "staging": "globex-staging",
        "prod": "globex-prod",
    }
    uris = {tier: registry(tmp_path, tier) for tier in ("dev", "staging", "prod")}
    register(tmp_path, uris["dev"], "approved", data_hash="h1")
    register(tmp_path, uris["dev"], "approved", data_hash="h2")
    register(tmp_path, uris["dev"], "approved", data_hash="h3")  # newer, not released
    register(tmp_path, uris["prod"], "approved")  # prod already holds (and serves) version 1
    for _ in range(3):
        ready(endpoint, 200)
    standin.seed_outputs({"endpointUrl": f"{BASE}/infer"})
    platforms = {t: MlflowPlatform(tracking_uri=u, model=MODEL) for t, u in uris.items()}
    in_github_actions(monkeypatch, "5eed5ee")

    dev = orchestrate.release(
        "globex-dev", version="2", root=standin.root, platform=platforms["dev"]
    )
    with pytest.raises(rel.ReleaseError, match="globex-dev promotes to globex-staging, not"):
        orchestrate.promote(
            "globex-dev",
            links["prod"],
            approval=rel.Approval("ops-lead", "42"),
            root=standin.root,
            source_platform=platforms["dev"],
            target_platform=platforms["prod"],
        )
    staging = orchestrate.promote(
        links["source"],
        links["staging"],
        approval=rel.Approval("qa-lead", "42"),
        root=standin.root,
        source_platform=platforms["dev"],
        target_platform=platforms["staging"],
    )
    with pytest.raises(rel.ReleaseError, match="needs the approval"):
        orchestrate.promote(
            links["staging"],
            links["prod"],
            root=standin.root,
            source_platform=platforms["staging"],
            target_platform=platforms["prod"],
        )
    prod = orchestrate.promote(
        links["staging"],
        links["prod"],
        approval=rel.Approval("ops-lead", "42"),
        root=standin.root,
        source_platform=platforms["staging"],
        target_platform=platforms["prod"],
    )

    # staging promoted what dev serves (2), not dev's newest approved (3); prod what staging
    # serves (its copy 1 of dev's 2)
    assert (dev.stack, dev.version, dev.outcome) == ("globex-dev", "2", "released")
    assert (staging.stack, staging.version, staging.outcome) == ("globex-staging", "1", "released")
    main_pin = yaml.safe_load((PROJECT_ROOT / "Pulumi.globex-prod.yaml").read_text())["config"]
    assert (prod.stack, prod.version, prod.previous, prod.outcome) == (
        "globex-prod",
        "2",
        main_pin.get("mlops:model"),
        "released",
    )
    records = rel.read_records(standin.root / rel.RECORDS)
    assert [(r["stack"], r["version"], r["outcome"]) for r in records] == [
        ("globex-dev", "2", "released"),
        ("globex-staging", "1", "released"),
        ("globex-prod", "2", "released"),
    ]
    for r in records:
        assert r["commit"] == "5eed5ee" and r["run"].endswith("/actions/runs/42")
    first, second, third = records
    assert first["approval"] == {} and first["promoted_from"] == {}
    assert second["approval"] == {"approver": "qa-lead", "run_id": "42"}
    assert (second["promoted_from"]["stack"], second["promoted_from"]["version"]) == (
        "globex-dev",
        "2",
    )
    assert second["promoted_from"]["lineage"]["data_hash"] == "h2"
    assert third["approval"] == {"approver": "ops-lead", "run_id": "42"}
    assert (third["promoted_from"]["stack"], third["promoted_from"]["version"]) == (
        "globex-staging",
        "1",
    )
    # prod's copy names staging's version, whose lineage names dev's: the chain is traceable
    assert third["promoted_from"]["lineage"]["mlops.promoted_from"] == (
        f"models:/{MODEL}/2@{uris['dev']}"
    )
    copied = MlflowClient(tracking_uri=uris["prod"], registry_uri=uris["prod"]).get_model_version(
        MODEL, "2"
    )
    assert copied.tags["mlops.promoted_from"] == f"models:/{MODEL}/1@{uris['staging']}"
    assert copied.tags["data_hash"] == "h2"
    # each stack's registry marks what it serves
    for tier, version in (("dev", "2"), ("staging", "1"), ("prod", "2")):
        serving = rel.released_version(platforms[tier], f"globex-{tier}")
        assert serving is not None and serving.version == version, tier


def test_every_update_runs_the_policy_pack_on_its_preview(standin):
    """`mlops apply` (and release / promote, same driver) hands Pulumi the kit's policy pack,
    so the preview phase of the update enforces the controls; without the pack it says so."""
    said: list[str] = []
    orchestrate.apply("globex-dev", root=standin.root, say=said.append)
    assert any("no policy pack" in line for line in said), said
    up = [c for c in standin.calls() if c[:1] == ["up"]]
    assert len(up) == 1 and "--policy-pack" not in up[0]

    (standin.root / "policy").mkdir()
    shutil.copy(PROJECT_ROOT / "policy" / "PulumiPolicy.yaml", standin.root / "policy")
    said.clear()
    standin.state.unlink()  # a first apply again: no registry to ask
    orchestrate.apply("globex-dev", root=standin.root, say=said.append)
    up = [c for c in standin.calls() if c[:1] == ["up"]][-1]
    assert up[up.index("--policy-pack") + 1] == str(standin.root / "policy")
    assert not any("no policy pack" in line for line in said)
