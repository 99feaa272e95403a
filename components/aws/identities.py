"""Identities: one IAM role per duty, each allowed only what its duty needs on this stack's
own bucket, key, repository, model group, pipeline and endpoint.

Every grant names a resource of the stack. The few AWS APIs that accept no resource scope
(ECR `GetAuthorizationToken`, `cloudwatch:PutMetricData`, the EC2 network-interface calls
SageMaker makes for VPC jobs) are granted as single named actions on `*`, the latter two
narrowed by condition. Trust policies accept only the duty's AWS service, for this account."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.common import StackNames, arn, child, policy, role_arn, trust
from core.errors import raise_problems
from pipelines.steps.clarify_config import clarify_endpoint_prefix

S3_READ = ("s3:GetObject", "s3:GetObjectVersion")
S3_WRITE = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
S3_BUCKET = ("s3:ListBucket", "s3:GetBucketLocation")
KMS_USE = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
    "kms:CreateGrant",
)
ECR_PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
ENI = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
)
DUTIES = ("pipeline", "serving", "monitoring", "release", "trigger", "tracking")
# The AWS services that assume each duty's role (its trust), and so the only ones it is passed to.
SERVICES_OF_DUTY: Mapping[str, tuple[str, ...]] = {
    "pipeline": ("sagemaker.amazonaws.com",),
    "serving": ("sagemaker.amazonaws.com",),
    "monitoring": ("sagemaker.amazonaws.com",),
    "tracking": ("sagemaker.amazonaws.com",),
    "release": ("events.amazonaws.com",),
    "trigger": ("scheduler.amazonaws.com", "events.amazonaws.com"),
    # not a role of this component: the VPC's flow-log delivery role (components/aws/network.py)
    "flow-logs": ("vpc-flow-logs.amazonaws.com",),
}


@dataclass(frozen=True)
class IdentitiesArgs:
    prefix: str
    """`<client>-<env>`; roles are named `<prefix>-<duty>` and every scoped name derives from it."""
    account_id: pulumi.Input[str]
    """Account of the stack."""
    region: str
    """Region of the stack's resources."""
    bucket_arn: pulumi.Input[str]
    """Artifact bucket the roles read and write."""
    kms_key_arn: pulumi.Input[str]
    """Stack key the roles encrypt and decrypt with."""
    repository_arn: pulumi.Input[str]
    """ECR repository the jobs and the endpoint pull images from."""
    tracking: bool = True
    """Create the MLflow tracking server role and let the pipeline use the server."""
    in_vpc: bool = True
    """Jobs and endpoints run in the stack's VPC: allow the network-interface calls."""
    clarify: bool = False
    """The pipeline runs a Clarify step: let it create its model and shadow endpoint."""
    boundary_arn: pulumi.Input[str] | None = None
    """The stack's permissions boundary (components/aws/boundary.py) every role carries."""


def validate_identities_args(args: IdentitiesArgs) -> None:
    problems = []
    longest = max(len(StackNames(args.prefix).role(d)) for d in DUTIES)
    if longest > 64:
        problems.append(
            f"prefix={args.prefix!r} makes role names of {longest} characters, "
            "IAM allows 64; use a shorter client name"
        )
    raise_problems("Identities", problems)


