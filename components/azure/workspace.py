"""Workspace: the Azure ML workspace, which is also the MLflow-compatible tracking server and
model registry of the stack.

Private mode: public network access disabled, a managed network that allows approved outbound
only (Azure ML adds the private endpoints to the workspace's own storage, vault and registry),
and the workspace's data encrypted with the customer-managed key. The workspace reaches its
storage with its identity (`systemDatastoresAuthMode: Identity`), so the storage account can
keep shared keys off. The duty identities get AzureML Data Scientist on this workspace only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import authorization
from pulumi_azure_native import machinelearningservices as ml

from components.azure._common import check, raise_if, role_definition_id

WORKSPACE_DUTIES = ("pipeline", "release", "monitoring")
"""Duties granted AzureML Data Scientist on the workspace (submit jobs, read and register models,
run monitors)."""


@dataclass(frozen=True)
class MlWorkspaceArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    location: str
    """Azure location of the workspace."""
    resource_group_name: pulumi.Input[str]
    """Resource group the workspace is created in."""
    subscription_id: pulumi.Input[str]
    """Subscription whose built-in role definitions are assigned."""
    storage_account_id: pulumi.Input[str]
    """Default storage (the artifact store)."""
    vault_id: pulumi.Input[str]
    """Key Vault of the workspace."""
    registry_id: pulumi.Input[str]
    """Container registry of the workspace."""
    app_insights_id: pulumi.Input[str]
    """Application Insights of the workspace."""
    identity_id: pulumi.Input[str]
    """User-assigned identity the workspace runs as."""
    identity_client_id: pulumi.Input[str]
    """Client id of that identity (used to unwrap the customer-managed key)."""
    duty_principal_ids: dict[str, pulumi.Input[str]]
    """Object ids of the pipeline, release and monitoring identities."""
    cmk_key_id: pulumi.Input[str] | None = None
    """Versioned key URI of the customer-managed key; None: Microsoft-managed keys."""
    private: bool = True
    """Disable public network access and allow approved outbound traffic only."""
    protect: bool = False
    """Protect the workspace and retain it on delete (stores.protect): it holds the model
    registry, and deleting (or replacing) it deletes every registered model."""
    outbound_fqdns: tuple[str, ...] = ()
    """Extra FQDNs the managed network may reach (an Azure Firewall is added when set)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def validate_workspace_args(args: MlWorkspaceArgs) -> None:
    problems: list[str] = []
    missing = [d for d in WORKSPACE_DUTIES if d not in args.duty_principal_ids]
    check(
        problems,
        not missing,
        "duty_principal_ids",
        sorted(args.duty_principal_ids),
        f"a mapping with {', '.join(WORKSPACE_DUTIES)}",
        "pass Identities.principal_ids",
    )
    check(
        problems,
        not (args.private and args.cmk_key_id is None),
        "cmk_key_id",
        args.cmk_key_id,
        "set, which private (prod) mode requires",
        "pass KeysAndSecrets.key_id with customer_managed_key=True",
    )
    bad = [f for f in args.outbound_fqdns if not f or " " in f or "/" in f]
    check(
        problems,
        not bad,
        "outbound_fqdns",
        bad,
        "host names such as pypi.org",
        "pass bare host names",
    )
    raise_if("MlWorkspace", problems)


class MlWorkspace(pulumi.ComponentResource):
    """Azure ML workspace with managed network, CMK and workspace-scoped duty roles."""

    workspace_id: pulumi.Output[str]
    workspace_name: pulumi.Output[str]
    tracking_uri: pulumi.Output[str]

    def __init__(self, name: str, args: MlWorkspaceArgs, opts: ResourceOptions | None = None):
        validate_workspace_args(args)
        super().__init__("mlops:azure:MlWorkspace", name, None, opts)
        child = ResourceOptions(parent=self)
        encryption = None
        if args.cmk_key_id is not None:
            encryption = ml.EncryptionPropertyArgs(
                status="Enabled",
                key_vault_properties=ml.KeyVaultPropertiesArgs(
                    key_identifier=args.cmk_key_id,
                    key_vault_arm_id=args.vault_id,
                    identity_client_id=args.identity_client_id,
                ),
                identity=ml.IdentityForCmkArgs(user_assigned_identity=args.identity_id),
            )
        rules = {
            f"fqdn-{i}": ml.FqdnOutboundRuleArgs(
                type="FQDN", category="UserDefined", destination=fqdn
            )
            for i, fqdn in enumerate(args.outbound_fqdns)
        }
        workspace = ml.Workspace(
            f"{name}-mlw",
            workspace_name=f"mlw-{args.prefix}",
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="Default",
            sku=ml.SkuArgs(name="Basic", tier="Basic"),
            friendly_name=f"{args.prefix} MLOps workspace",
            identity=ml.ManagedServiceIdentityArgs(
                type="UserAssigned", user_assigned_identities=[args.identity_id]
            ),
            primary_user_assigned_identity=args.identity_id,
            storage_account=args.storage_account_id,
            key_vault=args.vault_id,
            container_registry=args.registry_id,
            application_insights=args.app_insights_id,
            system_datastores_auth_mode="Identity",
            public_network_access="Disabled" if args.private else "Enabled",
            managed_network=ml.ManagedNetworkSettingsArgs(
                isolation_mode="AllowOnlyApprovedOutbound"
                if args.private
                else "AllowInternetOutbound",
                outbound_rules=rules or None,
            ),
            encryption=encryption,
            hbi_workspace=args.cmk_key_id is not None,
            v1_legacy_mode=False,
            tags=args.tags,
            opts=ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        for duty in WORKSPACE_DUTIES:
            authorization.RoleAssignment(
                f"{name}-{duty}-data-scientist",
                principal_id=args.duty_principal_ids[duty],
                principal_type="ServicePrincipal",
                role_definition_id=role_definition_id(
                    args.subscription_id, "AzureML Data Scientist"
                ),
                scope=workspace.id,
                description=f"{args.prefix} {duty}: AzureML Data Scientist on the workspace",
                opts=child,
            )
        self.workspace_id = workspace.id
        self.workspace_name = workspace.name
        self.tracking_uri = workspace.ml_flow_tracking_uri
        self.register_outputs({"workspaceId": workspace.id, "trackingUri": self.tracking_uri})
