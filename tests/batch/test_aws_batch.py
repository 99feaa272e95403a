"""SageMaker batch scoring: the scoring pipeline, its model, schedule and grants in the offline
plan, the transform step as valid CreateTransformJob input, and the controls that guard it."""

from __future__ import annotations

import copy
import json
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from components.aws.batch import BatchScoringArgs, validate_batch_scoring_args
from core import controls as controls_mod
from core.errors import ArgsError
from pipelines.compilers.sagemaker_batch import BatchJob, validate_batch_job

ACCOUNT, REGION = "123456789012", "eu-west-1"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
MODEL = "aws:sagemaker/model:Model"
SCHEDULE = "aws:scheduler/schedule:Schedule"
POLICY = "aws:iam/rolePolicy:RolePolicy"
DEV_BATCH = {"model": "1", "batch": {"enabled": True}}


def _definition(plan) -> dict[str, Any]:
    return json.loads(plan.one(PIPELINE, "acme-prod-batch-pipeline").inputs["pipelineDefinition"])


def _resolve(node: Any, defaults: dict[str, Any]) -> Any:
    """Replace pipeline placeholders by the kind of value the service substitutes."""
    if isinstance(node, dict):
        if set(node) == {"Get"}:
            ref = node["Get"]
            if ref.startswith("Parameters."):
                return str(defaults[ref.split(".", 1)[1]])
            return "execution-1a2b3c"
        if set(node) == {"Std:Join"}:
            join = node["Std:Join"]
            return join["On"].join(str(_resolve(v, defaults)) for v in join["Values"])
        return {k: _resolve(v, defaults) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, defaults) for v in node]
    return node


def test_prod_plan_has_the_batch_resources_and_their_controls_pass(plan_for):
    plan = plan_for("acme-prod")
    names = {r.name for r in plan.records if r.name.startswith("acme-prod-batch")}
    assert names == {
        "acme-prod-batch",
        "acme-prod-batch-model",
        "acme-prod-batch-pipeline",
        "acme-prod-batch-pipeline-grant",
        "acme-prod-batch-trigger-grant",
        "acme-prod-batch-dlq",
        "acme-prod-batch-schedule",
    }
    findings = {f.control.id: f for f in plan.findings}
    for cid in ("AWS-BATCH-01", "AWS-BATCH-02", "AWS-BATCH-03", "AWS-BATCH-04"):
        assert findings[cid].status == "pass", (cid, findings[cid].failures)
        assert any("batch" in r for r in findings[cid].resources), cid
    # the general controls cover the batch model, schedule and queue too
    for cid, resource in (
        ("AWS-SM-01", "acme-prod-batch-model"),
        ("AWS-SM-02", "acme-prod-batch-model"),
        ("AWS-EVT-03", "acme-prod-batch-schedule"),
        ("AWS-EVT-04", "acme-prod-batch-schedule"),
        ("AWS-SQS-01", "acme-prod-batch-dlq"),
        ("AWS-IAM-01", "acme-prod-batch-pipeline-grant"),
    ):
        assert resource in findings[cid].resources and findings[cid].status == "pass", cid
    assert plan.failed_controls == []


def test_batch_model_serves_the_configured_package_isolated_in_the_vpc(plan_for):
    plan = plan_for("acme-prod")
    model = plan.one(MODEL, "acme-prod-batch-model")
    assert model.inputs["primaryContainer"]["modelPackageName"] == (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/acme-prod-models/3"
    )
    assert model.inputs["enableNetworkIsolation"] is True
    subnets = {r.outputs["id"] for r in plan.by_type("aws:ec2/subnet:Subnet")}
    assert set(model.inputs["vpcConfig"]["subnets"]) == subnets and len(subnets) == 2
    assert model.inputs["executionRoleArn"].endswith(":role/acme-prod-serving")
    assert model.inputs["tags"] == {"mlops:purpose": "batch-scoring", "mlops:model-version": "3"}


