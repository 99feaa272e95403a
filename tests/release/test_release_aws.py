"""`mlops release` / `mlops promote` on SageMaker: the model package group and endpoint live in
a moto server (one per module, reset before each test), which the release code reaches over
HTTP as it would reach SageMaker; the Automation API runs the recording stand-in `pulumi` that
the `standin` fixture puts on PATH, and its `up` hook (`play_up`) plays Pulumi's endpoint
update against the same server (see conftest.py)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import uuid
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from mlops.cli_release import app
from mlops.plan import plan_diff
from pipelines import release as rel
from pipelines.release import orchestrate
from pipelines.release.aws import AwsPlatform
from tests.release.conftest import hook, in_github_actions, restore_stack_file

REGION, ACCOUNT = "eu-west-1", "123456789012"
DEV_GROUP, PROD_GROUP = "acme-dev-models", "acme-prod-models"


def play_up(sm: Any, stack: str, config: dict[str, Any]) -> None:
    """Plays `pulumi up` for the endpoint: serves the pinned package; when the pinned version is
    $FAIL_VERSION, SageMaker's alarm rollback leaves the endpoint on $ROLLED_BACK_TO instead."""
    version = config.get("mlops:model")
    if not version:
        return
    group, endpoint = f"{stack}-models", f"{stack}-endpoint"
    served = os.environ["ROLLED_BACK_TO"] if version == os.environ.get("FAIL_VERSION") else version
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{served}"
    name = "m-" + uuid.uuid4().hex[:8]
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/serving",
        PrimaryContainer={"ModelPackageName": arn},
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    with contextlib.suppress(Exception):
        sm.delete_endpoint(EndpointName=endpoint)
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url, monkeypatch, standin, hook_server):
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    for key, value in {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    sm = boto3.client("sagemaker", region_name=REGION)
    for group in (DEV_GROUP, PROD_GROUP):
        sm.create_model_package_group(ModelPackageGroupName=group)
    hook(hook_server, monkeypatch, functools.partial(play_up, sm))
    standin.seed_outputs({"endpointName": "acme-dev-endpoint"})
    return sm


def register(sm, status: str, group: str = DEV_GROUP, **meta: str) -> str:
    return sm.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": "123.dkr.ecr/acme:1", "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={"data_hash": "abc", **meta},
    )["ModelPackageArn"]


def answers(moto_url: str, *bodies: object) -> None:
    """Queue what the endpoint answers to invocations (moto's endpoint-results API)."""
    requests.post(
        f"{moto_url}/moto-api/static/sagemaker/endpoint-results",
        json={
            "account_id": ACCOUNT,
            "region": REGION,
            "results": [
                {
                    "Body": json.dumps(b),
                    "ContentType": "application/json",
                    "InvokedProductionVariant": "AllTraffic",
                    "CustomAttributes": "",
                }
                for b in bodies
            ],
        },
        timeout=10,
    )


def test_release_pins_the_newest_approved_applies_checks_and_records(aws, moto_url, standin):
    register(aws, "Approved")
    v2 = register(aws, "Approved")
    register(aws, "PendingManualApproval")  # v3: newer, not approved
    answers(moto_url, {"predictions": [1]})
    record = orchestrate.release("acme-dev", root=standin.root)
    assert (record.outcome, record.version, record.previous) == ("released", "2", None)
    assert record.ref == v2 and record.lineage["data_hash"] == "abc"
    assert standin.stack_config("acme-dev")["mlops:model"] == "2"
    cmds = standin.commands()
    assert cmds.index("config set mlops:model 2") < cmds.index("up"), cmds
    assert [s["step"] for s in record.steps] == ["pin", "apply", "healthy", "smoke", "mark"]
    lines = rel.read_records(standin.root / rel.RECORDS)
    assert [(r["stack"], r["version"], r["outcome"]) for r in lines] == [
        ("acme-dev", "2", "released")
    ]
    assert lines[0]["actor"] and lines[0]["platform"] == "sagemaker"
    desc = aws.describe_model_package(ModelPackageName=v2)
    meta = desc["CustomerMetadataProperties"]
    assert meta["mlops.release.acme-dev"].startswith("released"), meta
    assert meta["data_hash"] == "abc" and desc["ModelApprovalStatus"] == "Approved"


