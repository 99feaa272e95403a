"""Training pipeline and continuous training: the validate-train-evaluate-gate-register pipeline
job compiled from `pipelines/` by the Azure ML compiler, run by a `Schedule` on the training
cron. The same compiled job is what the data-change trigger submits.

`compiled_pipeline_job` is the one adapter to the pipeline compiler: it imports it lazily and
calls it with plain values inside `apply` (it computes data; it creates no resource).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import machinelearningservices as ml

from components.azure._common import check, raise_if
from core.config import StackSettings
from pipelines.compilers.cache import compiled
from pipelines.definition import PIPELINE, pipeline_settings_from_stack

_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")


STEPS: tuple[str, ...] = (
    "validate-data",
    "prepare",
    "train",
    "evaluate",
    "quality-gate",
    "register",
)
"""Steps of the one pipeline definition (checked against `pipelines.definition.PIPELINE`)."""


def compile_for_azure(
    what: str,
    stack_settings: StackSettings,
    *,
    image: str,
    compute: str = "",
    experiment_name: str = "",
    data_uri: str = "",
    component_ids: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The one adapter to the pipeline compiler, called with plain values inside `apply`.

    what="components": ComponentVersion `properties` by step name;
    what="job": the REST `properties` of the PipelineJob a Schedule's CreateJob action carries.
    """
    steps = tuple(step.name for step in PIPELINE)
    if steps != STEPS:
        raise RuntimeError(f"pipeline steps changed to {steps}; update STEPS in {__name__}")
    if what not in ("components", "job"):
        raise ValueError(f"what={what!r} is not one of components, job")
    base = pipeline_settings_from_stack(stack_settings, image_uri="")
    ids = dict(component_ids or {})
    # azure-ai-ml hashes the image into the environment version and the component hash, so
    # the image is part of the key; the ARM ids and the data folder are filled in
    resolved = {
        **({"compute": compute, "data_uri": data_uri} if what == "job" else {}),
        **{f"component_{step}": ids.get(step, "") for step in (STEPS if what == "job" else ())},
    }

    def compile_(values: Mapping[str, str]) -> dict[str, Any]:
        # lazy: the pipeline SDKs (sagemaker, azure-ai-ml, hera) load only when compiling
        from pipelines.compilers import azureml as compiler

        settings = pipeline_settings_from_stack(stack_settings, image_uri=values["image"])
        if what == "components":
            specs = compiler.azureml_component_specs(settings, environment_image=values["image"])
            return {name: spec["properties"] for name, spec in specs.items()}
        body = compiler.azureml_rest_job(
            settings,
            compute=values["compute"],
            experiment_name=experiment_name,
            environment_image=values["image"],
            component_ids={step: values[f"component_{step}"] for step in STEPS if step in ids},
            data_uri=values["data_uri"],
        )
        return body["properties"]

    return compiled(
        f"azureml-{what}",
        inputs={"settings": base, "experiment_name": experiment_name, "steps": sorted(ids)},
        resolved=resolved,
        keyed={"image": image},
        trainer=base.trainer,
        compile=compile_,
    )


def _spec_version(spec: Mapping[str, Any]) -> str:
    """Content-addressed version: component versions are immutable in Azure ML."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    return digest[:16]


@dataclass(frozen=True)
class TrainingPipelineArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    resource_group_name: pulumi.Input[str]
    """Resource group of the workspace."""
    workspace_name: pulumi.Input[str]
    """Workspace the schedule belongs to."""
    stack_settings: StackSettings
    """The validated StackSettings the pipeline is compiled from (gate, approval, training)."""
    image: pulumi.Input[str]
    """Container image every step runs in (in the stack's registry)."""
    compute_id: pulumi.Input[str]
    """ARM id of the training cluster the steps run on."""
    data_uri: pulumi.Input[str]
    """Training data folder (the raw container)."""
    experiment_name: str = ""
    """Experiment the runs are recorded under; "": `<prefix>-training`."""
    cron: str = "0 3 * * 1"
    """When continuous training runs (5-field cron, UTC)."""
    enabled: bool = True
    """Whether the schedule runs."""


def validate_pipeline_args(args: TrainingPipelineArgs) -> None:
    problems: list[str] = []
    fields_ = args.cron.split()
    check(
        problems,
        len(fields_) == 5 and all(_CRON_FIELD.match(f) for f in fields_),
        "cron",
        args.cron,
        "a 5-field cron expression (minute hour day month weekday)",
        "set schedule.cron in Pulumi.<stack>.yaml",
    )
    raise_if("TrainingPipeline", problems)


class TrainingPipeline(pulumi.ComponentResource):
    """Azure ML schedule that submits the compiled training pipeline job on a cron."""

    pipeline_name: str
    job_definition: pulumi.Output[dict[str, Any]]
    """REST properties of the compiled pipeline job (also submitted by the data trigger)."""
    schedule_name: pulumi.Output[str]

    def __init__(self, name: str, args: TrainingPipelineArgs, opts: ResourceOptions | None = None):
        validate_pipeline_args(args)
        super().__init__("mlops:azure:TrainingPipeline", name, None, opts)
        experiment = args.experiment_name or f"{args.prefix}-training"
        specs = pulumi.Output.from_input(args.image).apply(
            lambda image: compile_for_azure("components", args.stack_settings, image=image)
        )
        components = {
            step: ml.ComponentVersion(
                f"{name}-{step}",
                name="mlops_" + step.replace("-", "_"),
                version=specs.apply(lambda s, step=step: _spec_version(s[step])),
                resource_group_name=args.resource_group_name,
                workspace_name=args.workspace_name,
                properties=specs.apply(lambda s, step=step: s[step]),
                opts=ResourceOptions(parent=self),
            )
            for step in STEPS
        }
        job = pulumi.Output.all(
            args.image, args.compute_id, args.data_uri, *(c.id for c in components.values())
        ).apply(
            lambda v: compile_for_azure(
                "job",
                args.stack_settings,
                image=v[0],
                compute=v[1],
                data_uri=v[2],
                experiment_name=experiment,
                component_ids=dict(zip(STEPS, v[3:], strict=True)),
            )
        )
        schedule = ml.Schedule(
            f"{name}-schedule",
            name=f"{args.prefix}-training",
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            properties=ml.SchedulePropertiesArgs(
                display_name=f"{args.prefix} continuous training",
                description="Runs the validate-train-evaluate-gate-register pipeline",
                is_enabled=args.enabled,
                trigger=ml.CronTriggerArgs(
                    trigger_type="Cron", expression=args.cron, time_zone="UTC"
                ),
                action=ml.JobScheduleActionArgs(action_type="CreateJob", job_definition=job),
            ),
            opts=ResourceOptions(parent=self),
        )
        self.pipeline_name = experiment
        self.job_definition = job
        self.schedule_name = schedule.name
        self.register_outputs({"scheduleName": schedule.name})
