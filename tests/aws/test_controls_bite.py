"""Each AWS control fails when the property it guards is broken in an otherwise passing prod
plan: proof that the rows check what their titles say."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from core.controls import Record
from tests.conftest import control_status


def _set(path: str, value) -> Callable[[Record], None]:
    def mutate(r: Record) -> None:
        node = r.inputs
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = value

    return mutate


def _opt(name: str, value) -> Callable[[Record], None]:
    def mutate(r: Record) -> None:
        r.options[name] = value

    return mutate


def _policy_add(statement: dict) -> Callable[[Record], None]:
    def mutate(r: Record) -> None:
        doc = json.loads(r.inputs["policy"])
        doc["Statement"].append(statement)
        r.inputs["policy"] = json.dumps(doc)

    return mutate


def _rename_bucket(r: Record) -> None:
    r.inputs["bucket"] = "someone-elses-bucket"


CASES = [
    ("AWS-S3-01", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "bucket", "x"),
    (
        "AWS-S3-02",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "blockPublicAcls",
        False,
    ),
    (
        "AWS-S3-05",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "restrictPublicBuckets",
        False,
    ),
    (
        "AWS-S3-07",
        "aws:s3/bucketPolicy:BucketPolicy",
        "policy",
        json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "x"},
                        "Action": "s3:GetObject",
                        "Resource": "*",
                    }
                ]
            }
        ),
    ),
    (
        "AWS-S3-09",
        "aws:s3/bucketVersioning:BucketVersioning",
        "versioningConfiguration",
        {"status": "Suspended"},
    ),
    (
        "AWS-S3-10",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "bucket",
        "x",
    ),
    (
        "AWS-S3-11",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "rules",
        [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
    ),
    ("AWS-S3-13", "aws:s3/bucketLogging:BucketLogging", "bucket", "x"),
    ("AWS-S3-14", "aws:s3/bucketLogging:BucketLogging", "targetBucket", "elsewhere"),
    ("AWS-KMS-01", "aws:kms/key:Key", "enableKeyRotation", False),
    ("AWS-KMS-03", "aws:kms/key:Key", "deletionWindowInDays", 7),
    (
        "AWS-ECR-01",
        "aws:ecr/repository:Repository",
        "imageScanningConfiguration",
        {"scanOnPush": False},
    ),
    ("AWS-ECR-02", "aws:ecr/repository:Repository", "imageTagMutability", "MUTABLE"),
    (
        "AWS-ECR-03",
        "aws:ecr/repository:Repository",
        "encryptionConfigurations",
        [{"encryptionType": "AES256"}],
    ),
    (
        "AWS-IAM-04",
        "aws:iam/role:Role",
        "managedPolicyArns",
        ["arn:aws:iam::aws:policy/AdministratorAccess"],
    ),
    ("AWS-SM-01", "aws:sagemaker/model:Model", "enableNetworkIsolation", False),
    ("AWS-SM-02", "aws:sagemaker/model:Model", "vpcConfig", None),
    ("AWS-SM-03", "aws:sagemaker/endpointConfiguration:EndpointConfiguration", "kmsKeyArn", ""),
    (
        "AWS-SM-04",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "dataCaptureConfig",
        {"enableCapture": True},
    ),
    (
        "AWS-SM-05",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "productionVariants",
        [{"initialInstanceCount": 1}],
    ),
    (
        "AWS-SM-06",
        "aws:sagemaker/endpoint:Endpoint",
        "deploymentConfig",
        {
            "blueGreenUpdatePolicy": {"trafficRoutingConfiguration": {"type": "ALL_AT_ONCE"}},
            "autoRollbackConfiguration": {
                "alarms": [{"alarmName": "acme-prod-endpoint-5xx-errors"}]
            },
        },
    ),
    (
        "AWS-SM-07",
        "aws:sagemaker/endpoint:Endpoint",
        "deploymentConfig",
        {
            "blueGreenUpdatePolicy": {"trafficRoutingConfiguration": {"type": "CANARY"}},
            "autoRollbackConfiguration": {"alarms": [{"alarmName": "an-alarm-nobody-created"}]},
        },
    ),
    (
        "AWS-SM-08",
        "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition",
        "networkConfig",
        {"enableInterContainerTrafficEncryption": True},
    ),
    (
        "AWS-SM-09",
        "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition",
        "networkConfig",
        {"enableNetworkIsolation": True},
    ),
    (
        "AWS-NET-01",
        "aws:ec2/securityGroup:SecurityGroup",
        "ingress",
        [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}],
    ),
    ("AWS-NET-02", "aws:ec2/subnet:Subnet", "mapPublicIpOnLaunch", True),
    ("AWS-EVT-01", "aws:cloudwatch/eventTarget:EventTarget", "deadLetterConfig", None),
    (
        "AWS-EVT-02",
        "aws:cloudwatch/eventTarget:EventTarget",
        "retryPolicy",
        {"maximumRetryAttempts": 0},
    ),
    ("AWS-SQS-01", "aws:sqs/queue:Queue", "kmsMasterKeyId", None),
    ("AWS-SNS-01", "aws:sns/topic:Topic", "kmsMasterKeyId", None),
]


def _status(records: list[Record], control_id: str) -> str:
    return control_status(records, "aws", control_id)


@pytest.fixture
def prod_records(plan_for) -> list[Record]:
    return copy.deepcopy(plan_for("acme-prod").records)


@pytest.mark.parametrize(("control_id", "type_", "path", "value"), CASES, ids=[c[0] for c in CASES])
def test_control_fails_when_broken(prod_records, control_id, type_, path, value):
    assert _status(prod_records, control_id) == "pass"
    target = next(r for r in prod_records if r.type == type_)
    _set(path, value)(target)
    assert _status(prod_records, control_id) == "fail", f"{control_id} missed {target.name}"


@pytest.mark.parametrize(
    ("control_id", "type_", "mutate"),
    [
        ("AWS-S3-18", "aws:s3/bucket:Bucket", _opt("protect", False)),
        ("AWS-S3-19", "aws:s3/bucket:Bucket", _opt("retainOnDelete", False)),
        ("AWS-KMS-04", "aws:kms/key:Key", _opt("protect", False)),
        ("AWS-ECR-05", "aws:ecr/repository:Repository", _opt("protect", False)),
        ("AWS-SM-12", "aws:sagemaker/modelPackageGroup:ModelPackageGroup", _opt("protect", False)),
        ("AWS-S3-16", "aws:s3/bucket:Bucket", _rename_bucket),
        (
            "AWS-IAM-01",
            "aws:iam/rolePolicy:RolePolicy",
            _policy_add({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
        ),
        (
            "AWS-KMS-02",
            "aws:kms/key:Key",
            _policy_add(
                {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}
            ),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_option_and_policy_controls_fail_when_broken(prod_records, control_id, type_, mutate):
    assert _status(prod_records, control_id) == "pass"
    mutate(next(r for r in prod_records if r.type == type_))
    assert _status(prod_records, control_id) == "fail"


def test_dev_exception_waives_only_in_dev(prod_records):
    key = next(r for r in prod_records if r.type == "aws:kms/key:Key")
    key.options["protect"] = False
    by_env = {
        env: control_status(prod_records, "aws", "AWS-KMS-04", environment=env)
        for env in ("dev", "prod")
    }
    assert by_env == {"dev": "waived", "prod": "fail"}
    key.inputs["enableKeyRotation"] = False  # no dev exception: fails in dev too
    assert control_status(prod_records, "aws", "AWS-KMS-01", environment="dev") == "fail"
