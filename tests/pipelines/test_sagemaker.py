"""SageMaker target: the definition builds offline and every job step's arguments are valid
input for the SageMaker API operation the pipeline service will call."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from pipelines.definition import PIPELINE, PipelineSettings

ROLE = "arn:aws:iam::123456789012:role/acme-dev-pipeline"
KMS = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OPERATION = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "RegisterModel": ("CreateModelPackage", None),
}


def _compile(settings: PipelineSettings, **extra: Any) -> dict[str, Any]:
    from pipelines.compilers.sagemaker import compile_sagemaker

    text = compile_sagemaker(
        settings,
        pipeline_name="acme-dev-train",
        role_arn=ROLE,
        bucket="acme-dev-artifacts",
        model_package_group="acme-dev-models",
        region="eu-west-1",
        **extra,
    )
    return json.loads(text)


@pytest.fixture(scope="module")
def definition(offline: None) -> dict[str, Any]:
    return _compile(
        PipelineSettings(client="acme", spot=True),
        kms_key_id=KMS,
        subnets=["subnet-0a1b2c3d"],
        security_group_ids=["sg-0a1b2c3d"],
    )


def _all_steps(definition: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for step in definition["Steps"]:
        out.append(step)
        if step["Type"] == "Condition":
            out += step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]
    return out


def _resolve(node: Any, defaults: dict[str, Any]) -> Any:
    """Replace pipeline placeholders by the kind of value the service substitutes."""
    if isinstance(node, dict):
        if set(node) == {"Get"}:
            ref = node["Get"]
            if ref.startswith("Parameters."):
                return str(defaults[ref.split(".", 1)[1]])
            if ref.startswith("Execution."):
                return "execution-1a2b3c"
            return "s3://acme-dev-artifacts/resolved/output"
        if set(node) == {"Std:Join"}:
            join = node["Std:Join"]
            return join["On"].join(str(_resolve(v, defaults)) for v in join["Values"])
        if set(node) == {"Std:JsonGet"}:
            return "1"
        return {k: _resolve(v, defaults) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, defaults) for v in node]
    return node


def test_every_job_step_is_valid_api_input(definition: dict[str, Any]) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    checked = []
    for step in _all_steps(definition):
        if step["Type"] not in OPERATION:
            continue
        operation, name_field = OPERATION[step["Type"]]
        params = _resolve(step["Arguments"], defaults)
        if name_field:
            params[name_field] = f"acme-{step['Name'].lower()}-1"
        shape = model.operation_model(operation).input_shape
        report = ParamValidator().validate(params, shape)
        assert not report.has_errors(), f"{step['Name']} ({operation}):\n{report.generate_report()}"
        checked.append(operation)
    assert checked.count("CreateProcessingJob") == 5  # 4 of the definition + ONNX export
    assert checked.count("CreateTrainingJob") == 1
    assert checked.count("CreateModelPackage") == 1


def test_steps_come_from_the_one_definition(definition: dict[str, Any]) -> None:
    jobs = [s for s in definition["Steps"] if s["Type"] in ("Processing", "Training")]
    assert [s["Name"] for s in jobs] == [s.camel for s in PIPELINE if s.kind != "register"]
    for step, spec in zip(jobs, [s for s in PIPELINE if s.kind != "register"], strict=True):
        args = step["Arguments"]
        app = args.get("AppSpecification") or args["AlgorithmSpecification"]
        assert app["ContainerEntrypoint"] == ["python", "-m", spec.module]
    prepare = next(s for s in definition["Steps"] if s["Name"] == "Prepare")
    report = next(i for i in prepare["Arguments"]["ProcessingInputs"] if i["InputName"] == "report")
    assert report["S3Input"]["S3Uri"] == {
        "Get": "Steps.ValidateData.ProcessingOutputConfig.Outputs['report'].S3Output.S3Uri"
    }


def test_condition_step_gates_register_into_the_model_package_group(
    definition: dict[str, Any],
) -> None:
    condition = next(s for s in definition["Steps"] if s["Type"] == "Condition")
    conditions = condition["Arguments"]["Conditions"]
    assert conditions[0]["Type"] == "Equals"
    assert conditions[0]["LeftValue"]["Std:JsonGet"]["Path"] == "passed_int"
    assert conditions[0]["RightValue"] == 1
    assert conditions[1]["Type"] == "GreaterThanOrEqualTo"
    assert conditions[1]["LeftValue"]["Std:JsonGet"]["Path"] == "metrics.roc_auc"
    assert conditions[1]["RightValue"] == {"Get": "Parameters.GateMinimum"}
    export, register = condition["Arguments"]["IfSteps"]  # export.onnx is on by default
    assert export["Name"] == "ExportOnnx"
    assert register["Type"] == "RegisterModel"
    args = register["Arguments"]
    assert args["ModelPackageGroupName"] == "acme-dev-models"
    assert args["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    container = args["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    meta = args["CustomerMetadataProperties"]
    assert meta["pipeline_run_id"] == {"Get": "Execution.PipelineExecutionId"}
    assert meta["model_format"] == "mlflow" and meta["code_version"]
    assert "ModelQuality" in args["ModelMetrics"]
    (fail,) = condition["Arguments"]["ElseSteps"]
    assert fail["Type"] == "Fail"


def test_tier_sets_the_default_approval_status(definition: dict[str, Any]) -> None:
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert defaults["ModelApprovalStatus"] == "Approved"  # dev
    prod = _compile(PipelineSettings(client="acme", environment="prod"))
    prod_defaults = {p["Name"]: p.get("DefaultValue") for p in prod["Parameters"]}
    assert prod_defaults["ModelApprovalStatus"] == "PendingManualApproval"
    assert prod_defaults["GateMinimum"] == 0.9


def test_security_settings_reach_every_job(definition: dict[str, Any]) -> None:
    train = next(s for s in definition["Steps"] if s["Type"] == "Training")["Arguments"]
    assert train["EnableManagedSpotTraining"] is True
    assert (
        train["StoppingCondition"]["MaxWaitTimeInSeconds"]
        >= (train["StoppingCondition"]["MaxRuntimeInSeconds"])
    )
    assert train["OutputDataConfig"]["KmsKeyId"] == KMS
    assert train["EnableNetworkIsolation"] is True
    assert train["VpcConfig"]["Subnets"] == ["subnet-0a1b2c3d"]
    for step in definition["Steps"]:
        if step["Type"] == "Processing":
            args = step["Arguments"]
            assert args["ProcessingOutputConfig"]["KmsKeyId"] == KMS
            assert args["NetworkConfig"]["EnableNetworkIsolation"] is True
            assert args["NetworkConfig"]["VpcConfig"]["SecurityGroupIds"] == ["sg-0a1b2c3d"]


def test_bad_arguments_are_rejected_with_the_fix() -> None:
    from pipelines.compilers.sagemaker import compile_sagemaker

    with pytest.raises(ValueError, match="role_arn='admin' is not an IAM role ARN"):
        compile_sagemaker(
            PipelineSettings(),
            pipeline_name="p",
            role_arn="admin",
            bucket="b",
            model_package_group="g",
            region="eu-west-1",
        )


def test_definition_passes_the_upstream_pipeline_definition_schema(
    definition: dict[str, Any],
) -> None:
    from tests.schemas import sagemaker_definition_errors

    assert sagemaker_definition_errors(definition) == []
    assert json.loads(definition["Metadata"]["mlops"]) == {"settings_environment": "dev"}
    # and the check bites: an object under Metadata (what the compiler wrote before) fails
    broken = {**definition, "Metadata": {"mlops": {"settings_environment": "dev"}}}
    assert sagemaker_definition_errors(broken) == [
        "Metadata/mlops: {'settings_environment': 'dev'} is not of type 'string'"
    ]