def test_smoke_prediction_is_built_from_the_data_contract():
    smoke = rel.SmokeInput.from_contract()
    body = smoke.dataframe_split()["dataframe_split"]
    assert body["columns"][0] == "mean_radius" and "target" not in body["columns"]
    assert body["data"][0][0] == pytest.approx(84.33 / 2)
    assert len(body["data"][0]) == 30 and smoke.domain == [0, 1]
    assert smoke.check({"predictions": [1]}) is None
    assert "not in the label domain" in smoke.check({"predictions": [7]})
    assert "expected one prediction" in smoke.check({"predictions": [0, 1]})


def test_alarm_rollback_on_the_endpoint_pins_the_previous_version_back(
    aws, moto_url, standin, monkeypatch
):
    register(aws, "Approved")
    register(aws, "Approved")
    answers(moto_url, {"predictions": [0]})
    assert orchestrate.release("acme-dev", version="1", root=standin.root).outcome == "released"
    monkeypatch.setenv("FAIL_VERSION", "2")
    monkeypatch.setenv("ROLLED_BACK_TO", "1")
    with pytest.raises(rel.ReleaseFailed, match="rolled-back") as failed:
        orchestrate.release("acme-dev", root=standin.root)
    record = failed.value.record
    assert record.outcome == "rolled-back" and "not arn" in record.reason.replace(
        "not arn:", "not arn"
    )
    assert "model-package/acme-dev-models/2" in record.reason
    assert standin.stack_config("acme-dev")["mlops:model"] == "1"
    cmds = standin.commands()
    tail = cmds[cmds.index("config set mlops:model 2") :]
    assert tail.count("up") == 2 and "config set mlops:model 1" in tail, tail
    assert [r["outcome"] for r in rel.read_records(standin.root / rel.RECORDS)] == [
        "released",
        "rolled-back",
    ]


def test_failed_smoke_prediction_rolls_back_to_no_model(aws, moto_url, standin):
    register(aws, "Approved")
    answers(moto_url, {"predictions": [7]})  # outside the contract's label domain
    with pytest.raises(rel.ReleaseFailed, match="label domain"):
        orchestrate.release("acme-dev", root=standin.root)
    assert "mlops:model" not in standin.stack_config("acme-dev")
    cmds = standin.commands()
    rm = cmds.index("config rm mlops:model")
    assert cmds.index("up") < rm < len(cmds) - 1 - cmds[::-1].index("up"), cmds


