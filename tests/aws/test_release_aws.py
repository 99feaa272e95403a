"""The boto3 release helpers against moto (SageMaker control plane and runtime). moto has no
`update_endpoint`, so `pin_previous_config` is checked with botocore's Stubber instead."""

from __future__ import annotations

import json
import os

import boto3
import pytest
import requests
from botocore.stub import Stubber
from moto import mock_aws

from pipelines.release import aws as release

REGION = "eu-west-1"
GROUP = "acme-prod-models"


@pytest.fixture(autouse=True)
def _credentials(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def sm():
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        client.create_model_package_group(ModelPackageGroupName="other-models")
        yield client


def _register(sm, status: str, group: str = GROUP) -> str:
    return sm.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": "123.dkr.ecr.eu-west-1.amazonaws.com/acme:serving-0.1.0",
                    "ModelDataUrl": "s3://b/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]


def _event(arn: str, version: int, status: str, group: str = GROUP) -> dict:
    """A "SageMaker Model Package State Change" event as EventBridge delivers it."""
    return {
        "version": "0",
        "id": "5f4a8d5e-0000-0000-0000-000000000000",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2025-01-01T00:00:00Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": arn,
            "ModelApprovalStatus": status,
            "CreationTime": 1735689600000,
            "ModelPackageStatus": "Completed",
        },
    }


def test_newest_approved_skips_pending_rejected_and_other_groups(sm):
    v1 = _register(sm, "Approved")
    v2 = _register(sm, "Approved")
    _register(sm, "PendingManualApproval")
    _register(sm, "Rejected")
    _register(sm, "Approved", group="other-models")
    newest = release.newest_approved(sm, GROUP)
    assert newest is not None and (newest.version, newest.arn) == (2, v2)
    assert v1 != v2


def test_newest_approved_is_none_without_approvals(sm):
    _register(sm, "PendingManualApproval")
    assert release.newest_approved(sm, GROUP) is None


def test_approval_event_releases_the_version(sm):
    arn = _register(sm, "Approved")
    decision = release.release_from_event(_event(arn, 1, "Approved"), sm, group=GROUP)
    assert decision.release and decision.version is not None
    assert (decision.version.version, decision.version.arn) == (1, arn)


def test_event_as_ci_payload_text_is_accepted(sm):
    arn = _register(sm, "Approved")
    assert release.release_from_event(
        json.dumps(_event(arn, 1, "Approved")), sm, group=GROUP
    ).release


@pytest.mark.parametrize(
    ("status", "group", "reason"),
    [
        ("Rejected", GROUP, "Rejected, not Approved"),
        ("PendingManualApproval", GROUP, "PendingManualApproval, not Approved"),
        ("Approved", "other-models", "not 'acme-prod-models'"),
    ],
)
def test_other_events_are_ignored(sm, status, group, reason):
    arn = _register(sm, status if status != "Approved" else "Approved", group=group)
    decision = release.release_from_event(_event(arn, 1, status, group), sm, group=GROUP)
    assert not decision.release and reason in decision.reason


def test_withdrawn_approval_is_not_released(sm):
    arn = _register(sm, "Approved")
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    decision = release.release_from_event(_event(arn, 1, "Approved"), sm, group=GROUP)
    assert not decision.release and "withdrawn" in decision.reason


def test_stale_event_points_at_the_newer_version(sm):
    old = _register(sm, "Approved")
    _register(sm, "Approved")
    decision = release.release_from_event(_event(old, 1, "Approved"), sm, group=GROUP)
    assert not decision.release and decision.version is not None
    assert decision.version.version == 2


@pytest.mark.parametrize(
    "event",
    [
        {"source": "aws.s3", "detail-type": "Object Created", "detail": {}},
        {
            "source": "aws.sagemaker",
            "detail-type": "SageMaker Model Package State Change",
            "detail": {"ModelPackageGroupName": GROUP},
        },
    ],
)
def test_malformed_events_are_refused(event):
    with pytest.raises(release.ReleaseError):
        release.parse_approval_event(event)


def _endpoint(sm, name: str = "acme-prod-endpoint", config: str = "cfg-1") -> None:
    sm.create_model(
        ModelName="m1",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/serving",
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/model.tar.gz"},
    )
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m1",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.m5.xlarge",
            }
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)


def test_endpoint_in_service_and_rollout_outcome(sm):
    assert release.rollout_outcome(sm, "acme-prod-endpoint", expected_config="cfg-1") == "missing"
    _endpoint(sm)
    assert release.wait_in_service(sm, "acme-prod-endpoint", sleep=lambda s: None) == "cfg-1"
    assert release.rollout_outcome(sm, "acme-prod-endpoint", expected_config="cfg-1") == "deployed"
    # Pulumi asked for cfg-2 but the endpoint is back on cfg-1: an alarm rolled it back.
    assert (
        release.rollout_outcome(sm, "acme-prod-endpoint", expected_config="cfg-2") == "rolled_back"
    )


def test_wait_in_service_times_out_while_updating():
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        stub = Stubber(client)
        for _ in range(3):
            stub.add_response(
                "describe_endpoint",
                {
                    "EndpointName": "e",
                    "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/e",
                    "EndpointConfigName": "cfg-2",
                    "EndpointStatus": "Updating",
                    "CreationTime": "2025-01-01",
                    "LastModifiedTime": "2025-01-01",
                },
            )
        naps = []
        with stub, pytest.raises(release.ReleaseError, match="still Updating"):
            release.wait_in_service(client, "e", timeout_s=60, poll_s=30, sleep=naps.append)
        assert naps == [30, 30]


def test_smoke_test_invokes_the_endpoint(sm):
    _endpoint(sm)
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={
            "account_id": "123456789012",
            "region": REGION,
            "results": [
                {
                    "Body": json.dumps({"predictions": [1]}),
                    "ContentType": "application/json",
                    "InvokedProductionVariant": "AllTraffic",
                    "CustomAttributes": "",
                },
                {
                    "Body": "not json",
                    "ContentType": "text/plain",
                    "InvokedProductionVariant": "AllTraffic",
                    "CustomAttributes": "",
                },
            ],
        },
        timeout=5,
    )
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    payload = {"dataframe_split": {"columns": ["a"], "data": [[1.0]]}}
    ok = release.smoke_test(
        runtime, "acme-prod-endpoint", payload, check=lambda body: body["predictions"] == [1]
    )
    assert ok.ok and ok.body == {"predictions": [1]}
    bad = release.smoke_test(runtime, "acme-prod-endpoint", {"instances": [[2.0]]})
    assert not bad.ok and "not JSON" in bad.detail


def test_pin_previous_config_calls_update_endpoint():
    # moto does not implement UpdateEndpoint: the request shape is checked with Stubber alone.
    client = boto3.client("sagemaker", region_name=REGION)
    stub = Stubber(client)
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/acme-prod-endpoint"},
        {
            "EndpointName": "acme-prod-endpoint",
            "EndpointConfigName": "cfg-1",
            "RetainDeploymentConfig": True,
        },
    )
    with stub:
        release.pin_previous_config(client, "acme-prod-endpoint", "cfg-1")
    stub.assert_no_pending_responses()


def test_no_real_credentials_leak():
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
