"""Training pipeline: the `aws.sagemaker.Pipeline` whose definition is compiled from the one
pipeline definition (`pipelines/definition.py`) for this stack's settings, by the SageMaker
compiler (`pipelines/compilers/sagemaker.py`). Training runs on spot capacity when the tier
asks for it, and every job runs inside the stack's VPC when there is one.

Image: every step runs in the kit image (`mlops:image`, pinned by digest in prod; otherwise
`<repository>:<kit version>`), and the register step records the same image as the model
package's inference image, so the endpoint serves a version with exactly the image it was
registered with. That image must answer SageMaker's serving contract (`serve`: an MLflow
pyfunc scoring server on port 8080 with `/ping` and `/invocations`). ECR tags are immutable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.common import bad, child
from core.config import StackSettings
from core.errors import raise_problems
from pipelines.compilers.cache import compiled
from pipelines.definition import pipeline_settings_from_stack
from pipelines.steps._common import code_version


def kit_version() -> str:
    """Version of this kit: the immutable image tag suffix."""
    try:
        return metadata.version("mlops-blueprints")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def kit_image(repository_url: pulumi.Input[str], pinned: str | None) -> pulumi.Output[str]:
    """The kit image the steps (and the served model) run in: `mlops:image` when the stack pins
    one (prod pins it by digest), else `<repository>:<kit version>`."""
    if pinned:
        return pulumi.Output.from_input(pinned)
    return pulumi.Output.concat(repository_url, ":", kit_version())


def compile_definition(
    stack_settings: StackSettings,
    *,
    pipeline_name: str,
    role_arn: pulumi.Input[str],
    bucket: pulumi.Input[str],
    model_package_group: str,
    region: str,
    kms_key_arn: pulumi.Input[str],
    image_uri: pulumi.Input[str],
    serving_image_uri: pulumi.Input[str] = "",
    subnets: Sequence[pulumi.Input[str]] | None = None,
    security_group_ids: Sequence[pulumi.Input[str]] | None = None,
) -> pulumi.Output[str]:
    """The adapter to the pipeline package: SageMaker pipeline definition JSON for this stack.

    Resolves the Outputs it needs, then calls the compiler with plain values (no resource is
    created inside the apply)."""

    base = pipeline_settings_from_stack(stack_settings, image_uri="", serving_image_uri="")
    inputs = {
        "settings": base,
        "pipeline_name": pipeline_name,
        "model_package_group": model_package_group,
        "region": region,
        "subnets": len(subnets or []),
        "security_group_ids": len(security_group_ids or []),
    }

    def compile_(values: list[Any]) -> str:
        role, bucket_, key, image, serving, subnet_ids, group_ids = values
        resolved = {
            "role_arn": role,
            "bucket": bucket_,
            "kms_key_id": key or "",
            "image_uri": image,
            "serving_image_uri": serving,
            "code_version": code_version(),
            **{f"subnet_{i}": s for i, s in enumerate(subnet_ids)},
            **{f"security_group_{i}": g for i, g in enumerate(group_ids)},
        }
        return compiled(
            "sagemaker",
            inputs=inputs,
            resolved=resolved,
            shapes=SAGEMAKER_SHAPES,
            trainer=base.trainer,
            compile=lambda v: _compile_sagemaker(
                stack_settings, v, len(subnet_ids), len(group_ids), **inputs
            ),
        )

    return pulumi.Output.all(
        role_arn,
        bucket,
        kms_key_arn,
        image_uri,
        serving_image_uri,
        pulumi.Output.all(*(subnets or [])),
        pulumi.Output.all(*(security_group_ids or [])),
    ).apply(compile_)


SAGEMAKER_SHAPES = {"role_arn": "arn:aws:iam::000000000000:role/{}"}
"""Placeholders the SageMaker compilers accept (they check the role is an IAM role ARN)."""


def _compile_sagemaker(
    stack_settings: StackSettings,
    values: Mapping[str, str],
    n_subnets: int,
    n_groups: int,
    *,
    settings: Any,
    pipeline_name: str,
    model_package_group: str,
    region: str,
    subnets: int,
    security_group_ids: int,
) -> str:
    # lazy: the pipeline SDKs (sagemaker, azure-ai-ml, hera) load only when compiling
    from pipelines.compilers.sagemaker import compile_sagemaker

    return compile_sagemaker(
        pipeline_settings_from_stack(
            stack_settings,
            image_uri=values["image_uri"],
            serving_image_uri=values["serving_image_uri"],
        ),
        pipeline_name=pipeline_name,
        role_arn=values["role_arn"],
        bucket=values["bucket"],
        model_package_group=model_package_group,
        region=region,
        kms_key_id=values["kms_key_id"] or None,
        subnets=[values[f"subnet_{i}"] for i in range(n_subnets)] or None,
        security_group_ids=[values[f"security_group_{i}"] for i in range(n_groups)] or None,
        code_version=values["code_version"],
    )


@dataclass(frozen=True)
class TrainingPipelineArgs:
    pipeline_name: str
    """Name of the SageMaker pipeline."""
    definition: pulumi.Input[str]
    """Pipeline definition JSON (from `compile_definition`)."""
    role_arn: pulumi.Input[str]
    """Role the pipeline and its jobs run as."""
    max_parallel_steps: int = 4
    """Steps that may run at once."""
    description: str = "validate-data -> prepare -> train -> evaluate -> quality-gate -> register"
    """Shown in SageMaker Studio."""


def validate_training_pipeline_args(args: TrainingPipelineArgs) -> None:
    problems = []
    if not 1 <= len(args.pipeline_name) <= 256:
        problems.append(
            bad(
                "pipeline_name", args.pipeline_name, "1-256 characters", "use a shorter client name"
            )
        )
    if not 1 <= args.max_parallel_steps <= 1000:
        problems.append(
            bad(
                "max_parallel_steps",
                args.max_parallel_steps,
                "between 1 and 1000",
                "pass a positive number",
            )
        )
    if isinstance(args.definition, str) and not args.definition.lstrip().startswith("{"):
        problems.append(
            bad(
                "definition",
                args.definition[:40],
                "a JSON pipeline definition",
                "pass the output of compile_definition",
            )
        )
    raise_problems("TrainingPipeline", problems)


class TrainingPipeline(pulumi.ComponentResource):
    """SageMaker pipeline compiled from the kit's pipeline definition."""

    pipeline_name: pulumi.Output[str]
    pipeline_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: TrainingPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_training_pipeline_args(args)
        super().__init__("mlops:aws:TrainingPipeline", name, None, opts)
        pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=args.pipeline_name,
            pipeline_display_name=args.pipeline_name,
            pipeline_description=args.description,
            pipeline_definition=args.definition,
            role_arn=args.role_arn,
            parallelism_configuration={"max_parallel_execution_steps": args.max_parallel_steps},
            opts=child(self),
        )
        self.pipeline_name = pipeline.pipeline_name
        self.pipeline_arn = pipeline.arn
        self.register_outputs({"pipelineName": self.pipeline_name})
