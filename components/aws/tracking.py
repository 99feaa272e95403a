"""Experiment tracking: a SageMaker managed MLflow tracking server whose artifacts live under
`mlflow/` in the artifact bucket. Its ARN is the tracking URI the `sagemaker-mlflow` plugin
takes (`mlflow.set_tracking_uri(<arn>)`). Models are registered by the pipeline into the
model package group, so the server's automatic model registration stays off."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.common import bad, stateful
from core.config import STORE_DEFAULTS
from core.errors import raise_problems

SIZES = ("Small", "Medium", "Large")


@dataclass(frozen=True)
class ExperimentTrackingArgs:
    server_name: str
    """Name of the tracking server."""
    artifact_store_uri: pulumi.Input[str]
    """`s3://<bucket>/mlflow`: where runs' artifacts are written."""
    role_arn: pulumi.Input[str]
    """Role the server uses to reach the artifact store."""
    size: str = "Small"
    """Server size: Small, Medium or Large."""
    maintenance_window: str = "Sun:03:00"
    """Weekly maintenance window start (`Ddd:HH:MM`, UTC)."""
    protect: bool = STORE_DEFAULTS.protect
    """Protect the server (it holds every run's metadata) and retain it on delete."""


def validate_experiment_tracking_args(args: ExperimentTrackingArgs) -> None:
    problems = []
    if args.size not in SIZES:
        problems.append(
            bad(
                "size",
                args.size,
                "one of " + ", ".join(SIZES),
                "set tracking.size in Pulumi.<stack>.yaml",
            )
        )
    if len(args.server_name) > 256 or not args.server_name:
        problems.append(
            bad("server_name", args.server_name, "1-256 characters", "use a shorter name")
        )
    raise_problems("ExperimentTracking", problems)


class ExperimentTracking(pulumi.ComponentResource):
    """SageMaker managed MLflow tracking server."""

    tracking_uri: pulumi.Output[str]

    def __init__(
        self, name: str, args: ExperimentTrackingArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_experiment_tracking_args(args)
        super().__init__("mlops:aws:ExperimentTracking", name, None, opts)
        server = aws.sagemaker.MlflowTrackingServer(
            f"{name}-server",
            tracking_server_name=args.server_name,
            artifact_store_uri=args.artifact_store_uri,
            role_arn=args.role_arn,
            tracking_server_size=args.size,
            automatic_model_registration=False,
            weekly_maintenance_window_start=args.maintenance_window,
            opts=stateful(self, args.protect),
        )
        self.tracking_uri = server.arn
        self.register_outputs({"trackingUri": self.tracking_uri})
