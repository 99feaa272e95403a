"""The EventBridge patterns the blueprint records, evaluated against real-shaped events by
moto's EventPattern (the matcher behind moto's rule delivery; moto 5.2 does not implement the
TestEventPattern API itself)."""

from __future__ import annotations

import pytest
from moto.events.models import EventPattern

REGION = "eu-west-1"


def _matches(pattern: str, event: dict) -> bool:
    return EventPattern.load(pattern).matches_event(event)


def _package_event(group: str, status: str) -> dict:
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{group}/4"
    return {
        "version": "0",
        "id": "2b2c9f0a-0000-0000-0000-000000000000",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2025-01-01T00:00:00Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": 4,
            "ModelPackageArn": arn,
            "ModelApprovalStatus": status,
            "ModelPackageStatus": "Completed",
            "CreationTime": 1735689600000,
        },
    }


@pytest.mark.parametrize(
    ("group", "status", "expected"),
    [
        ("acme-prod-models", "Approved", True),
        ("acme-prod-models", "Rejected", False),
        ("acme-prod-models", "PendingManualApproval", False),
        ("acme-dev-models", "Approved", False),
    ],
)
def test_release_rule_matches_only_approvals_of_its_group(plan_for, group, status, expected):
    rule = plan_for("acme-prod").one("aws:cloudwatch/eventRule:EventRule", "acme-prod-release-rule")
    assert _matches(rule.inputs["eventPattern"], _package_event(group, status)) is expected


def _object_created(bucket: str, key: str) -> dict:
    return {
        "version": "0",
        "id": "17793124-0000-0000-0000-000000000000",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2025-01-01T00:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("raw/2025-01-01/batch.csv", True),
        ("pipelines/run/model.tar.gz", False),
        ("capture/AllTraffic/x.jsonl", False),
    ],
)
def test_data_change_rule_matches_only_new_raw_data(plan_for, key, expected):
    plan = plan_for("acme-prod")
    rule = plan.one("aws:cloudwatch/eventRule:EventRule", "acme-prod-continuous-training-new-data")
    bucket = plan.one("aws:s3/bucket:Bucket", "acme-prod-artifacts-data").inputs["bucket"]
    assert _matches(rule.inputs["eventPattern"], _object_created(bucket, key)) is expected
    assert not _matches(rule.inputs["eventPattern"], _object_created("another-bucket", "raw/x.csv"))


@pytest.mark.parametrize(
    ("exit_message", "expected"),
    [
        ("CompletedWithViolations: Job completed successfully with 3 violations.", True),
        ("Completed: Job completed successfully with no violations.", False),
    ],
)
def test_drift_rule_matches_jobs_with_violations(plan_for, exit_message, expected):
    plan = plan_for("acme-prod")
    rule = plan.one("aws:cloudwatch/eventRule:EventRule", "acme-prod-drift-violations")
    schedule_arn = plan.one("aws:sagemaker/monitoringSchedule:MonitoringSchedule").outputs["arn"]
    event = {
        "version": "0",
        "id": "7e0b6c1e-0000-0000-0000-000000000000",
        "detail-type": "SageMaker Processing Job State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2025-01-01T01:05:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "ProcessingJobName": "model-monitoring-202501010100-abc",
            "ProcessingJobStatus": "Completed",
            "ExitMessage": exit_message,
            "MonitoringScheduleArn": schedule_arn,
        },
    }
    assert _matches(rule.inputs["eventPattern"], event) is expected


@pytest.mark.parametrize(
    ("step", "status", "expected"),
    [
        ("ValidateData", "Failed", True),
        ("ValidateData", "Succeeded", False),
        ("Train", "Failed", False),
    ],
)
def test_data_drift_rule_matches_failed_validation(plan_for, step, status, expected):
    plan = plan_for("acme-prod")
    rule = plan.one("aws:cloudwatch/eventRule:EventRule", "acme-prod-data-drift-rule")
    pipeline_arn = plan.one(
        "aws:sagemaker/pipeline:Pipeline", "acme-prod-pipeline-pipeline"
    ).outputs["arn"]
    event = {
        "version": "0",
        "id": "315c1398-0000-0000-0000-000000000000",
        "detail-type": "SageMaker Model Building Pipeline Execution Step Status Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2025-01-01T03:10:00Z",
        "region": REGION,
        "resources": [pipeline_arn, f"{pipeline_arn}/execution/abc123"],
        "detail": {
            "stepName": step,
            "stepType": "Processing",
            "previousStepStatus": "Executing",
            "currentStepStatus": status,
            "pipelineArn": pipeline_arn,
            "pipelineExecutionArn": f"{pipeline_arn}/execution/abc123",
            "failureReason": "ClientError: AlgorithmError: exit code 1",
        },
    }
    assert _matches(rule.inputs["eventPattern"], event) is expected
