"""The stack's resource group, Log Analytics workspace and Application Insights.

Every other Azure component lives in this resource group; the budget is scoped to it, and the
workspace and endpoints send their logs and metrics to the Log Analytics workspace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import applicationinsights, authorization, operationalinsights, resources

from components.azure._common import AZURE_LOCATION, check, raise_if


@dataclass(frozen=True)
class FoundationArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    location: str
    """Azure location of the stack, e.g. westeurope."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""
    log_retention_days: int = 30
    """Days Log Analytics keeps logs (30 to 730)."""


def validate_foundation_args(args: FoundationArgs) -> None:
    problems: list[str] = []
    check(
        problems,
        bool(AZURE_LOCATION.match(args.location)),
        "location",
        args.location,
        "an Azure location such as westeurope",
        "set mlops:region in Pulumi.<stack>.yaml",
    )
    check(
        problems,
        30 <= args.log_retention_days <= 730,
        "log_retention_days",
        args.log_retention_days,
        "between 30 and 730",
        "pass a retention from 30 to 730 days",
    )
    check(
        problems,
        bool(args.prefix),
        "prefix",
        args.prefix,
        "a non-empty name prefix",
        "pass settings.prefix",
    )
    raise_if("Foundation", problems)


class Foundation(pulumi.ComponentResource):
    """Resource group, Log Analytics workspace and workspace-based Application Insights."""

    resource_group_name: pulumi.Output[str]
    resource_group_id: pulumi.Output[str]
    log_workspace_id: pulumi.Output[str]
    app_insights_id: pulumi.Output[str]
    subscription_id: pulumi.Output[str]
    tenant_id: pulumi.Output[str]

    def __init__(self, name: str, args: FoundationArgs, opts: ResourceOptions | None = None):
        validate_foundation_args(args)
        super().__init__("mlops:azure:Foundation", name, None, opts)
        child = ResourceOptions(parent=self)

        group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=f"rg-{args.prefix}",
            location=args.location,
            tags=args.tags,
            opts=child,
        )
        logs = operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=f"log-{args.prefix}",
            resource_group_name=group.name,
            location=args.location,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=args.log_retention_days,
            tags=args.tags,
            opts=child,
        )
        insights = applicationinsights.Component(
            f"{name}-appi",
            resource_name_=f"appi-{args.prefix}",
            resource_group_name=group.name,
            location=args.location,
            kind="web",
            application_type="web",
            ingestion_mode="LogAnalytics",
            workspace_resource_id=logs.id,
            disable_local_auth=True,
            tags=args.tags,
            opts=child,
        )
        client = authorization.get_client_config_output()
        self.subscription_id = client.subscription_id
        self.tenant_id = client.tenant_id
        self.resource_group_name = group.name
        self.resource_group_id = group.id
        self.log_workspace_id = logs.id
        self.app_insights_id = insights.id
        self.register_outputs(
            {
                "resourceGroupName": group.name,
                "logWorkspaceId": logs.id,
                "appInsightsId": insights.id,
            }
        )
