"""The boto3 helpers of the SageMaker release platform against moto (SageMaker control plane
and runtime): the newest approved version and the smoke prediction."""

from __future__ import annotations

import json
import os

import boto3
import pytest
import requests
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


def test_no_real_credentials_leak():
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
