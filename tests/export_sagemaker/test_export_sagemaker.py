"""The ONNX export step in the compiled SageMaker definition: absent when export.onnx is off;
when on, inside the quality gate's condition before RegisterModel, valid CreateProcessingJob
input, and the model package's metadata read from its export.json property file."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from pipelines.definition import PipelineSettings
from pipelines.steps import export_onnx as eo
from tests.pipelines.test_sagemaker import _resolve

ROLE = "arn:aws:iam::123456789012:role/acme-dev-pipeline"
KMS = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
METADATA = ("onnx_exportable", "onnx_reason", "onnx_max_abs_diff", "onnx_uri")


def _compile_text(export_onnx: bool) -> str:
    from pipelines.compilers.sagemaker import compile_sagemaker

    return compile_sagemaker(
        PipelineSettings(client="acme", export_onnx=export_onnx, onnx_tolerance=1e-3),
        pipeline_name="acme-dev-train",
        role_arn=ROLE,
        bucket="acme-dev-artifacts",
        model_package_group="acme-dev-models",
        region="eu-west-1",
        kms_key_id=KMS,
        subnets=["subnet-0a1b2c3d"],
        security_group_ids=["sg-0a1b2c3d"],
    )


@pytest.fixture(scope="module")
def on(offline: None) -> str:
    return _compile_text(True)


@pytest.fixture(scope="module")
def off(offline: None) -> dict[str, Any]:
    return json.loads(_compile_text(False))


def _condition(definition: dict[str, Any]) -> dict[str, Any]:
    (condition,) = [s for s in definition["Steps"] if s["Type"] == "Condition"]
    return condition


def _names(definition: dict[str, Any]) -> list[str]:
    condition = _condition(definition)["Arguments"]
    steps = definition["Steps"] + condition["IfSteps"] + condition["ElseSteps"]
    return [s["Name"] for s in steps]


def test_export_off_adds_no_step_and_no_metadata(off: dict[str, Any]) -> None:
    assert "ExportOnnx" not in _names(off)
    (register,) = [s for s in _condition(off)["Arguments"]["IfSteps"]]
    assert register["Type"] == "RegisterModel"
    assert not set(METADATA) & set(register["Arguments"]["CustomerMetadataProperties"])


def test_export_step_runs_after_the_condition_before_register(on: str) -> None:
    definition = json.loads(on)
    assert "ExportOnnx" not in [s["Name"] for s in definition["Steps"]]
    if_steps = _condition(definition)["Arguments"]["IfSteps"]
    assert [(s["Name"], s["Type"]) for s in if_steps] == [
        ("ExportOnnx", "Processing"),
        ("Register", "RegisterModel"),
    ]
    assert _condition(definition)["Arguments"]["ElseSteps"][0]["Name"] == "GateFailed"


def test_export_step_arguments_and_wiring(on: str) -> None:
    definition = json.loads(on)
    export = _condition(definition)["Arguments"]["IfSteps"][0]
    args = export["Arguments"]
    app = args["AppSpecification"]
    assert app["ContainerEntrypoint"] == ["python", "-m", "pipelines.steps.export_onnx"]
    assert app["ImageUri"] == PipelineSettings(client="acme").image_uri
    argv = app["ContainerArguments"]
    flags = {argv[i]: argv[i + 1] for i in range(0, len(argv), 2)}
    assert set(flags) == {"--model", "--test", "--export-dir", "--tolerance", "--export-uri"}
    assert flags["--tolerance"] == {
        "Std:Join": {"On": "", "Values": [{"Get": "Parameters.OnnxTolerance"}]}
    }
    inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
    assert inputs["model"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert inputs["model"]["LocalPath"] == flags["--model"]
    assert inputs["test"]["S3Uri"] == {
        "Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"
    }
    assert inputs["test"]["LocalPath"] == flags["--test"]
    (output,) = args["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == "export"
    assert output["S3Output"]["LocalPath"] == flags["--export-dir"]
    assert output["S3Output"]["S3Uri"] == flags["--export-uri"]
    assert args["ProcessingOutputConfig"]["KmsKeyId"] == KMS
    assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KMS
    assert args["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert export["PropertyFiles"] == [
        {"FilePath": eo.REPORT_FILE, "OutputName": "export", "PropertyFileName": "OnnxExport"}
    ]
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert defaults["OnnxTolerance"] == pytest.approx(1e-3)


def test_export_step_is_valid_create_processing_job_input(on: str) -> None:
    definition = json.loads(on)
    export = _condition(definition)["Arguments"]["IfSteps"][0]
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    params = _resolve(export["Arguments"], defaults)
    params["ProcessingJobName"] = "acme-exportonnx-1"
    shape = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(
        params, shape.operation_model("CreateProcessingJob").input_shape
    )
    assert not report.has_errors(), report.generate_report()
    argv = params["AppSpecification"]["ContainerArguments"]
    assert argv[argv.index("--tolerance") + 1] == str(defaults["OnnxTolerance"])


def test_register_metadata_reads_the_export_property_file(on: str) -> None:
    definition = json.loads(on)
    register = _condition(definition)["Arguments"]["IfSteps"][1]
    metadata = register["Arguments"]["CustomerMetadataProperties"]
    for key in METADATA:
        assert metadata[key] == {
            "Std:JsonGet": {
                "Path": f"metadata.{key}",
                "PropertyFile": {"Get": "Steps.ExportOnnx.PropertyFiles.OnnxExport"},
            }
        }, key
    assert metadata["model_format"] == "mlflow"
    shape = botocore.session.get_session().get_service_model("sagemaker")
    limit = shape.operation_model("CreateModelPackage").input_shape.members[
        "CustomerMetadataProperties"
    ]
    assert len(metadata) <= limit.metadata["max"]


def test_compile_is_deterministic(on: str, offline: None) -> None:
    assert _compile_text(True) == on
