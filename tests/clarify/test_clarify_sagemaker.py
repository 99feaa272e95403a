"""The Clarify explainability steps in the compiled SageMaker definition: absent unless
`clarify` is on; when on, wired from the training artifacts and the prepared splits, valid
input for the SageMaker API operations the pipeline service calls, deterministic, offline, and
guarded by the AWS-CLARIFY controls."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from core.controls import CHECKS
from core.controls.aws import CONTROLS
from pipelines.definition import PipelineSettings
from pipelines.steps import clarify_config as cc

ROLE = "arn:aws:iam::123456789012:role/acme-dev-pipeline"
KMS = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
NETWORK = {"subnets": ["subnet-0a1b2c3d"], "security_group_ids": ["sg-0a1b2c3d"]}
CLARIFY_STEPS = ("ClarifyModel", "ClarifyConfig", "ClarifyExplainability")
OPERATION = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "RegisterModel": ("CreateModelPackage", None),
    "Model": ("CreateModel", "ModelName"),
}


def _compile_text(clarify: bool, **extra: Any) -> str:
    from pipelines.compilers.sagemaker import compile_sagemaker

    return compile_sagemaker(
        PipelineSettings(client="acme", clarify=clarify),
        pipeline_name="acme-dev-training",
        role_arn=ROLE,
        bucket="acme-dev-artifacts",
        model_package_group="acme-dev-models",
        region="eu-west-1",
        **extra,
    )


@pytest.fixture(scope="module")
def texts(offline: None) -> dict[str, str]:
    return {
        "off": _compile_text(False, kms_key_id=KMS, **NETWORK),
        "on": _compile_text(True, kms_key_id=KMS, **NETWORK),
        "on-again": _compile_text(True, kms_key_id=KMS, **NETWORK),
        "on-no-kms": _compile_text(True, **NETWORK),
        "on-public": _compile_text(True, kms_key_id=KMS),
    }


@pytest.fixture(scope="module")
def on(texts: dict[str, str]) -> dict[str, Any]:
    return json.loads(texts["on"])


def _step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in definition["Steps"] if s["Name"] == name)


def _register(definition: dict[str, Any]) -> dict[str, Any]:
    condition = next(s for s in definition["Steps"] if s["Type"] == "Condition")
    return condition["Arguments"]["IfSteps"][-1]  # after the ONNX export step


def _resolve(node: Any, defaults: dict[str, Any]) -> Any:
    """Replace pipeline placeholders by the kind of value the service substitutes
    (as tests/pipelines/test_sagemaker.py does; ModelName resolves to a model name)."""
    if isinstance(node, dict):
        if set(node) == {"Get"}:
            ref = node["Get"]
            if ref.startswith("Parameters."):
                return str(defaults[ref.split(".", 1)[1]])
            if ref.startswith("Execution."):
                return "execution-1a2b3c"
            if ref.endswith(".ModelName"):
                return "pipelines-1a2b3c-ClarifyModel-x9y8z7"
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


def test_off_adds_nothing_and_on_adds_only_clarify(texts: dict[str, str], on: dict) -> None:
    """Clarify off: no trace of it. Clarify on: taking out its three steps and the two
    explainability entries of the register step gives back the off definition exactly."""
    assert "clarify" not in texts["off"].lower()
    off = json.loads(texts["off"])
    register_off = _register(off)["Arguments"]
    assert not register_off["ModelMetrics"].get("Explainability")  # the SDK writes {}
    assert "DriftCheckBaselines" not in register_off
    assert [s["Name"] for s in on["Steps"] if s["Name"].startswith("Clarify")] == list(
        CLARIFY_STEPS
    )
    stripped = copy.deepcopy(on)
    stripped["Steps"] = [s for s in stripped["Steps"] if s["Name"] not in CLARIFY_STEPS]
    register_on = _register(stripped)["Arguments"]
    assert register_on["ModelMetrics"]["Explainability"]
    register_on["ModelMetrics"]["Explainability"] = {}
    del register_on["DriftCheckBaselines"]
    assert stripped == off


def test_repeated_compiles_are_identical(texts: dict[str, str]) -> None:
    assert texts["on"] == texts["on-again"]
    assert not re.search(r"\d{4}-\d\d-\d\d-\d\d-\d\d", texts["on"])  # no timestamped names


def test_every_job_step_is_valid_api_input(on: dict[str, Any]) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    defaults = {p["Name"]: p["DefaultValue"] for p in on["Parameters"]}
    steps = list(on["Steps"]) + _register_and_fail(on)
    checked = []
    for step in steps:
        if step["Type"] not in OPERATION:
            continue
        operation, name_field = OPERATION[step["Type"]]
        params = _resolve(step["Arguments"], defaults)
        if name_field:
            params[name_field] = f"acme-{step['Name'].lower()}-1"
        report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
        assert not report.has_errors(), f"{step['Name']} ({operation}):\n{report.generate_report()}"
        checked.append(operation)
    assert checked.count("CreateProcessingJob") == 7  # 4 + ONNX export + config + Clarify
    assert checked.count("CreateModel") == 1
    assert checked.count("CreateModelPackage") == 1


def _register_and_fail(definition: dict[str, Any]) -> list[dict[str, Any]]:
    condition = next(s for s in definition["Steps"] if s["Type"] == "Condition")
    return condition["Arguments"]["IfSteps"] + condition["Arguments"]["ElseSteps"]


def test_clarify_job_runs_the_clarify_image_on_the_config_and_dataset(on: dict) -> None:
    from sagemaker.core import image_uris

    args = _step(on, "ClarifyExplainability")["Arguments"]
    image = args["AppSpecification"]["ImageUri"]
    assert image == image_uris.retrieve("clarify", "eu-west-1")
    assert re.fullmatch(
        r"\d{12}\.dkr\.ecr\.eu-west-1\.amazonaws\.com/sagemaker-clarify-processing:.+", image
    )
    assert "ContainerEntrypoint" not in args["AppSpecification"]  # the image's own entry point
    inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
    assert set(inputs) == {"analysis_config", "dataset"}  # the names Clarify looks for
    config_out = "Steps.ClarifyConfig.ProcessingOutputConfig.Outputs['{}'].S3Output.S3Uri"
    assert inputs["analysis_config"]["S3Uri"] == {"Get": config_out.format("config")}
    assert inputs["analysis_config"]["LocalPath"] == "/opt/ml/processing/input/config"
    assert inputs["dataset"]["S3Uri"] == {"Get": config_out.format("dataset")}
    assert inputs["dataset"]["LocalPath"] == "/opt/ml/processing/input/data"
    (output,) = args["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == "analysis_result"
    assert output["S3Output"]["LocalPath"] == "/opt/ml/processing/output"
    values = output["S3Output"]["S3Uri"]["Std:Join"]["Values"]
    assert values[0] == "s3://acme-dev-artifacts/pipelines/acme-dev-training"  # artifact bucket
    # isolation off (Clarify drives a shadow endpoint through the API), but in the VPC, with KMS
    assert args["NetworkConfig"]["EnableNetworkIsolation"] is False
    assert args["NetworkConfig"]["VpcConfig"] == {
        "SecurityGroupIds": ["sg-0a1b2c3d"],
        "Subnets": ["subnet-0a1b2c3d"],
    }
    assert args["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
    assert args["ProcessingOutputConfig"]["KmsKeyId"] == KMS
    assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KMS


def test_config_step_reads_the_prepared_splits_and_the_model_name(on: dict) -> None:
    args = _step(on, "ClarifyConfig")["Arguments"]
    app = args["AppSpecification"]
    assert app["ContainerEntrypoint"] == ["python", "-m", "pipelines.steps.clarify_config"]
    assert app["ImageUri"] == PipelineSettings().image_uri  # the kit image, no SDK inside
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in args["ProcessingInputs"]}
    prepare_out = "Steps.Prepare.ProcessingOutputConfig.Outputs['{}'].S3Output.S3Uri"
    assert inputs == {
        "train": {"Get": prepare_out.format("train")},
        "test": {"Get": prepare_out.format("test")},
    }
    assert args["NetworkConfig"]["EnableNetworkIsolation"] is True
    defaults = {p["Name"]: p["DefaultValue"] for p in on["Parameters"]}
    argv = _resolve(app["ContainerArguments"], defaults)
    parsed = cc.build_parser().parse_args(argv)  # the compiler and the step agree on flags
    assert parsed.model_name == "pipelines-1a2b3c-ClarifyModel-x9y8z7"
    assert str(parsed.test) == "/opt/ml/processing/input/test"
    assert str(parsed.config_dir) == "/opt/ml/processing/output/config"
    assert parsed.endpoint_name_prefix == "acme-dev-clarify"
    raw = app["ContainerArguments"]
    assert raw[raw.index("--model-name") + 1] == {"Get": "Steps.ClarifyModel.ModelName"}


def test_model_step_serves_the_training_artifacts_isolated_after_evaluate(on: dict) -> None:
    step = _step(on, "ClarifyModel")
    assert step["Type"] == "Model"
    assert step["DependsOn"] == ["Evaluate"]
    args = step["Arguments"]
    assert args["PrimaryContainer"]["ModelDataUrl"] == {
        "Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"
    }
    register = _register(on)["Arguments"]
    assert (
        args["PrimaryContainer"]["Image"]
        == register["InferenceSpecification"]["Containers"][0]["Image"]
    )  # the image the version is registered (and served) with
    assert args["EnableNetworkIsolation"] is True
    assert args["VpcConfig"]["Subnets"] == ["subnet-0a1b2c3d"]
    assert args["ExecutionRoleArn"] == ROLE


def test_register_attaches_the_explainability_report(on: dict) -> None:
    args = _register(on)["Arguments"]
    analysis = {
        "Std:Join": {
            "On": "/",
            "Values": [
                {
                    "Get": "Steps.ClarifyExplainability.ProcessingOutputConfig"
                    ".Outputs['analysis_result'].S3Output.S3Uri"
                },
                "analysis.json",
            ],
        }
    }
    report = args["ModelMetrics"]["Explainability"]["Report"]
    assert report == {"ContentType": "application/json", "S3Uri": analysis}
    baseline = args["DriftCheckBaselines"]["Explainability"]
    assert baseline["Constraints"]["S3Uri"] == analysis
    config_file = baseline["ConfigFile"]["S3Uri"]["Std:Join"]["Values"]
    assert config_file == [
        {"Get": "Steps.ClarifyConfig.ProcessingOutputConfig.Outputs['config'].S3Output.S3Uri"},
        cc.CONFIG_FILE,
    ]
    assert "ModelQuality" in args["ModelMetrics"]  # evaluation.json stays


CONTROL = {c.id: c for c in CONTROLS if c.id.startswith("AWS-CLARIFY-")}


@pytest.mark.parametrize(
    ("text", "control_id", "passes"),
    [
        ("on", "AWS-CLARIFY-01", True),
        ("on", "AWS-CLARIFY-02", True),
        ("off", "AWS-CLARIFY-01", True),  # no Clarify: nothing to guard
        ("off", "AWS-CLARIFY-02", True),
        ("on-no-kms", "AWS-CLARIFY-01", False),
        ("on-no-kms", "AWS-CLARIFY-02", True),
        ("on-public", "AWS-CLARIFY-01", True),
        ("on-public", "AWS-CLARIFY-02", False),
    ],
)
def test_clarify_controls(texts: dict[str, str], text: str, control_id: str, passes: bool) -> None:
    control = CONTROL[control_id]
    assert CHECKS[control.check](texts[text], control.expected, []) is passes


def test_kms_control_reads_the_clarify_job_not_its_neighbours(texts: dict[str, str]) -> None:
    """Only the Clarify job losing its key fails AWS-CLARIFY-01, though every other job in
    the definition keeps its KmsKeyId."""
    definition = json.loads(texts["on"])
    del _step(definition, "ClarifyExplainability")["Arguments"]["ProcessingOutputConfig"][
        "KmsKeyId"
    ]
    text = json.dumps(definition, sort_keys=True)
    assert text.count(f'"KmsKeyId": "{KMS}"') >= 5
    control = CONTROL["AWS-CLARIFY-01"]
    assert CHECKS[control.check](text, control.expected, []) is False
