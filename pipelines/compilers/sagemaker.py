"""Compile the one definition to a SageMaker Pipelines definition (sagemaker SDK v3).

    definition_json = compile_sagemaker(settings, pipeline_name=..., role_arn=..., bucket=...,
                                        model_package_group=..., region=...)

validate-data, prepare, evaluate and quality-gate become ProcessingSteps, train a TrainingStep
(container entrypoint `python -m pipelines.steps.train`), and the gate a ConditionStep that
either registers the model (ModelStep -> CreateModelPackage in the stack's Model Package
Group, MLflow serving image, evaluation.json as model-quality metrics) or fails the execution
with the gate's reasons.

With `settings.clarify` (stack key `explain.clarify`) a SageMaker Clarify explainability (SHAP)
run follows evaluate: a ModelStep creates a SageMaker Model from the training job's artifacts,
`clarify-config` (`python -m pipelines.steps.clarify_config`, kit image) writes the analysis
config and the dataset, and a ProcessingStep in the Clarify image writes analysis.json and the
report to the artifact bucket; the registered model package carries that report as
ModelMetrics.Explainability and as its explainability drift-check baseline.

With `settings.export_onnx` (stack key `export.onnx`) the gate's branch runs `ExportOnnx`
(`python -m pipelines.steps.export_onnx`, kit image) before registering: ONNX conversion and
parity on the test split; the model package's CustomerMetadataProperties (`onnx_exportable`,
`onnx_reason`, `onnx_max_abs_diff`, `onnx_uri`) are read from its export.json.

Works with no AWS credentials, no network and no moto: everything that would make the SDK
call AWS is preset in `_offline_session` (region, default bucket, role validation off,
telemetry off). The SDK is imported only inside this module's functions.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

from pipelines.definition import (
    PARAMS,
    PIPELINE,
    PipelineSettings,
    Step,
    parameter_defaults,
    step_arguments,
)
from pipelines.steps import clarify_config as cc
from pipelines.steps import export_onnx as eo
from pipelines.steps._common import code_version

PROCESSING_ROOT = "/opt/ml/processing"
CLARIFY_INSTANCE_TYPE = "ml.m5.xlarge"
"""Instance the Clarify job computes SHAP on (the shadow endpoint's is in its config)."""
SAGEMAKER_APPROVAL = {"auto": "Approved", "manual": "PendingManualApproval"}
TELEMETRY_OFF = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


@contextlib.contextmanager
def _offline_env(region: str) -> Iterator[None]:
    """Environment the SDK needs to build a definition without calling AWS.

    sagemaker.mlops creates boto3 clients at import time (needs a region, not credentials),
    and ModelTrainer validates the role through IAM unless SAGEMAKER_VALIDATE_ROLE=false.
    """
    wanted = {"AWS_DEFAULT_REGION": region, "SAGEMAKER_VALIDATE_ROLE": "false"}
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    from sagemaker.core.config.config_manager import SageMakerConfig

    # The SDK re-validates the session config against its JSON schema on every lookup (~0.25 s
    # each, 70+ lookups). Ours is a constant that is validated once, for real, here.
    original = SageMakerConfig.__dict__["validate_sagemaker_config"]
    _validate_telemetry_off_once(original.__func__)

    def validate(sagemaker_config: dict | None = None) -> None:
        if sagemaker_config != TELEMETRY_OFF:
            original.__func__(sagemaker_config)

    SageMakerConfig.validate_sagemaker_config = staticmethod(validate)
    # ProcessingStep and TransformStep build a LocalSagemakerClient() only to read one method's
    # name; each builds a LocalSession with its own boto3 session, s3 client and resource, and
    # loads the service models again (0.2-0.4 s a step). The stand-in has the same methods.
    from sagemaker.mlops.workflow import steps as steps_mod

    local_client = steps_mod.LocalSagemakerClient
    steps_mod.LocalSagemakerClient = _name_only_local_client(local_client)
    # The SDK's modules set their own DEBUG/INFO levels; while building, its chatter ("No Job
    # being started", "Popping out ...Name") is expected, so only errors get through.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            yield
    finally:
        logging.disable(previous)
        SageMakerConfig.validate_sagemaker_config = original
        steps_mod.LocalSagemakerClient = local_client
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@functools.cache
def _name_only_local_client(local_client: type) -> type:
    """`local_client` (the SDK's LocalSagemakerClient) without its session: the steps only
    read `.create_processing_job.__name__` and `.create_transform_job.__name__` from it."""

    class NameOnlyLocalClient(local_client):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            pass

    return NameOnlyLocalClient


@functools.cache
def _validate_telemetry_off_once(validate: Any) -> None:
    """Our session config is a constant: validate it against the SDK's schema once a process."""
    validate(TELEMETRY_OFF)


@functools.cache
def _offline_session(region: str, bucket: str) -> Any:
    """A PipelineSession that never calls AWS: region, bucket and config are preset. One per
    (region, bucket) and process, shared by the training and the batch compilers (a session
    builds its boto3 clients and reads their service models once)."""
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    session = PipelineSession(
        boto_session=boto3.Session(region_name=region),
        default_bucket=bucket,
        sagemaker_config=TELEMETRY_OFF,
    )
    # default_bucket() otherwise checks (and may create) the bucket through S3
    session._default_bucket = bucket
    return session


def _check(
    pipeline_name: str, role_arn: str, bucket: str, model_package_group: str, region: str
) -> None:
    problems = []
    if not role_arn.startswith("arn:aws") or ":role/" not in role_arn:
        problems.append(
            f"role_arn={role_arn!r} is not an IAM role ARN; pass the pipeline execution role's ARN"
        )
    for name, value in (
        ("pipeline_name", pipeline_name),
        ("bucket", bucket),
        ("model_package_group", model_package_group),
        ("region", region),
    ):
        if not value:
            problems.append(f"{name} is empty; pass the stack's {name}")
    if problems:
        raise ValueError("cannot compile the SageMaker pipeline:\n  - " + "\n  - ".join(problems))


def compile_sagemaker(
    settings: PipelineSettings,
    *,
    pipeline_name: str,
    role_arn: str,
    bucket: str,
    model_package_group: str,
    region: str,
    kms_key_id: str | None = None,
    subnets: list[str] | None = None,
    security_group_ids: list[str] | None = None,
    code_version: str | None = None,
) -> str:
    """The SageMaker pipeline definition JSON for `settings` (offline; plain strings in).
    `code_version` is recorded on the model package (default: the git sha of this code)."""
    _check(pipeline_name, role_arn, bucket, model_package_group, region)
    with _offline_env(region):
        return _build(
            settings,
            pipeline_name=pipeline_name,
            role_arn=role_arn,
            bucket=bucket,
            model_package_group=model_package_group,
            region=region,
            kms_key_id=kms_key_id,
            subnets=subnets or [],
            security_group_ids=security_group_ids or [],
            code_version=_code_version() if code_version is None else code_version,
        )


def _build(
    settings: PipelineSettings,
    *,
    pipeline_name: str,
    role_arn: str,
    bucket: str,
    model_package_group: str,
    region: str,
    kms_key_id: str | None,
    subnets: list[str],
    security_group_ids: list[str],
    code_version: str,
) -> str:
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        OutputDataConfig,
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
    )
    from sagemaker.core.training.configs import Compute, InputData, Networking, StoppingCondition
    from sagemaker.core.workflow.conditions import (
        ConditionEquals,
        ConditionGreaterThanOrEqualTo,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import (
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import (
        CacheConfig,
        ConditionStep,
        FailStep,
        ModelStep,
        Pipeline,
        ProcessingStep,
    )
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.model_trainer import ModelTrainer

    session = _offline_session(region, bucket)
    prefix = f"s3://{bucket}/pipelines/{pipeline_name}"
    defaults = parameter_defaults(
        settings,
        data_uri=f"s3://{bucket}/data/{pipeline_name}/",
        baseline_uri=f"{prefix}/accepted/baseline/",
    )
    kinds = {"string": ParameterString, "float": ParameterFloat, "integer": ParameterInteger}
    params = {
        p.name: kinds[p.type](name=p.camel, default_value=defaults[p.name])
        for p in PARAMS
        if p.name not in ("model_name", "approval_status")
    }
    approval = ParameterString(
        name="ModelApprovalStatus", default_value=SAGEMAKER_APPROVAL[settings.approval_mode]
    )

    def arg(value: Any) -> Any:  # container arguments must be strings
        return (
            value.to_string()
            if hasattr(value, "to_string") and not isinstance(value, ParameterString)
            else value
        )

    arg_params = {name: arg(value) for name, value in params.items()}
    network = NetworkConfig(
        enable_network_isolation=True,
        encrypt_inter_container_traffic=True,
        subnets=subnets or None,
        security_group_ids=security_group_ids or None,
    )
    cache = CacheConfig(enable_caching=True, expire_after="P30D")
    steps: dict[str, Any] = {}
    property_files = {
        "evaluate": PropertyFile(
            name="EvaluationReport", output_name="evaluation", path="evaluation.json"
        ),
        "quality-gate": PropertyFile(name="GateDecision", output_name="gate", path="gate.json"),
    }

    def output_uri(step: Step, output: str) -> Any:
        return Join(
            on="/", values=[prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, step.name, output]
        )

    def source_uri(step_name: str, output: str) -> Any:
        upstream = steps[step_name]
        if step_name == "train":
            return upstream.properties.ModelArtifacts.S3ModelArtifacts
        return upstream.properties.ProcessingOutputConfig.Outputs[output].S3Output.S3Uri

    def processing(step: Step, extra_args: tuple[Any, ...] = ()) -> Any:
        processor = Processor(
            role=role_arn,
            image_uri=settings.image_uri,
            instance_count=1,
            instance_type=settings.processing_instance_type,
            entrypoint=step.command,
            volume_kms_key=kms_key_id,
            output_kms_key=kms_key_id,
            max_runtime_in_seconds=settings.max_runtime_minutes * 60,
            base_job_name=f"{pipeline_name}-{step.name}"[:32],
            sagemaker_session=session,
            network_config=network,
            env={"MLOPS_PIPELINE_STEP": step.name},
        )
        inputs, local_in = [], {}
        for inp in step.inputs:
            local = f"{PROCESSING_ROOT}/input/{inp.name}"
            uri = params[inp.from_param] if inp.from_param else source_uri(*inp.from_step)
            inputs.append(
                ProcessingInput(
                    input_name=inp.name,
                    s3_input=ProcessingS3Input(
                        s3_uri=uri,
                        local_path=local,
                        s3_data_type="S3Prefix",
                        s3_input_mode="File",
                        s3_data_distribution_type="FullyReplicated",
                    ),
                )
            )
            local_in[inp.name] = local
        outputs, local_out = [], {}
        for out in step.outputs:
            local = f"{PROCESSING_ROOT}/output/{out}"
            outputs.append(
                ProcessingOutput(
                    output_name=out,
                    s3_output=ProcessingS3Output(
                        s3_uri=output_uri(step, out), local_path=local, s3_upload_mode="EndOfJob"
                    ),
                )
            )
            local_out[out] = local
        run_args = processor.run(
            inputs=inputs,
            outputs=outputs,
            arguments=[
                *step_arguments(step, inputs=local_in, outputs=local_out, params=arg_params),
                *extra_args,
            ],
        )
        files = [property_files[step.name]] if step.name in property_files else None
        return ProcessingStep(
            name=step.camel,
            step_args=run_args,
            description=step.description,
            property_files=files,
            cache_config=cache,
        )

    def training(step: Step) -> Any:
        trainer = ModelTrainer(
            sagemaker_session=session,
            role=role_arn,
            training_image=settings.image_uri,
            base_job_name=f"{pipeline_name}-train"[:32],
            compute=Compute(
                instance_type=settings.training_instance_type,
                instance_count=1,
                volume_kms_key_id=kms_key_id,
                enable_managed_spot_training=settings.spot or None,
            ),
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=settings.max_runtime_minutes * 60,
                max_wait_time_in_seconds=(
                    settings.max_runtime_minutes * 120 if settings.spot else None
                ),
            ),
            networking=Networking(
                enable_network_isolation=True,
                enable_inter_container_traffic_encryption=True,
                subnets=subnets or None,
                security_group_ids=security_group_ids or None,
            )
            if subnets
            else Networking(
                enable_network_isolation=True, enable_inter_container_traffic_encryption=True
            ),
            output_data_config=OutputDataConfig(
                s3_output_path=f"{prefix}/models", kms_key_id=kms_key_id
            ),
            hyperparameters={name: params[name] for name in step.params},
            environment={"MLOPS_PIPELINE_STEP": step.name},
        )
        channels = [
            InputData(channel_name=inp.name, data_source=source_uri(*inp.from_step))
            for inp in step.inputs
        ]
        return _EntrypointTrainingStep(
            name=step.camel,
            step_args=trainer.train(input_data_config=channels),
            description=step.description,
            cache_config=cache,
            entrypoint=step.command,
            arguments=[
                *(a for inp in step.inputs for a in (inp.flag, f"/opt/ml/input/data/{inp.name}")),
                step.output_flag("model"),
                "/opt/ml/model",
                "--hyperparameters-file",
                "/opt/ml/input/config/hyperparameters.json",
            ],
        )

    for step in PIPELINE:
        if step.kind == "processing":
            steps[step.name] = processing(step)
        elif step.kind == "training":
            steps[step.name] = training(step)

    explain: dict[str, Any] = {}
    if settings.clarify:
        explain = _clarify_steps(
            settings,
            steps,
            processing=processing,
            source_uri=source_uri,
            session=session,
            role_arn=role_arn,
            region=region,
            pipeline_name=pipeline_name,
            prefix=prefix,
            kms_key_id=kms_key_id,
            subnets=subnets,
            security_group_ids=security_group_ids,
            cache=cache,
        )
    edge = _export_step(settings, processing, property_files, output_uri, arg_params)
    evaluation_uri = Join(on="/", values=[source_uri("evaluate", "evaluation"), "evaluation.json"])
    register_step = next(s for s in PIPELINE if s.kind == "register")
    builder = ModelBuilder(
        s3_model_data_url=steps["train"].properties.ModelArtifacts.S3ModelArtifacts,
        image_uri=settings.serving_image_uri or settings.image_uri,
        role_arn=role_arn,
        sagemaker_session=session,
    )
    register_args = builder.register(
        model_package_group_name=model_package_group,
        content_types=["application/json", "text/csv"],
        response_types=["application/json"],
        inference_instances=["ml.m5.large", "ml.c5.large"],
        transform_instances=["ml.m5.large"],
        approval_status=approval,
        description=register_step.description,
        model_metrics=ModelMetrics(
            model_statistics=MetricsSource(content_type="application/json", s3_uri=evaluation_uri),
            explainability=explain.get("report"),
        ),
        drift_check_baselines=explain.get("baselines"),
        customer_metadata_properties={
            "pipeline_run_id": ExecutionVariables.PIPELINE_EXECUTION_ID,
            "data_uri": params["data_uri"],
            "validation_report": Join(
                on="/", values=[source_uri("validate-data", "report"), "report.json"]
            ),
            "code_version": code_version,
            "image_uri": settings.image_uri,
            "model_format": "mlflow",
            "environment": settings.environment,
            **edge.get("metadata", {}),
        },
    )
    register = ModelStep(
        name=register_step.camel, step_args=register_args, description=register_step.description
    )
    gate_step = next(s for s in PIPELINE if s.name == "quality-gate")
    fail = FailStep(
        name="GateFailed",
        error_message=Join(
            on=" ",
            values=[
                "quality gate failed:",
                settings.gate_metric,
                "below",
                params["gate_minimum"],
                "or more than",
                params["gate_max_regression"],
                "below the champion",
                params["champion_metric"],
            ],
        ),
    )
    condition = ConditionStep(
        name=f"{gate_step.camel}Check",
        description="Register only when the quality gate passed",
        conditions=[
            ConditionEquals(
                left=JsonGet(
                    step_name=steps["quality-gate"].name,
                    property_file=property_files["quality-gate"],
                    json_path="passed_int",
                ),
                right=1,
            ),
            ConditionGreaterThanOrEqualTo(
                left=JsonGet(
                    step_name=steps["evaluate"].name,
                    property_file=property_files["evaluate"],
                    json_path=f"metrics.{settings.gate_metric}",
                ),
                right=params["gate_minimum"],
            ),
        ],
        if_steps=[*edge.get("steps", []), register],
        else_steps=[fail],
    )
    pipeline = Pipeline(
        name=pipeline_name,
        parameters=[*params.values(), approval],
        steps=[*steps.values(), condition],
        sagemaker_session=session,
    )
    definition = json.loads(pipeline.definition())
    # Pipeline-definition Metadata takes string values (<= 1024 chars): a JSON string here.
    definition.setdefault("Metadata", {})["mlops"] = json.dumps(
        {"settings_environment": settings.environment}, sort_keys=True
    )
    return json.dumps(definition, sort_keys=True)


def _export_step(
    settings: PipelineSettings,
    processing: Any,
    property_files: dict[str, Any],
    output_uri: Any,
    arg_params: dict[str, Any],
) -> dict[str, Any]:
    """The ONNX edge export (`export.onnx`): a kit-image ProcessingStep run after the gate's
    condition and before RegisterModel, and the model package metadata read from its
    export.json (JsonGet on a PropertyFile; the SDK takes pipeline variables as
    CustomerMetadataProperties values). Empty when export is off."""
    if not settings.export_onnx:
        return {}
    from sagemaker.core.workflow.functions import JsonGet
    from sagemaker.core.workflow.properties import PropertyFile

    report = PropertyFile(name="OnnxExport", output_name="export", path=eo.REPORT_FILE)
    property_files[eo.STEP.name] = report
    step = processing(
        eo.STEP,
        extra_args=(
            "--tolerance",
            arg_params["onnx_tolerance"],
            "--export-uri",
            output_uri(eo.STEP, "export"),
        ),
    )
    metadata = {
        key: JsonGet(step_name=step.name, property_file=report, json_path=f"metadata.{key}")
        for key in eo.METADATA_KEYS
        if key != "onnx_tolerance"
    }
    return {"steps": [step], "metadata": metadata}


def _clarify_steps(
    settings: PipelineSettings,
    steps: dict[str, Any],
    *,
    processing: Any,
    source_uri: Any,
    session: Any,
    role_arn: str,
    region: str,
    pipeline_name: str,
    prefix: str,
    kms_key_id: str | None,
    subnets: list[str],
    security_group_ids: list[str],
    cache: Any,
) -> dict[str, Any]:
    """Add the Clarify explainability steps to `steps`; return what the register step attaches.

    ClarifyModel (CreateModel from the training artifacts, network-isolated, in the VPC) ->
    ClarifyConfig (kit image, writes analysis_config.json and the dataset) ->
    ClarifyExplainability (Clarify image). Clarify calls the SageMaker API to create and delete
    a shadow endpoint, so that job is not network-isolated; it stays in the VPC (the API is
    reached through its interface endpoint) with the stack key on its volume and outputs.
    Nothing is uploaded while compiling: the config is written at run time.
    """
    from sagemaker.core import image_uris
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import FileSource, MetricsSource
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
    )
    from sagemaker.core.training.configs import Networking
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ModelStep, ProcessingStep
    from sagemaker.serve.model_builder import ModelBuilder

    model = ModelStep(
        name="ClarifyModel",
        step_args=ModelBuilder(
            s3_model_data_url=steps["train"].properties.ModelArtifacts.S3ModelArtifacts,
            image_uri=settings.serving_image_uri or settings.image_uri,
            role_arn=role_arn,
            sagemaker_session=session,
            network=Networking(
                enable_network_isolation=True,
                subnets=subnets or None,
                security_group_ids=security_group_ids or None,
            ),
        ).build(),
        description="The trained model as a SageMaker Model, served by Clarify's shadow endpoint",
        depends_on=[steps["evaluate"].name],
    )
    steps["clarify-model"] = model
    steps[cc.STEP.name] = processing(
        cc.STEP,
        extra_args=(
            "--model-name",
            model.properties.ModelName,
            "--endpoint-name-prefix",
            cc.clarify_endpoint_prefix(pipeline_name),
            "--instance-type",
            cc.ENDPOINT_INSTANCE_TYPE,
        ),
    )
    config_uri = source_uri(cc.STEP.name, "config")
    dataset_uri = source_uri(cc.STEP.name, "dataset")
    output_uri = Join(
        on="/", values=[prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, "clarify", "analysis"]
    )

    def s3_input(name: str, uri: Any, local: str) -> Any:
        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=uri,
                local_path=local,
                s3_data_type="S3Prefix",
                s3_input_mode="File",
                s3_data_distribution_type="FullyReplicated",
            ),
        )

    processor = Processor(
        role=role_arn,
        image_uri=image_uris.retrieve("clarify", region),
        instance_count=1,
        instance_type=CLARIFY_INSTANCE_TYPE,
        volume_kms_key=kms_key_id,
        output_kms_key=kms_key_id,
        max_runtime_in_seconds=settings.max_runtime_minutes * 60,
        base_job_name=f"{pipeline_name}-clarify"[:32],
        sagemaker_session=session,
        network_config=NetworkConfig(
            enable_network_isolation=False,
            encrypt_inter_container_traffic=True,
            subnets=subnets or None,
            security_group_ids=security_group_ids or None,
        ),
    )
    run_args = processor.run(
        inputs=[
            s3_input("analysis_config", config_uri, f"{PROCESSING_ROOT}/input/config"),
            s3_input("dataset", dataset_uri, f"{PROCESSING_ROOT}/input/data"),
        ],
        outputs=[
            ProcessingOutput(
                output_name="analysis_result",
                s3_output=ProcessingS3Output(
                    s3_uri=output_uri,
                    local_path=f"{PROCESSING_ROOT}/output",
                    s3_upload_mode="EndOfJob",
                ),
            )
        ],
    )
    steps["clarify"] = ProcessingStep(
        name="ClarifyExplainability",
        step_args=run_args,
        description="SHAP feature attributions of the trained model by SageMaker Clarify",
        cache_config=cache,
    )
    result = steps["clarify"].properties.ProcessingOutputConfig.Outputs["analysis_result"]
    analysis = Join(on="/", values=[result.S3Output.S3Uri, cc.ANALYSIS_FILE])
    report = MetricsSource(content_type="application/json", s3_uri=analysis)
    return {
        "report": report,
        "baselines": DriftCheckBaselines(
            explainability_constraints=report,
            explainability_config_file=FileSource(
                content_type="application/json",
                s3_uri=Join(on="/", values=[config_uri, cc.CONFIG_FILE]),
            ),
        ),
    }


def _code_version() -> str:
    return code_version()


def _entrypoint_step_class() -> Any:
    from sagemaker.mlops.workflow import TrainingStep

    class EntrypointTrainingStep(TrainingStep):
        """A TrainingStep whose container runs `entrypoint arguments...`.

        ModelTrainer sets ContainerEntrypoint only when it uploads source code (an S3 call);
        our code is in the image, so the entrypoint is set on the request here instead.
        """

        def __init__(self, *, entrypoint: list[str], arguments: list[str], **kwargs: Any):
            super().__init__(**kwargs)
            self._entrypoint, self._arguments = list(entrypoint), list(arguments)

        @property
        def arguments(self) -> dict[str, Any]:
            request = super().arguments
            spec = request.setdefault("AlgorithmSpecification", {})
            spec["ContainerEntrypoint"] = self._entrypoint
            spec["ContainerArguments"] = self._arguments
            return request

    return EntrypointTrainingStep


def _EntrypointTrainingStep(**kwargs: Any) -> Any:  # noqa: N802 - behaves as a class
    return _entrypoint_step_class()(**kwargs)
