"""Identities: one user-assigned managed identity per duty, each granted only the roles its duty
needs, scoped to the stack's own resources (never a subscription or resource group).

| duty       | grants (scope)                                                                 |
|------------|--------------------------------------------------------------------------------|
| workspace  | Contributor + Storage Blob Data Contributor (storage), Contributor (registry,    |
|            | App Insights), Key Vault Administrator + Crypto Service Encryption User (vault) |
| pipeline   | Storage Blob Data Contributor (storage), AcrPull (registry), KV Secrets User      |
| serving    | Storage Blob Data Reader (storage), AcrPull (registry)                            |
| release    | Storage Blob Data Contributor + Queue Data Contributor (storage), KV Secrets User |
| monitoring | Storage Blob Data Contributor (storage)                                          |

Workspace-scoped roles (AzureML Data Scientist) are granted by the workspace component, which
owns that scope. The role definition GUIDs are Azure's built-in ones (`_common.ROLES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import authorization, managedidentity

from components.azure._common import ROLES, check, raise_if, role_definition_id

DUTIES: tuple[str, ...] = ("workspace", "pipeline", "serving", "release", "monitoring")
SCOPES: tuple[str, ...] = ("storage", "vault", "registry", "insights")

GRANTS: tuple[tuple[str, str, str], ...] = (
    ("workspace", "Contributor", "storage"),
    ("workspace", "Storage Blob Data Contributor", "storage"),
    ("workspace", "Contributor", "registry"),
    ("workspace", "Contributor", "insights"),
    ("workspace", "Key Vault Administrator", "vault"),
    ("workspace", "Key Vault Crypto Service Encryption User", "vault"),
    ("pipeline", "Storage Blob Data Contributor", "storage"),
    ("pipeline", "AcrPull", "registry"),
    ("pipeline", "Key Vault Secrets User", "vault"),
    ("serving", "Storage Blob Data Reader", "storage"),
    ("serving", "AcrPull", "registry"),
    ("release", "Storage Blob Data Contributor", "storage"),
    ("release", "Storage Queue Data Contributor", "storage"),
    ("release", "Key Vault Secrets User", "vault"),
    ("monitoring", "Storage Blob Data Contributor", "storage"),
)
"""(duty, built-in role, scope) rows: the whole of what the identities may do outside the
workspace."""


@dataclass(frozen=True)
class IdentitiesArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    location: str
    """Azure location of the identities."""
    resource_group_name: pulumi.Input[str]
    """Resource group the identities are created in."""
    subscription_id: pulumi.Input[str]
    """Subscription whose built-in role definitions are assigned."""
    storage_account_id: pulumi.Input[str]
    """Artifact store account id (scope of the storage grants)."""
    vault_id: pulumi.Input[str]
    """Key Vault id (scope of the vault grants)."""
    registry_id: pulumi.Input[str]
    """Container registry id (scope of the registry grants)."""
    app_insights_id: pulumi.Input[str]
    """Application Insights id (scope of the workspace's insights grant)."""
    grants: tuple[tuple[str, str, str], ...] = GRANTS
    """(duty, role, scope) rows to assign; defaults to GRANTS."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def validate_identities_args(args: IdentitiesArgs) -> None:
    problems: list[str] = []
    for duty, role, scope in args.grants:
        check(
            problems,
            duty in DUTIES,
            "grants.duty",
            duty,
            f"one of {', '.join(DUTIES)}",
            "grant roles only to the stack's duty identities",
        )
        check(
            problems,
            role in ROLES,
            "grants.role",
            role,
            "a built-in role in _common.ROLES",
            "add the role's GUID to ROLES after review, or use a narrower listed role",
        )
        check(
            problems,
            scope in SCOPES,
            "grants.scope",
            scope,
            f"one of {', '.join(SCOPES)}",
            "scope grants to a stack resource, never the subscription or resource group",
        )
    raise_if("Identities", problems)


class Identities(pulumi.ComponentResource):
    """A user-assigned identity per duty and its resource-scoped role assignments."""

    ids: dict[str, pulumi.Output[str]]
    """Resource id per duty."""
    principal_ids: dict[str, pulumi.Output[str]]
    """Entra ID object id per duty."""
    client_ids: dict[str, pulumi.Output[str]]
    """Application (client) id per duty."""

    def __init__(self, name: str, args: IdentitiesArgs, opts: ResourceOptions | None = None):
        validate_identities_args(args)
        super().__init__("mlops:azure:Identities", name, None, opts)
        child = ResourceOptions(parent=self)
        identities = {
            duty: managedidentity.UserAssignedIdentity(
                f"{name}-{duty}",
                resource_name_=f"id-{args.prefix}-{duty}",
                resource_group_name=args.resource_group_name,
                location=args.location,
                tags=args.tags,
                opts=child,
            )
            for duty in DUTIES
        }
        scopes = {
            "storage": args.storage_account_id,
            "vault": args.vault_id,
            "registry": args.registry_id,
            "insights": args.app_insights_id,
        }
        for duty, role, scope in args.grants:
            slug = role.lower().replace(" ", "-")
            authorization.RoleAssignment(
                f"{name}-{duty}-{slug}-{scope}",
                principal_id=identities[duty].principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=role_definition_id(args.subscription_id, role),
                scope=scopes[scope],
                description=f"{args.prefix} {duty}: {role} on the stack's {scope}",
                opts=child,
            )
        self.ids = {d: i.id for d, i in identities.items()}
        self.principal_ids = {d: i.principal_id for d, i in identities.items()}
        self.client_ids = {d: i.client_id for d, i in identities.items()}
        self.register_outputs({f"{d}Id": i.id for d, i in identities.items()})