def test_endpoint_that_never_becomes_healthy_times_out_and_rolls_back(aws, standin, monkeypatch):
    register(aws, "Approved")
    monkeypatch.setenv("PULUMI_STANDIN_UP_HOOK", "")  # the update never reaches the endpoint
    naps: list[float] = []
    platform = AwsPlatform(
        group=DEV_GROUP,
        region=REGION,
        account=ACCOUNT,
        sagemaker=aws,
        runtime=boto3.client("sagemaker-runtime", region_name=REGION),
        timeout_s=90,
        poll_s=30,
        sleep=naps.append,
    )
    with pytest.raises(rel.ReleaseFailed, match="not healthy after 90 s"):
        orchestrate.release("acme-dev", root=standin.root, platform=platform)
    assert naps == [30, 30, 30]
    assert "mlops:model" not in standin.stack_config("acme-dev")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["release", "acme-nope"], "no stack 'acme-nope'"),
        (["release", "acme-dev", "--model-version", "9"], "version 9 is not in model package"),
        (["release", "acme-dev", "--model-version", "1"], "version 1 in model package group"),
        (["release", "acme-prod"], "needs the approval CI recorded"),
        (["promote", "--from", "acme-dev", "--to", "acme-prod"], "needs the approval"),
        (
            [
                "promote",
                "--from",
                "acme-dev",
                "--to",
                "contoso-prod",
                "--approved-by",
                "a",
                "--approval-run",
                "1",
            ],
            "promotes to acme-prod, not contoso-prod",
        ),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(aws, standin, args, message):
    register(aws, "PendingManualApproval")  # v1 exists but is not approved
    before = {p.name: p.read_text() for p in standin.root.glob("Pulumi.*.yaml")}
    result = CliRunner().invoke(app, [*args, "--project-dir", str(standin.root)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "nothing was changed" in " ".join(result.output.split())
    assert {p.name: p.read_text() for p in standin.root.glob("Pulumi.*.yaml")} == before
    assert not [c for c in standin.commands() if c.startswith(("config set", "config rm", "up"))]
    assert not (standin.root / rel.RECORDS).exists()


def test_no_approved_version_is_refused(aws, standin):
    register(aws, "PendingManualApproval")
    result = CliRunner().invoke(app, ["release", "acme-dev", "--project-dir", str(standin.root)])
    assert result.exit_code == 2
    assert "has no approved version" in " ".join(result.output.split())


def test_cli_release_then_promote_to_prod_with_the_recorded_approval(aws, moto_url, standin):
    v1 = register(aws, "Approved", pipeline_run_id="run-7")
    answers(moto_url, {"predictions": [1]}, {"predictions": [0]})
    runner = CliRunner()
    out = runner.invoke(app, ["release", "acme-dev", "--project-dir", str(standin.root)])
    assert out.exit_code == 0, out.output
    assert "released" in out.output
    standin.seed_outputs({"endpointName": "acme-prod-endpoint"})
    out = runner.invoke(
        app,
        [
            "promote",
            "--from",
            "acme-dev",
            "--to",
            "acme-prod",
            "--approved-by",
            "octocat",
            "--approval-run",
            "4242",
            "--project-dir",
            str(standin.root),
        ],
    )
    assert out.exit_code == 0, out.output
    prod = aws.list_model_packages(ModelPackageGroupName=PROD_GROUP)["ModelPackageSummaryList"]
    assert len(prod) == 1 and prod[0]["ModelApprovalStatus"] == "Approved"
    copied = aws.describe_model_package(ModelPackageName=prod[0]["ModelPackageArn"])
    meta = copied["CustomerMetadataProperties"]
    assert meta["mlops.promoted_from"] == v1 and meta["pipeline_run_id"] == "run-7"
    image = copied["InferenceSpecification"]["Containers"][0]["Image"]
    assert image.endswith(
        "@sha256:4a8e0c4b6c1d2f0e9b7a3c5d8e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f"
    )
    assert standin.stack_config("acme-prod")["mlops:model"] == str(prod[0]["ModelPackageVersion"])
    last = rel.read_records(standin.root / rel.RECORDS)[-1]
    assert last["stack"] == "acme-prod" and last["outcome"] == "released"
    assert last["approval"] == {"approver": "octocat", "run_id": "4242"}
    assert last["promoted_from"]["ref"] == v1 and last["promoted_from"]["stack"] == "acme-dev"


def test_dry_run_shows_the_change_and_changes_nothing(aws, standin):
    register(aws, "Approved")
    before = (standin.root / "Pulumi.acme-dev.yaml").read_text()
    result = orchestrate.release("acme-dev", dry_run=True, root=standin.root, planner=plan_diff)
    assert isinstance(result, orchestrate.DryRun)
    assert result.config == {"mlops:model": (None, "1")}
    assert any(name.endswith("-endpoint") for name in result.added), result.added
    assert (standin.root / "Pulumi.acme-dev.yaml").read_text() == before
    assert not [c for c in standin.commands() if c.startswith(("config set", "up"))]


def _serving_package(sm, endpoint: str = "acme-dev-endpoint") -> str:
    config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    variant = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
    model = sm.describe_model(ModelName=variant["ModelName"])
    return model["PrimaryContainer"]["ModelPackageName"]


def test_an_apply_from_main_with_the_old_pin_keeps_the_release(aws, moto_url, standin, monkeypatch):
    """Today's race: release v2, then an unrelated apply from main whose stack file still pins
    v1. The release marker on the model package decides: the endpoint keeps serving v2."""
    register(aws, "Approved")
    v2 = register(aws, "Approved")
    answers(moto_url, {"predictions": [1]})
    in_github_actions(monkeypatch, "c0ffee2")
    record = orchestrate.release("acme-dev", root=standin.root)
    assert (record.version, record.ref, record.commit) == ("2", v2, "c0ffee2")
    meta = aws.describe_model_package(ModelPackageName=v2)["CustomerMetadataProperties"]
    assert meta["mlops.serving.acme-dev"] >= record.started

    restore_stack_file(standin.root, "acme-dev", pin="1")  # main before the pin PR merged
    applied = orchestrate.apply("acme-dev", root=standin.root)
    assert _serving_package(aws).endswith("/acme-dev-models/2")
    assert (applied.outcome, applied.version, applied.pinned) == ("applied", "2", "1")
    assert applied.commit == "c0ffee2" and applied.ref == v2
