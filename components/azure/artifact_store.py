"""Artifact store: a StorageV2 account for data, models, captured traffic and dead letters.

TLS 1.2 minimum, HTTPS only, no public blob access, shared-key access off (the workspace
reaches its datastores with its managed identity), blob versioning with soft delete and a
lifecycle rule expiring replaced versions. Protected from `pulumi destroy` in prod. The account
doubles as the workspace's default storage, which is why it is not HNS-enabled (Azure ML does
not accept a hierarchical-namespace account there, and blob versioning needs a flat one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import storage

from components.azure._common import alnum_name, check, raise_if
from core.config import STORE_DEFAULTS

CONTAINERS: tuple[str, ...] = (
    "raw",
    "artifacts",
    "captures",
    "monitoring",
    "deadletters",
    "functions",
)
"""raw: incoming training data (watched by the data-change trigger); artifacts: pipeline outputs
and models; captures: endpoint data collection; monitoring: drift reports; deadletters: Event
Grid deliveries that failed; functions: the event forwarder's code package."""

REDUNDANCY = ("Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_GZRS")


@dataclass(frozen=True)
class ArtifactStoreArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    location: str
    """Azure location of the account."""
    resource_group_name: pulumi.Input[str]
    """Resource group the account is created in."""
    redundancy: str = "Standard_ZRS"
    """Replication SKU: one of Standard_LRS, Standard_ZRS, Standard_GRS, Standard_GZRS."""
    private: bool = True
    """Deny public network access (reached through private endpoints)."""
    soft_delete_days: int = 30
    """Days a deleted blob or container can be restored (1 to 365)."""
    noncurrent_days: int = 90
    """Days a replaced blob version is kept before the lifecycle rule deletes it."""
    protect: bool = STORE_DEFAULTS.protect
    """Protect the account from `pulumi destroy` (prod)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def validate_artifact_store_args(args: ArtifactStoreArgs) -> None:
    problems: list[str] = []
    check(
        problems,
        args.redundancy in REDUNDANCY,
        "redundancy",
        args.redundancy,
        f"one of {', '.join(REDUNDANCY)}",
        "pass a supported storage SKU",
    )
    check(
        problems,
        1 <= args.soft_delete_days <= 365,
        "soft_delete_days",
        args.soft_delete_days,
        "between 1 and 365",
        "pass a soft-delete retention from 1 to 365 days",
    )
    check(
        problems,
        1 <= args.noncurrent_days <= 3650,
        "noncurrent_days",
        args.noncurrent_days,
        "between 1 and 3650",
        "set stores.noncurrentDays in Pulumi.<stack>.yaml",
    )
    raise_if("ArtifactStore", problems)


class ArtifactStore(pulumi.ComponentResource):
    """Versioned, soft-deleting storage account and its containers."""

    account_id: pulumi.Output[str]
    account_name: pulumi.Output[str]
    uri: pulumi.Output[str]
    """abfss:// URI of the artifacts container."""
    container_ids: dict[str, pulumi.Output[str]]
    """Resource id per container (scopes of container-level role grants)."""

    def __init__(self, name: str, args: ArtifactStoreArgs, opts: ResourceOptions | None = None):
        validate_artifact_store_args(args)
        super().__init__("mlops:azure:ArtifactStore", name, None, opts)
        child = ResourceOptions(parent=self)
        keep = ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)

        account = storage.StorageAccount(
            f"{name}-account",
            account_name=alnum_name("st", args.prefix, args.location, 24),
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="StorageV2",
            sku=storage.SkuArgs(name=args.redundancy),
            minimum_tls_version="TLS1_2",
            enable_https_traffic_only=True,
            allow_blob_public_access=False,
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            public_network_access="Disabled" if args.private else "Enabled",
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action="Deny" if args.private else "Allow",
                bypass="AzureServices",
            ),
            encryption=storage.EncryptionArgs(
                key_source="Microsoft.Storage",
                require_infrastructure_encryption=True,
            ),
            tags=args.tags,
            opts=keep,
        )
        blob_service = storage.BlobServiceProperties(
            f"{name}-blob-service",
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            blob_services_name="default",
            is_versioning_enabled=True,
            change_feed=storage.ChangeFeedArgs(enabled=True),
            delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.soft_delete_days
            ),
            container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.soft_delete_days
            ),
            opts=keep,
        )
        storage.ManagementPolicy(
            f"{name}-lifecycle",
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            management_policy_name="default",
            policy=storage.ManagementPolicySchemaArgs(
                rules=[
                    storage.ManagementPolicyRuleArgs(
                        name="expire-noncurrent-versions",
                        type="Lifecycle",
                        enabled=True,
                        definition=storage.ManagementPolicyDefinitionArgs(
                            filters=storage.ManagementPolicyFilterArgs(blob_types=["blockBlob"]),
                            actions=storage.ManagementPolicyActionArgs(
                                version=storage.ManagementPolicyVersionArgs(
                                    delete=storage.DateAfterCreationArgs(
                                        days_after_creation_greater_than=args.noncurrent_days
                                    )
                                )
                            ),
                        ),
                    )
                ]
            ),
            opts=child,
        )
        self.container_ids = {}
        for container in CONTAINERS:
            self.container_ids[container] = storage.BlobContainer(
                f"{name}-{container}",
                container_name=container,
                account_name=account.name,
                resource_group_name=args.resource_group_name,
                public_access="None",
                opts=ResourceOptions(
                    parent=self,
                    protect=args.protect,
                    retain_on_delete=args.protect,
                    depends_on=[blob_service],
                ),
            ).id

        self.account_id = account.id
        self.account_name = account.name
        self.uri = pulumi.Output.concat(
            "abfss://artifacts@", account.name, ".dfs.core.windows.net/"
        )
        self.register_outputs({"accountId": account.id, "uri": self.uri})