def test_transform_step_reads_and_writes_the_artifact_store_encrypted(plan_for):
    plan = plan_for("acme-prod")
    definition = _definition(plan)
    bucket = plan.one("aws:s3/bucket:Bucket", "acme-prod-artifacts-data").outputs["bucket"]
    key_arn = plan.one("aws:kms/key:Key").outputs["arn"]
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert defaults == {
        "InputUri": f"s3://{bucket}/batch/input/",
        "OutputUri": f"s3://{bucket}/batch/output",
    }
    (step,) = definition["Steps"]
    assert step["Type"] == "Transform"
    args = step["Arguments"]
    assert args["ModelName"] == plan.one(MODEL, "acme-prod-batch-model").outputs["name"]
    assert args["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Parameters.InputUri"
    }
    output = _resolve(args["TransformOutput"]["S3OutputPath"], defaults)
    assert output == f"s3://{bucket}/batch/output/execution-1a2b3c"  # one folder per run
    assert args["TransformOutput"]["KmsKeyId"] == key_arn
    assert args["TransformResources"] == {
        "InstanceCount": 1,
        "InstanceType": "ml.m5.xlarge",  # batch.instanceType of acme-prod
        "VolumeKmsKeyId": key_arn,
    }
    pipeline = plan.one(PIPELINE, "acme-prod-batch-pipeline")
    assert pipeline.inputs["pipelineName"] == "acme-prod-scoring"
    assert pipeline.inputs["roleArn"].endswith(":role/acme-prod-pipeline")


def test_transform_step_is_valid_create_transform_job_input(plan_for):
    definition = _definition(plan_for("acme-prod"))
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    (step,) = definition["Steps"]
    params = _resolve(step["Arguments"], defaults)
    params["TransformJobName"] = "acme-prod-score-1"
    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .operation_model("CreateTransformJob")
        .input_shape
    )
    report = ParamValidator().validate(params, shape)
    assert not report.has_errors(), report.generate_report()
    # and the check bites: a wrong type is reported
    broken = copy.deepcopy(params)
    broken["TransformResources"]["InstanceCount"] = "one"
    assert ParamValidator().validate(broken, shape).has_errors()


def test_schedule_starts_the_scoring_pipeline_with_the_input_prefix(plan_for):
    plan = plan_for("acme-prod")
    schedule = plan.one(SCHEDULE, "acme-prod-batch-schedule")
    pipeline = plan.one(PIPELINE, "acme-prod-batch-pipeline")
    target = schedule.inputs["target"]
    assert target["arn"] == pipeline.outputs["arn"]
    assert schedule.inputs["scheduleExpression"] == "cron(0 2 ? * * *)"  # batch.cron default
    assert target["roleArn"].endswith(":role/acme-prod-trigger")
    bucket = plan.one("aws:s3/bucket:Bucket", "acme-prod-artifacts-data").outputs["bucket"]
    assert target["sagemakerPipelineParameters"]["pipelineParameters"] == [
        {"name": "InputUri", "value": f"s3://{bucket}/batch/input/"}
    ]
    dlq = plan.one("aws:sqs/queue:Queue", "acme-prod-batch-dlq")
    assert target["deadLetterConfig"]["arn"] == dlq.outputs["arn"]


