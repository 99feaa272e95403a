"""Container registry: Azure Container Registry for the training and serving images.

The admin user is off (pushes and pulls use Entra ID identities with AcrPush / AcrPull scoped
to this registry) and anonymous pull is off. In private mode the registry is Premium, so it can
take a private endpoint, has public network access disabled, keeps untagged manifests for a
retention period and blocks exports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import containerregistry

from components.azure._common import check, raise_if
from core.config import STORE_DEFAULTS

SKUS = ("Basic", "Standard", "Premium")


def registry_name(prefix: str) -> str:
    """`<client><env>acr`, e.g. contosoprodacr (the host CI pushes the kit image to)."""
    return re.sub(r"[^a-z0-9]", "", prefix.lower())[:47] + "acr"


@dataclass(frozen=True)
class ContainerRegistryArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    location: str
    """Azure location of the registry."""
    resource_group_name: pulumi.Input[str]
    """Resource group the registry is created in."""
    sku: str = "Premium"
    """Basic, Standard or Premium; private mode needs Premium (private endpoints)."""
    private: bool = True
    """Deny public network access (reached through a private endpoint)."""
    untagged_retention_days: int = 30
    """Days untagged manifests are kept (Premium only)."""
    protect: bool = STORE_DEFAULTS.protect
    """Protect the registry from `pulumi destroy` (prod)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def validate_registry_args(args: ContainerRegistryArgs) -> None:
    problems: list[str] = []
    check(
        problems,
        args.sku in SKUS,
        "sku",
        args.sku,
        f"one of {', '.join(SKUS)}",
        "pass a supported ACR SKU",
    )
    check(
        problems,
        not (args.private and args.sku != "Premium"),
        "sku",
        args.sku,
        "Premium, which private mode needs for private endpoints",
        "pass sku='Premium' or private=False",
    )
    check(
        problems,
        0 <= args.untagged_retention_days <= 365,
        "untagged_retention_days",
        args.untagged_retention_days,
        "between 0 and 365",
        "pass 0 to 365 days",
    )
    raise_if("ContainerRegistry", problems)


class ContainerRegistry(pulumi.ComponentResource):
    """ACR with admin user off; Premium with public access disabled in private mode."""

    registry_id: pulumi.Output[str]
    login_server: pulumi.Output[str]

    def __init__(self, name: str, args: ContainerRegistryArgs, opts: ResourceOptions | None = None):
        validate_registry_args(args)
        super().__init__("mlops:azure:ContainerRegistry", name, None, opts)
        premium = args.sku == "Premium"
        registry = containerregistry.Registry(
            f"{name}-acr",
            registry_name=registry_name(args.prefix),
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=containerregistry.SkuArgs(name=args.sku),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            public_network_access="Disabled" if args.private else "Enabled",
            network_rule_bypass_options="AzureServices",
            zone_redundancy="Enabled" if premium and args.private else "Disabled",
            policies=containerregistry.PoliciesArgs(
                retention_policy=containerregistry.RetentionPolicyArgs(
                    days=args.untagged_retention_days, status="enabled"
                ),
                export_policy=containerregistry.ExportPolicyArgs(
                    status="disabled" if args.private else "enabled"
                ),
            )
            if premium
            else None,
            tags=args.tags,
            opts=ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        self.registry_id = registry.id
        self.login_server = registry.login_server
        self.register_outputs({"registryId": registry.id, "loginServer": registry.login_server})
