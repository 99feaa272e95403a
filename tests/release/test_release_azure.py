"""`mlops release` / `promote` on Azure ML: the real azure-ai-ml MLClient with its HTTP
intercepted by `responses` and answered by the in-memory workspace of tests/azure (extended
here with model writes); the Automation API runs the recording stand-in `pulumi` on PATH
(conftest.py). Pulumi's side of an update (creating the `model-v<N>` deployment) is played
by adding the deployment to the fake workspace."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import responses

from pipelines import release as rel
from pipelines.release import azure as az
from pipelines.release import orchestrate
from pipelines.release.azure import AzurePlatform
from tests.azure.test_release import (
    ARM,
    ENDPOINT,
    MODEL,
    RG,
    SCORING,
    SUB,
    WS,
    WS_ID,
    FakeCredential,
    FakeWorkspace,
)
from tests.release.conftest import in_github_actions, restore_stack_file

APPROVAL = rel.Approval("reviewer", "run-1")


class Workspace(FakeWorkspace):
    """The tests/azure fake plus model version writes (tags, promoted copies)."""

    def __init__(self, answer: Any = (1,)) -> None:
        super().__init__()
        self.answer = list(answer)

    def add_model(self, version: str, archived: bool = False, **tags: str) -> None:
        super().add_model(version, archived)
        self.models[version]["properties"]["tags"] = dict(tags)

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        rel_path = request.path_url.split("?")[0].removeprefix(WS_ID)
        if request.url.startswith(SCORING):
            self.scored.append(json.loads(request.body))
            return 200, {}, json.dumps(self.answer)
        m = re.fullmatch(rf"/models/{MODEL}/versions/(\w+)", rel_path)
        if m and request.method == "PUT":
            body = json.loads(request.body)
            self.puts.append((rel_path, body))
            self.models[m[1]] = {
                "id": f"{WS_ID}{rel_path}",
                "name": m[1],
                "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
                "properties": {
                    **body["properties"],
                    "flavors": body["properties"].get("flavors") or {},
                    "stage": "Development",
                },
            }
            return 200, {}, json.dumps(self.models[m[1]])
        return super().__call__(request)


@pytest.fixture
def ws():
    fake = Workspace()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for method in (responses.GET, responses.PUT, responses.POST, responses.PATCH):
            rsps.add_callback(
                method, re.compile(rf"({re.escape(ARM)}|{re.escape(SCORING)}).*"), callback=fake
            )
        yield fake


def platform(naps: list[float] | None = None) -> AzurePlatform:
    ml = az.client(az.Workspace(SUB, RG, WS), credential=FakeCredential())
    return AzurePlatform(
        ml,
        model=MODEL,
        workspace=WS,
        timeout_s=60,
        poll_s=30,
        sleep=(naps if naps is not None else []).append,
    )


def test_blue_green_release_keeps_the_stable_side_then_retires_it(ws, standin):
    ws.add_model("2", approval_status="approved")
    ws.add_model("3", approval_status="approved", data_hash="d3")
    ws.add_model("4", approval_status="pending")
    ws.add_endpoint({"model-v2": 90, "model-v3": 10}, ["model-v2", "model-v3"])
    standin.seed_outputs({"endpointName": ENDPOINT})
    record = orchestrate.release(
        "contoso-prod", approval=APPROVAL, root=standin.root, platform=platform()
    )
    assert (record.outcome, record.version, record.previous) == ("released", "3", "2")
    cmds = standin.commands()
    pin = cmds.index("config set mlops:rollout.previousModel 2")
    assert cmds.index("config set mlops:model 3") < pin < cmds.index("up"), cmds
    assert cmds.index("config rm mlops:rollout.previousModel") > cmds.index("up")
    assert cmds.count("up") == 2
    config = standin.stack_config("contoso-prod")
    assert config["mlops:model"] == "3" and "previousModel" not in (
        config.get("mlops:rollout") or {}
    )
    smoke = ws.scored[-1]["input_data"]
    assert smoke["columns"][0] == "mean_radius" and len(smoke["data"][0]) == 30
    assert ws.models["3"]["properties"]["tags"]["mlops.release.contoso-prod"].startswith("released")
    assert record.lineage["data_hash"] == "d3" and record.approval["approver"] == "reviewer"


def test_deployment_that_never_becomes_healthy_is_rolled_back(ws, standin):
    ws.add_model("2", approval_status="approved")
    ws.add_model("3", approval_status="approved")
    ws.add_endpoint({"model-v2": 100}, ["model-v2"])  # Pulumi never created model-v3
    standin.seed_outputs({"endpointName": ENDPOINT})
    naps: list[float] = []
    with pytest.raises(rel.ReleaseFailed, match="model-v3 does not exist yet"):
        orchestrate.release(
            "contoso-prod", approval=APPROVAL, root=standin.root, platform=platform(naps)
        )
    assert naps == [30, 30]
    config = standin.stack_config("contoso-prod")
    assert config["mlops:model"] == "2"
    assert "previousModel" not in (config.get("mlops:rollout") or {})
    assert rel.read_records(standin.root / rel.RECORDS)[-1]["outcome"] == "rolled-back"


def test_smoke_answer_outside_the_label_domain_rolls_back(ws, standin):
    ws.answer = ["malignant?"]
    ws.add_model("1", approval_status="approved")
    ws.add_endpoint({"model-v1": 100}, ["model-v1"])
    standin.seed_outputs({"endpointName": ENDPOINT})
    with pytest.raises(rel.ReleaseFailed, match="label domain"):
        orchestrate.release("contoso-dev", root=standin.root, platform=platform())
    assert "mlops:model" not in standin.stack_config("contoso-dev")


def test_unapproved_archived_and_missing_versions_are_refused(ws, standin):
    ws.add_model("1", approval_status="pending")
    ws.add_model("2", archived=True, approval_status="approved")
    for version, message in (
        (None, "has no approved version"),
        ("1", "is not approved"),
        ("2", "is not approved"),
        ("9", "version 9 is not in model contoso-classifier"),
    ):
        with pytest.raises(rel.ReleaseError, match=message):
            orchestrate.release(
                "contoso-dev", version=version, root=standin.root, platform=platform()
            )
    assert not [c for c in standin.commands() if c.startswith(("config set", "up"))]


def test_promotion_copies_the_version_with_lineage_then_releases(ws, standin):
    ws.add_model("1", approval_status="approved", pipeline_run_id="r-1")
    ws.add_model("2", approval_status="approved")  # what prod serves now
    ws.add_endpoint({"model-v2": 100}, ["model-v2", "model-v3"])  # after Pulumi applied 3
    standin.seed_outputs({"endpointName": ENDPOINT})
    source, target = platform(), platform()
    record = orchestrate.promote(
        "contoso-dev",
        "contoso-prod",
        version="1",
        approval=APPROVAL,
        root=standin.root,
        source_platform=source,
        target_platform=target,
    )
    copied = ws.models["3"]["properties"]
    assert copied["tags"]["mlops.promoted_from"].endswith(f"/models/{MODEL}/versions/1")
    assert copied["tags"]["pipeline_run_id"] == "r-1"
    assert copied["properties"]["mlops.source_version"] == "1"
    assert (record.version, record.previous, record.outcome) == ("3", "2", "released")
    assert record.promoted_from["stack"] == "contoso-dev"
    again = target.import_version(source, source.get("1"))
    assert again.version == "3", "a second promotion of the same version must not copy again"


def test_an_apply_from_main_with_the_old_pin_keeps_the_release(ws, standin, monkeypatch):
    """Today's race: release v2, then an unrelated apply from main whose stack file still pins
    v1. The release marker (a model version tag) decides: the apply pins and serves v2."""
    ws.add_model("1", approval_status="approved")
    ws.add_model("2", approval_status="approved")
    ws.add_endpoint({"model-v2": 100}, ["model-v2"])  # Pulumi's side of applying 2
    standin.seed_outputs({"endpointName": ENDPOINT})
    in_github_actions(monkeypatch, "c0ffee3")
    record = orchestrate.release("contoso-dev", root=standin.root, platform=platform())
    assert (record.version, record.commit) == ("2", "c0ffee3")
    assert record.ref.endswith(f"/models/{MODEL}/versions/2")
    assert ws.models["2"]["properties"]["tags"]["mlops.serving.contoso-dev"] >= record.started

    restore_stack_file(standin.root, "contoso-dev", pin="1")  # main before the pin PR merged
    applied = orchestrate.apply("contoso-dev", root=standin.root, platform=platform())
    cmds = standin.commands()
    last_up = len(cmds) - 1 - cmds[::-1].index("up")
    assert cmds[last_up - 1] == "config set mlops:model 2", cmds
    assert json.loads(standin.state.read_text())["outputs"]["modelVersion"] == "2"
    assert (applied.outcome, applied.version, applied.pinned) == ("applied", "2", "1")