def test_grants_name_only_the_scoring_pipeline_and_transform_jobs(plan_for):
    plan = plan_for("acme-prod")
    start = json.loads(plan.one(POLICY, "acme-prod-batch-trigger-grant").inputs["policy"])
    pipeline = plan.one(PIPELINE, "acme-prod-batch-pipeline")
    dlq = plan.one("aws:sqs/queue:Queue", "acme-prod-batch-dlq")
    resources = {s["Sid"]: s["Resource"] for s in start["Statement"]}
    assert resources == {
        "StartScoring": pipeline.outputs["arn"],
        "ScoringDeadLetters": dlq.outputs["arn"],
    }
    grant = plan.one(POLICY, "acme-prod-batch-pipeline-grant")
    assert grant.inputs["role"] == "acme-prod-pipeline"
    (statement,) = json.loads(grant.inputs["policy"])["Statement"]
    assert (
        statement["Resource"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/pipelines-*"
    )
    assert all(a.startswith("sagemaker:") and "*" not in a for a in statement["Action"])


def test_batch_off_or_no_model_declares_no_batch_resources(plan_for):
    for overrides in ({"batch": {"enabled": False}}, {"model": None}):
        plan = plan_for("acme-prod", **overrides)
        assert [r.name for r in plan.records if "-batch" in r.name] == [], overrides
        assert len(plan.by_type(PIPELINE)) == 1
        assert {f.control.id: f.status for f in plan.findings}["AWS-BATCH-02"] == "n/a"


def test_dev_batch_is_isolated_but_public_and_only_waives_the_vpc(plan_for):
    plan = plan_for("acme-dev", **DEV_BATCH)
    model = plan.one(MODEL, "acme-dev-batch-model")
    assert model.inputs["enableNetworkIsolation"] is True  # no dev exception for batch
    assert not model.inputs.get("vpcConfig")
    assert plan.failed_controls == []
    statuses = {f.control.id: f.status for f in plan.findings}
    assert statuses["AWS-BATCH-01"] == "pass" and statuses["AWS-BATCH-02"] == "pass"
    assert statuses["AWS-SM-02"] == "waived"


def _records_with(plan, edit) -> list:
    records = copy.deepcopy(plan.records)
    for r in records:
        if r.name == "acme-prod-batch-pipeline" and edit is not None:
            definition = json.loads(r.inputs["pipelineDefinition"])
            edit(definition["Steps"][0]["Arguments"])
            r.inputs["pipelineDefinition"] = json.dumps(definition, sort_keys=True)
        if r.name == "acme-prod-batch-model" and edit is None:
            r.inputs["enableNetworkIsolation"] = False
    return records


@pytest.mark.parametrize(
    ("edit", "control"),
    [
        (lambda a: a["TransformResources"].pop("VolumeKmsKeyId"), "AWS-BATCH-02"),
        (lambda a: a["TransformOutput"].pop("KmsKeyId"), "AWS-BATCH-03"),
        (None, "AWS-BATCH-01"),
    ],
    ids=["volume-key", "output-key", "isolation"],
)
def test_batch_controls_bite(plan_for, edit, control):
    plan = plan_for("acme-prod")
    records = _records_with(plan, edit)
    for environment in ("prod", "dev"):
        findings = controls_mod.evaluate(records, platform="aws", environment=environment)
        status = {f.control.id: f.status for f in findings}[control]
        assert status == "fail", (control, environment)


_GOOD = dict(
    pipeline_name="acme-prod-scoring",
    schedule_name="acme-prod-batch-scoring",
    dlq_name="acme-prod-batch-dlq",
    cron="0 2 * * *",
    region=REGION,
    account_id=ACCOUNT,
    model_package_arn="arn",
    model_version="3",
    bucket_name="b",
    kms_key_arn="k",
    pipeline_role_arn="r",
    serving_role_arn="r",
    trigger_role_arn="r",
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cron": "0 2 * *"}, "set batch.cron"),
        ({"model_version": ""}, "set mlops:model before batch.enabled"),
        (
            {"instance_type": "Standard_DS3_v2"},
            "instance_type='Standard_DS3_v2' is not a SageMaker",
        ),
        (
            {"instance_count": 0},
            "instance_count=0 is not between 1 and 20; set batch.instanceCount",
        ),
        ({"input_prefix": "in"}, "input_prefix='in' is not a key prefix ending in '/'"),
        ({"output_prefix": "batch/input/out/"}, "output_prefix='batch/input/out/' is not apart"),
        ({"subnet_ids": ["subnet-1"]}, "security_group_ids=[] is not given together"),
    ],
)
def test_component_args_are_checked_with_the_fix(change, message):
    with pytest.raises(ArgsError, match=r"BatchScoring: \d+ invalid argument") as err:
        validate_batch_scoring_args(BatchScoringArgs(**{**_GOOD, **change}))
    assert message in str(err.value)
    validate_batch_scoring_args(BatchScoringArgs(**_GOOD))  # raises on any problem


def test_compiler_rejects_bad_jobs_before_building():
    job = BatchJob(
        pipeline_name="p",
        role_arn="admin",
        bucket="b",
        region=REGION,
        model_name="m",
        model_version="3",
        kms_key_id="",
        content_type="text/plain",
    )
    problems = validate_batch_job(job)
    assert any(p.startswith("role_arn='admin' is not an IAM role ARN") for p in problems)
    assert any(p.startswith("kms_key_id='' is not a KMS key") for p in problems)
    assert any(p.startswith("content_type='text/plain' is not one of") for p in problems)
    from pipelines.compilers.sagemaker_batch import compile_sagemaker_batch

    with pytest.raises(ValueError, match="cannot compile the SageMaker scoring pipeline"):
        compile_sagemaker_batch(job)


def test_scoring_definition_passes_the_upstream_pipeline_definition_schema(plan_for):
    from tests.schemas import sagemaker_definition_errors

    definition = _definition(plan_for("acme-prod"))
    assert sagemaker_definition_errors(definition) == []
    assert json.loads(definition["Metadata"]["mlops"])["serving_mode"] == "batch"
