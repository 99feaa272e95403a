"""Compile the one definition to an Azure ML pipeline job (azure-ai-ml `dsl.pipeline`).

Each step becomes a command component running `python -m <module>` in the kit's image; the
quality gate's verdict (gate.json) is read by the register step, which registers nothing when
the gate failed. Registration goes to the workspace's MLflow registry (Azure ML sets
MLFLOW_TRACKING_URI in every job; the image needs `azureml-mlflow`).

Three views of the same job, all built offline:
- `compile_azureml(...)` -> (PipelineJob, job YAML dict) for `az ml job create -f` / `load_job`;
- `azureml_component_specs(...)` -> ComponentVersion REST bodies, one per step, to create as
  workspace components (e.g. azure-native `ComponentVersion`);
- `azureml_rest_job(..., component_ids=...)` -> the REST JobBase body that an Azure ML
  Schedule's `CreateJob` action carries (`jobDefinition`), nodes pointing at those components.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

from pipelines.definition import (
    PARAM_BY_NAME,
    PARAMS,
    PIPELINE,
    PipelineSettings,
    Step,
    parameter_defaults,
)

# azure-ai-ml logs "This is an experimental class" at WARNING for classes its own job
# builders use; it says nothing about the user's job and floods `mlops plan`.
logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)

AZURE_TYPES = {"string": "string", "float": "number", "integer": "integer"}
URI_PARAMS = ("data_uri", "baseline_uri")
DEFAULT_DATA_URI = "azureml://datastores/workspaceblobstore/paths/mlops/data/"


def _component_name(step: Step) -> str:
    return "mlops_" + step.name.replace("-", "_")


def _command(step: Step) -> str:
    """`python -m module --flag ${{inputs.x}} ...`; optional inputs in $[[...]]."""
    parts = list(step.command)
    for inp in step.inputs:
        piece = f"{inp.flag} ${{{{inputs.{inp.name}}}}}"
        parts.append(f"$[[{piece}]]" if inp.optional else piece)
    for out in step.outputs:
        parts.append(f"{step.output_flag(out)} ${{{{outputs.{out}}}}}")
    for name in step.params:
        piece = f"{PARAM_BY_NAME[name].flag} ${{{{inputs.{name}}}}}"
        parts.append(f"$[[{piece}]]" if name == "contract" else piece)
    if step.kind == "register":
        parts.append("--pipeline-run-id ${{name}}")
    return " ".join(parts)


def build_components(settings: PipelineSettings, *, environment_image: str) -> dict[str, Any]:
    """One azure-ai-ml command builder per step, keyed by step name."""
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.entities import Environment

    environment = Environment(image=environment_image)
    components: dict[str, Any] = {}
    for step in PIPELINE:
        inputs: dict[str, Any] = {
            inp.name: Input(type="uri_folder", optional=inp.optional or None) for inp in step.inputs
        }
        for name in step.params:
            inputs[name] = Input(
                type=AZURE_TYPES[PARAM_BY_NAME[name].type],
                optional=True if name == "contract" else None,
            )
        components[step.name] = command(
            name=_component_name(step),
            display_name=step.name,
            description=step.description,
            command=_command(step),
            inputs=inputs,
            environment=environment,
            outputs={out: Output(type="uri_folder") for out in step.outputs},
            is_deterministic=step.kind != "register",
            environment_variables={"MLOPS_PIPELINE_STEP": step.name},
        )
    return components


def _pipeline_function(settings: PipelineSettings, components: dict[str, Any]) -> Any:
    from azure.ai.ml import Input

    def body(**params):  # type: ignore[no-untyped-def]  # annotations set below
        nodes: dict[str, Any] = {}
        for step in PIPELINE:
            kwargs: dict[str, Any] = {}
            for inp in step.inputs:
                if inp.from_param:
                    if params.get(inp.from_param) is not None:
                        kwargs[inp.name] = params[inp.from_param]
                else:
                    src, output = inp.from_step
                    kwargs[inp.name] = nodes[src].outputs[output]
            for name in step.params:
                if params.get(name) is not None:
                    kwargs[name] = params[name]
            node = components[step.name](**kwargs)
            node.name = step.name.replace("-", "_")
            if step.kind == "training":
                node.compute = None  # default compute; see queue settings below
                if settings.spot:
                    node.queue_settings = {"job_tier": "spot"}
                node.limits = {"timeout": settings.max_runtime_minutes * 60}
            nodes[step.name] = node
        return {
            "model": nodes["train"].outputs["model"],
            "evaluation": nodes["evaluate"].outputs["evaluation"],
            "registration": nodes["register"].outputs["registration"],
        }

    signature = []
    for param in PARAMS:
        if param.name in URI_PARAMS:
            annotation: Any = Input(type="uri_folder", optional=param.name == "baseline_uri")
        else:
            annotation = {"string": str, "float": float, "integer": int}[param.type]
        signature.append(
            inspect.Parameter(
                param.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=None
            )
        )
    # dsl.pipeline reads the function's signature and annotations: give it the definition's
    body.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    body.__annotations__ = {p.name: p.annotation for p in signature}
    return body


def compile_azureml(
    settings: PipelineSettings,
    *,
    compute: str,
    experiment_name: str,
    environment_image: str,
    data_uri: str = DEFAULT_DATA_URI,
    baseline_uri: str | None = None,
    component_ids: Mapping[str, str] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """(PipelineJob, job YAML dict) for `settings`; offline, no workspace needed.

    `component_ids` (step name -> ARM id of a registered ComponentVersion) makes each node
    reference its workspace component instead of carrying the component inline.
    """
    from azure.ai.ml import Input, dsl

    if not compute or not experiment_name or not environment_image:
        raise ValueError(
            "compile_azureml needs compute, experiment_name and environment_image; "
            "pass the stack's compute cluster, experiment and pipeline image"
        )
    components = build_components(settings, environment_image=environment_image)
    defaults = parameter_defaults(settings)
    values: dict[str, Any] = {k: v for k, v in defaults.items() if k not in URI_PARAMS}
    if not values["contract"]:
        values["contract"] = None
    values["data_uri"] = Input(type="uri_folder", path=data_uri)
    if baseline_uri:
        values["baseline_uri"] = Input(type="uri_folder", path=baseline_uri)
    pipeline = dsl.pipeline(
        name=experiment_name,
        display_name=f"{settings.registered_model_name} training",
        description="validate-data -> prepare -> train -> evaluate -> quality-gate -> register",
        default_compute=compute,
        experiment_name=experiment_name,
        continue_on_step_failure=False,
    )(_pipeline_function(settings, components))
    job = pipeline(**values)
    job.tags = {"mlops.environment": settings.environment, "mlops.client": settings.client}
    if component_ids:
        missing = [s.name for s in PIPELINE if s.name not in component_ids]
        if missing:
            raise ValueError(f"component_ids lacks {missing}; pass an ARM id for every step")
        for step in PIPELINE:
            job.jobs[step.name.replace("-", "_")]._component = component_ids[step.name]
    return job, job._to_dict()


def azureml_component_specs(
    settings: PipelineSettings, *, environment_image: str
) -> dict[str, dict[str, Any]]:
    """ComponentVersion REST bodies (`properties.componentSpec`), keyed by step name."""
    components = build_components(settings, environment_image=environment_image)
    return {
        name: builder.component._to_rest_object().as_dict() for name, builder in components.items()
    }


def azureml_rest_job(
    settings: PipelineSettings,
    *,
    compute: str,
    experiment_name: str,
    environment_image: str,
    component_ids: Mapping[str, str],
    data_uri: str = DEFAULT_DATA_URI,
    baseline_uri: str | None = None,
) -> dict[str, Any]:
    """The REST JobBase body (`{"properties": {...jobType: Pipeline}}`) a Schedule creates."""
    job, _ = compile_azureml(
        settings,
        compute=compute,
        experiment_name=experiment_name,
        environment_image=environment_image,
        data_uri=data_uri,
        baseline_uri=baseline_uri,
        component_ids=component_ids,
    )
    return job._to_rest_object().as_dict()
