"""Refined answers of the offline plan's mocks for AWS: the ids, ARNs, names and URLs AWS
would return, so wiring between resources (an ARN in a policy, a queue URL in a queue policy)
is recorded as it would be deployed. Region: the one the stack's provider was given."""

from __future__ import annotations

import hashlib
from typing import Any

from pulumi.runtime import mocks as pulumi_mocks

ACCOUNT = "123456789012"
_state: dict[str, str] = {"region": "us-east-1"}


def _short(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def outputs(args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]] | None:
    typ, name, inputs = args.typ, args.name, dict(args.inputs)
    if typ == "pulumi:providers:aws":
        _state["region"] = inputs.get("region") or _state["region"]
        return None
    region = _state["region"]

    def regional(service: str, resource: str) -> str:
        return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"

    state: dict[str, Any] = dict(inputs)
    id_: str
    if typ == "aws:s3/bucket:Bucket":
        id_ = inputs.get("bucket") or name
        state.update(bucket=id_, arn=f"arn:aws:s3:::{id_}")
    elif typ == "aws:kms/key:Key":
        id_ = f"{_short(name, 8)}-0000-4000-8000-{_short(name + 'k', 12)}"
        state.update(keyId=id_, arn=regional("kms", f"key/{id_}"))
    elif typ == "aws:ecr/repository:Repository":
        id_ = inputs["name"]
        state.update(
            arn=regional("ecr", f"repository/{id_}"),
            repositoryUrl=f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{id_}",
            registryId=ACCOUNT,
        )
    elif typ == "aws:iam/role:Role":
        id_ = inputs.get("name") or name
        state.update(name=id_, arn=f"arn:aws:iam::{ACCOUNT}:role/{id_}")
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        id_ = inputs.get("name") or name
        state.update(arn=regional("logs", f"log-group:{id_}"))
    elif typ == "aws:iam/policy:Policy":
        id_ = f"arn:aws:iam::{ACCOUNT}:policy/{inputs.get('name') or name}"
        state.update(name=inputs.get("name") or name, arn=id_)
    elif typ == "aws:sqs/queue:Queue":
        q = inputs.get("name") or name
        id_ = f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{q}"
        state.update(name=q, url=id_, arn=regional("sqs", q))
    elif typ == "aws:sns/topic:Topic":
        t = inputs.get("name") or name
        id_ = regional("sns", t)
        state.update(name=t, arn=id_)
    elif typ.startswith("aws:sagemaker/"):
        kind = typ.rsplit(":", 1)[1]
        physical = (
            inputs.get("name")
            or inputs.get("pipelineName")
            or inputs.get("modelPackageGroupName")
            or inputs.get("trackingServerName")
            or f"{name}-{_short(name)}"
        )
        slug = {
            "Pipeline": "pipeline",
            "ModelPackageGroup": "model-package-group",
            "Endpoint": "endpoint",
            "EndpointConfiguration": "endpoint-config",
            "Model": "model",
            "MonitoringSchedule": "monitoring-schedule",
            "DataQualityJobDefinition": "data-quality-job-definition",
            "MlflowTrackingServer": "mlflow-tracking-server",
        }.get(kind, kind.lower())
        id_ = physical
        state.update(name=physical, arn=regional("sagemaker", f"{slug}/{physical}"))
        if kind == "MlflowTrackingServer":
            state["trackingServerUrl"] = f"https://{physical}.{region}.experiments.sagemaker.aws"
    elif typ == "aws:cloudwatch/eventRule:EventRule":
        id_ = inputs.get("name") or name
        state.update(name=id_, arn=regional("events", f"rule/{id_}"))
    elif typ == "aws:cloudwatch/eventConnection:EventConnection":
        id_ = inputs.get("name") or name
        state.update(
            arn=regional("events", f"connection/{id_}/{_short(id_)}"),
            secretArn=regional(
                "secretsmanager", f"secret:events!connection/{id_}/{_short(id_)}-AbCdEf"
            ),
        )
    elif typ == "aws:cloudwatch/eventApiDestination:EventApiDestination":
        id_ = inputs.get("name") or name
        state.update(arn=regional("events", f"api-destination/{id_}/{_short(id_)}"))
    elif typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        id_ = inputs.get("name") or name
        state.update(arn=regional("cloudwatch", f"alarm:{id_}"))
    elif typ == "aws:ec2/vpc:Vpc":
        id_ = f"vpc-{_short(name, 17)}"
    elif typ == "aws:ec2/subnet:Subnet":
        id_ = f"subnet-{_short(name, 17)}"
    elif typ == "aws:ec2/securityGroup:SecurityGroup":
        id_ = f"sg-{_short(name, 17)}"
    elif typ == "aws:ec2/routeTable:RouteTable":
        id_ = f"rtb-{_short(name, 17)}"
    elif typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
        id_ = f"vpce-{_short(name, 17)}"
        if inputs.get("vpcEndpointType") == "Gateway":
            state["prefixListId"] = f"pl-{_short(name, 8)}"
    else:
        return None
    state.setdefault("id", id_)
    return id_, state


def call(args: pulumi_mocks.MockCallArgs) -> dict[str, Any] | None:
    if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        region = _state["region"]
        return {
            "names": [f"{region}a", f"{region}b", f"{region}c"],
            "zoneIds": [f"{region[:2]}-az{i}" for i in (1, 2, 3)],
        }
    return None
