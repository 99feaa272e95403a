"""Endpoint: a managed online endpoint serving the pinned registered model version, owned by
Pulumi, with blue/green deployments, autoscaling and data collection.

- The endpoint authenticates callers with Entra ID tokens (`AADToken`, never keys) and has
  public network access disabled in private mode; deployments have egress disabled too.
- One `OnlineDeployment` per served version, named `model-v<N>`. When the version changes
  (`previous_model_version` set), the old deployment stays as the stable (blue) one and the new
  (green) one takes the canary share, or first only a mirror share of the traffic; the
  traffic map always sums to 100. `all-at-once` moves all traffic and keeps the old deployment
  at 0 for an instant rollback.
- Azure refuses traffic to deployments that do not exist yet, and deployments need their
  endpoint first, so the traffic map cannot be an input of the endpoint itself. It is applied
  by an incremental ARM deployment (`<name>-traffic`) that depends on the deployments (the same
  technique Bicep uses); the endpoint ignores drift in its traffic properties.
- Each deployment gets an Azure Monitor autoscale setting (CPU and requests per instance)
  between min and max instances, and collects model inputs and outputs to the workspace's
  default datastore (the artifact store).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import monitor, resources

from components.azure._common import check, dashed_name, raise_if
from core.config import ENDPOINT_DEFAULTS, ROLLOUT_DEFAULTS, STRATEGIES
from core.names import azure_deployment_name as deployment_name

ENDPOINT_API_VERSION = "2024-10-01"
_VERSION = re.compile(r"^[1-9]\d{0,5}$")


def traffic_split(
    model_version: str,
    previous_model_version: str | None,
    strategy: str,
    canary_percent: int,
    mirror_percent: int,
) -> tuple[dict[str, int], dict[str, int]]:
    """(traffic, mirror_traffic) by deployment name. Live traffic always sums to 100."""
    new = deployment_name(model_version)
    if not previous_model_version or previous_model_version == model_version:
        return {new: 100}, {}
    old = deployment_name(previous_model_version)
    if strategy == "all-at-once":
        return {old: 0, new: 100}, {}
    if mirror_percent > 0:
        return {old: 100, new: 0}, {new: mirror_percent}
    return {old: 100 - canary_percent, new: canary_percent}, {}


@dataclass(frozen=True)
class ModelEndpointArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    location: str
    """Azure location of the workspace."""
    resource_group_name: pulumi.Input[str]
    """Resource group of the workspace."""
    workspace_name: pulumi.Input[str]
    """Workspace the endpoint belongs to."""
    workspace_id: pulumi.Input[str]
    """Workspace resource id (the registered model's parent)."""
    identity_id: pulumi.Input[str]
    """User-assigned identity the endpoint runs as (the serving identity)."""
    model_name: str
    """Registered model name in the workspace."""
    model_version: str
    """Registered model version to serve (e.g. `2`)."""
    previous_model_version: str | None = None
    """Version currently serving; set it to roll out `model_version` next to it (blue/green)."""
    instance_type: str = "Standard_DS3_v2"
    """VM size of the serving instances."""
    min_instances: int = ENDPOINT_DEFAULTS.min_instances
    """Fewest instances per deployment (Azure needs at least 1)."""
    max_instances: int = ENDPOINT_DEFAULTS.max_instances
    """Most instances the autoscaler may add."""
    target_requests_per_instance: int = 100
    """Autoscale out when requests per minute per instance exceed this."""
    strategy: str = ROLLOUT_DEFAULTS.strategy
    """all-at-once, canary or linear: how traffic moves to a new version."""
    canary_percent: int = 10
    """Share of live traffic the new deployment takes first (canary or first linear step)."""
    mirror_percent: int = 0
    """When > 0, the new deployment first receives only this share as mirrored traffic."""
    capture_percent: int = ENDPOINT_DEFAULTS.capture_percent
    """Share of requests and responses collected (0 turns data collection off)."""
    private: bool = True
    """Disable public network access to the endpoint and egress from its deployments."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def validate_endpoint_args(args: ModelEndpointArgs) -> None:
    problems: list[str] = []
    fix_cfg = "set it in Pulumi.<stack>.yaml"
    check(
        problems,
        bool(_VERSION.match(args.model_version)),
        "model_version",
        args.model_version,
        "a registered version number such as 3",
        "set mlops:model",
    )
    check(
        problems,
        args.previous_model_version is None or bool(_VERSION.match(args.previous_model_version)),
        "previous_model_version",
        args.previous_model_version,
        "None or a version number",
        "pass the serving version",
    )
    check(
        problems,
        args.strategy in STRATEGIES,
        "strategy",
        args.strategy,
        f"one of {', '.join(STRATEGIES)}",
        "set rollout.strategy in Pulumi.<stack>.yaml",
    )
    check(
        problems,
        1 <= args.canary_percent <= 50,
        "canary_percent",
        args.canary_percent,
        "between 1 and 50",
        "set rollout.trafficStepPercent in Pulumi.<stack>.yaml",
    )
    check(
        problems,
        0 <= args.mirror_percent <= 50,
        "mirror_percent",
        args.mirror_percent,
        "between 0 and 50 (Azure caps mirrored traffic at 50)",
        "pass 0 to skip mirroring",
    )
    check(
        problems,
        1 <= args.min_instances <= args.max_instances,
        "min_instances",
        args.min_instances,
        f"between 1 and max_instances={args.max_instances}",
        "set endpoint.minInstances / maxInstances; managed endpoints keep at least 1",
    )
    check(
        problems,
        args.instance_type.startswith("Standard_"),
        "instance_type",
        args.instance_type,
        "an Azure VM size (Standard_*)",
        f"endpoint.instanceType: {fix_cfg}",
    )
    check(
        problems,
        0 <= args.capture_percent <= 100,
        "capture_percent",
        args.capture_percent,
        "between 0 and 100",
        f"endpoint.capturePercent: {fix_cfg}",
    )
    check(
        problems,
        bool(re.match(r"^[A-Za-z0-9][\w.-]{0,254}$", args.model_name)),
        "model_name",
        args.model_name,
        "a registered model name",
        "pass the model name",
    )
    raise_if("ModelEndpoint", problems)


class ModelEndpoint(pulumi.ComponentResource):
    """Managed online endpoint (AAD token auth), blue/green deployments, traffic, autoscale."""

    endpoint_name: pulumi.Output[str]
    endpoint_id: pulumi.Output[str]
    scoring_uri: pulumi.Output[str]
    deployment_ids: dict[str, pulumi.Output[str]]
    """Deployment resource id by deployment name."""
    current_deployment_id: pulumi.Output[str]
    """Deployment serving `model_version` (the one drift monitoring watches)."""
    traffic: dict[str, int]
    mirror_traffic: dict[str, int]

    def __init__(self, name: str, args: ModelEndpointArgs, opts: ResourceOptions | None = None):
        validate_endpoint_args(args)
        super().__init__("mlops:azure:ModelEndpoint", name, None, opts)
        access = "Disabled" if args.private else "Enabled"
        endpoint_name = dashed_name("ep", args.prefix, args.location, 32)
        identity = ml.ManagedServiceIdentityArgs(
            type="UserAssigned", user_assigned_identities=[args.identity_id]
        )
        endpoint = ml.OnlineEndpoint(
            f"{name}-endpoint",
            endpoint_name=endpoint_name,
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            location=args.location,
            kind="Managed",
            identity=identity,
            properties=ml.OnlineEndpointPropertiesArgs(
                auth_mode="AADToken",
                public_network_access=access,
                description=f"Serves {args.model_name} (owned by Pulumi; traffic set by "
                f"{name}-traffic)",
            ),
            tags=args.tags,
            opts=ResourceOptions(
                parent=self, ignore_changes=["properties.traffic", "properties.mirrorTraffic"]
            ),
        )

        versions = [args.model_version]
        if args.previous_model_version and args.previous_model_version != args.model_version:
            versions.insert(0, args.previous_model_version)
        traffic, mirror = traffic_split(
            args.model_version,
            args.previous_model_version,
            args.strategy,
            args.canary_percent,
            args.mirror_percent,
        )
        deployments: dict[str, ml.OnlineDeployment] = {}
        for version in versions:
            dep_name = deployment_name(version)
            deployments[dep_name] = self._deployment(name, args, endpoint, version, access)
            self._autoscale(name, args, endpoint, deployments[dep_name], version)

        template: dict[str, Any] = {
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/"
            "deploymentTemplate.json#",
            "contentVersion": "1.0.0.0",
            "resources": [
                {
                    "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
                    "apiVersion": ENDPOINT_API_VERSION,
                    "name": pulumi.Output.concat(args.workspace_name, "/", endpoint.name),
                    "location": args.location,
                    "kind": "Managed",
                    "identity": {
                        "type": "UserAssigned",
                        "userAssignedIdentities": pulumi.Output.from_input(args.identity_id).apply(
                            lambda i: {i: {}}
                        ),
                    },
                    "tags": args.tags,
                    "properties": {
                        "authMode": "AADToken",
                        "publicNetworkAccess": access,
                        "traffic": traffic,
                        "mirrorTraffic": mirror,
                    },
                }
            ],
        }
        resources.Deployment(
            f"{name}-traffic",
            resource_group_name=args.resource_group_name,
            properties=resources.DeploymentPropertiesArgs(mode="Incremental", template=template),
            opts=ResourceOptions(parent=self, depends_on=list(deployments.values())),
        )

        self.endpoint_name = endpoint.name
        self.endpoint_id = endpoint.id
        self.scoring_uri = endpoint.properties.scoring_uri
        self.deployment_ids = {n: d.id for n, d in deployments.items()}
        self.current_deployment_id = deployments[deployment_name(args.model_version)].id
        self.traffic = traffic
        self.mirror_traffic = mirror
        self.register_outputs(
            {"endpointName": endpoint.name, "scoringUri": self.scoring_uri, "traffic": traffic}
        )

    def _deployment(
        self,
        name: str,
        args: ModelEndpointArgs,
        endpoint: ml.OnlineEndpoint,
        version: str,
        access: str,
    ) -> ml.OnlineDeployment:
        collector = None
        if args.capture_percent > 0:
            rate = args.capture_percent / 100
            collector = ml.DataCollectorArgs(
                collections={
                    c: ml.CollectionArgs(data_collection_mode="Enabled", sampling_rate=rate)
                    for c in ("model_inputs", "model_outputs")
                },
                rolling_rate="Hour",
            )
        model_id = pulumi.Output.concat(
            args.workspace_id, "/models/", args.model_name, "/versions/", version
        )
        return ml.OnlineDeployment(
            f"{name}-v{version}",
            deployment_name=deployment_name(version),
            endpoint_name=endpoint.name,
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            location=args.location,
            kind="Managed",
            sku=ml.SkuArgs(name="Default", capacity=args.min_instances),
            properties=ml.ManagedOnlineDeploymentArgs(
                endpoint_compute_type="Managed",
                model=model_id,
                instance_type=args.instance_type,
                scale_settings=ml.DefaultScaleSettingsArgs(scale_type="Default"),
                egress_public_network_access=access,
                app_insights_enabled=True,
                data_collector=collector,
                description=f"{args.model_name} version {version}",
            ),
            tags=args.tags,
            opts=ResourceOptions(parent=self),
        )

    def _autoscale(
        self,
        name: str,
        args: ModelEndpointArgs,
        endpoint: ml.OnlineEndpoint,
        deployment: ml.OnlineDeployment,
        version: str,
    ) -> None:
        def rule(
            metric: str,
            op: str,
            threshold: float,
            direction: str,
            cooldown: str,
            per_instance: bool = False,
        ) -> monitor.ScaleRuleArgs:
            # RequestsPerMinute is an endpoint metric, split by its `deployment` dimension.
            on_endpoint = metric == "RequestsPerMinute"
            dimensions = (
                [
                    monitor.ScaleRuleMetricDimensionArgs(
                        dimension_name="deployment",
                        operator="Equals",
                        values=[deployment_name(version)],
                    )
                ]
                if on_endpoint
                else None
            )
            return monitor.ScaleRuleArgs(
                metric_trigger=monitor.MetricTriggerArgs(
                    metric_name=metric,
                    metric_resource_uri=endpoint.id if on_endpoint else deployment.id,
                    dimensions=dimensions,
                    operator=op,
                    statistic="Average",
                    threshold=threshold,
                    time_aggregation="Average",
                    time_grain="PT1M",
                    time_window="PT5M",
                    divide_per_instance=per_instance,
                ),
                scale_action=monitor.ScaleActionArgs(
                    direction=direction, type="ChangeCount", value="1", cooldown=cooldown
                ),
            )

        monitor.AutoscaleSetting(
            f"{name}-v{version}-autoscale",
            resource_group_name=args.resource_group_name,
            location=args.location,
            enabled=True,
            target_resource_uri=deployment.id,
            profiles=[
                monitor.AutoscaleProfileArgs(
                    name="default",
                    capacity=monitor.ScaleCapacityArgs(
                        minimum=str(args.min_instances),
                        maximum=str(args.max_instances),
                        default=str(args.min_instances),
                    ),
                    rules=[
                        rule("CpuUtilizationPercentage", "GreaterThan", 70, "Increase", "PT5M"),
                        rule(
                            "RequestsPerMinute",
                            "GreaterThan",
                            args.target_requests_per_instance,
                            "Increase",
                            "PT5M",
                            True,
                        ),
                        rule("CpuUtilizationPercentage", "LessThan", 25, "Decrease", "PT10M"),
                    ],
                )
            ],
            tags=args.tags,
            opts=ResourceOptions(parent=self),
        )