class Identities(pulumi.ComponentResource):
    """One least-privilege IAM role per duty."""

    pipeline_role_arn: pulumi.Output[str]
    serving_role_arn: pulumi.Output[str]
    monitoring_role_arn: pulumi.Output[str]
    release_role_arn: pulumi.Output[str]
    trigger_role_arn: pulumi.Output[str]
    tracking_role_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: IdentitiesArgs, opts: pulumi.ResourceOptions | None = None):
        validate_identities_args(args)
        super().__init__("mlops:aws:Identities", name, None, opts)
        n = StackNames(args.prefix)
        sm = lambda resource: arn("sagemaker", args.region, args.account_id, resource)  # noqa: E731
        objects = pulumi.Output.concat(args.bucket_arn, "/*")
        group = n.model_package_group
        tracking_arn = sm(f"mlflow-tracking-server/{n.tracking_server}")

        def storage(read_only: bool = False) -> list[dict[str, Any]]:
            return [
                _allow(S3_BUCKET, args.bucket_arn),
                _allow(S3_READ if read_only else S3_READ + S3_WRITE, objects),
                _allow(KMS_USE, args.kms_key_arn),
            ]

        def runtime(duty: str) -> list[dict[str, Any]]:
            """Pull images, write logs and metrics, and (in a VPC) attach to it."""
            logs = arn("logs", args.region, args.account_id, "log-group:/aws/sagemaker/*")
            out = [
                _allow(ECR_PULL, args.repository_arn),
                _allow(("ecr:GetAuthorizationToken",), "*"),
                _allow(
                    (
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ),
                    [logs, pulumi.Output.concat(logs, ":*")],
                ),
                _allow(
                    ("cloudwatch:PutMetricData",),
                    "*",
                    {
                        "StringLike": {
                            "cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]
                        }
                    },
                ),
                _allow(
                    ("iam:PassRole",),
                    role_arn(args.region, args.account_id, n.role(duty)),
                    {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                ),
            ]
            if args.in_vpc:
                out.append(_allow(ENI, "*", {"StringEquals": {"aws:RequestedRegion": args.region}}))
            return out

        pipeline_grants = [
            *storage(),
            *runtime("pipeline"),
            _allow(
                (
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:AddTags",
                ),
                [sm("training-job/pipelines-*"), sm("processing-job/pipelines-*")],
            ),
            _allow(
                (
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:UpdateModelPackage",
                    "sagemaker:ListModelPackages",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:AddTags",
                ),
                [sm(f"model-package-group/{group}"), sm(f"model-package/{group}/*")],
            ),
        ]
        if args.tracking:
            pipeline_grants.append(_allow(("sagemaker-mlflow:*",), tracking_arn))
        if args.clarify:
            # Clarify's SHAP job serves the candidate model from a shadow endpoint that it
            # creates, invokes and deletes; its names start with a prefix fixed per pipeline.
            shadow = clarify_endpoint_prefix(n.pipeline)
            pipeline_grants += [
                _allow(
                    ("sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:AddTags"),
                    sm("model/pipelines-*"),
                ),
                _allow(
                    (
                        "sagemaker:CreateEndpointConfig",
                        "sagemaker:DescribeEndpointConfig",
                        "sagemaker:DeleteEndpointConfig",
                        "sagemaker:CreateEndpoint",
                        "sagemaker:DescribeEndpoint",
                        "sagemaker:DeleteEndpoint",
                        "sagemaker:InvokeEndpoint",
                        "sagemaker:AddTags",
                    ),
                    [sm(f"endpoint/{shadow}*"), sm(f"endpoint-config/{shadow}*")],
                ),
            ]

        self.pipeline_role_arn = self._role(
            name,
            args,
            "pipeline",
            SERVICES_OF_DUTY["pipeline"],
            "runs the training pipeline's jobs",
            pipeline_grants,
        )
        self.serving_role_arn = self._role(
            name,
            args,
            "serving",
            SERVICES_OF_DUTY["serving"],
            "runs the endpoint's model container and writes captured traffic",
            [
                *storage(),
                *runtime("serving"),
                _allow(("sagemaker:DescribeModelPackage",), sm(f"model-package/{group}/*")),
            ],
        )
        self.monitoring_role_arn = self._role(
            name,
            args,
            "monitoring",
            SERVICES_OF_DUTY["monitoring"],
            "runs the data-quality monitoring jobs over captured traffic",
            [
                *storage(),
                *runtime("monitoring"),
                _allow(("sagemaker:DescribeEndpoint",), sm(f"endpoint/{n.endpoint}")),
            ],
        )
        self.release_role_arn = self._role(
            name,
            args,
            "release",
            SERVICES_OF_DUTY["release"],
            "lets EventBridge call the CI release workflow (API destination)",
            [
                _allow(
                    ("events:InvokeApiDestination",),
                    arn(
                        "events",
                        args.region,
                        args.account_id,
                        f"api-destination/{n.api_destination}/*",
                    ),
                )
            ],
        )
        self.trigger_role_arn = self._role(
            name,
            args,
            "trigger",
            SERVICES_OF_DUTY["trigger"],
            "lets the schedule and the data-change rule start the training pipeline",
            [
                _allow(("sagemaker:StartPipelineExecution",), sm(f"pipeline/{n.pipeline}")),
                _allow(
                    ("sqs:SendMessage",), arn("sqs", args.region, args.account_id, n.training_dlq)
                ),
                _allow(("kms:GenerateDataKey*", "kms:Decrypt"), args.kms_key_arn),
            ],
        )
        self.tracking_role_arn = None
        if args.tracking:
            mlflow_objects = pulumi.Output.concat(args.bucket_arn, "/mlflow/*")
            self.tracking_role_arn = self._role(
                name,
                args,
                "tracking",
                SERVICES_OF_DUTY["tracking"],
                "lets the MLflow tracking server store artifacts in the bucket",
                [
                    _allow(S3_BUCKET, args.bucket_arn),
                    _allow(S3_READ + S3_WRITE, mlflow_objects),
                    _allow(KMS_USE, args.kms_key_arn),
                ],
            )
        self.register_outputs(
            {
                "pipelineRoleArn": self.pipeline_role_arn,
                "servingRoleArn": self.serving_role_arn,
                "monitoringRoleArn": self.monitoring_role_arn,
                "releaseRoleArn": self.release_role_arn,
            }
        )

    def _role(
        self,
        name: str,
        args: IdentitiesArgs,
        duty: str,
        services: Sequence[str],
        description: str,
        grants: list[dict[str, Any]],
    ) -> pulumi.Output[str]:
        role = aws.iam.Role(
            f"{name}-{duty}",
            name=StackNames(args.prefix).role(duty),
            description=f"{args.prefix}: {description}",
            assume_role_policy=trust(*services, account_id=args.account_id),
            max_session_duration=3600,
            permissions_boundary=args.boundary_arn,
            opts=child(self),
        )
        aws.iam.RolePolicy(
            f"{name}-{duty}-policy", role=role.id, policy=policy(grants), opts=child(self)
        )
        return role.arn


def _allow(
    actions: Sequence[str],
    resource: Any,
    condition: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": list(actions), "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement
