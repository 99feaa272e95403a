"""Keys and secrets: a Key Vault with RBAC authorization, purge protection and soft delete, a
customer-managed key for the Azure ML workspace, and the CI token as a vault secret.

Access goes through Azure RBAC only (no access policies); the duty identities are granted
vault roles in `identities.py`, scoped to this vault.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import keyvault

from components.azure._common import check, dashed_name, raise_if
from core.config import STORE_DEFAULTS


@dataclass(frozen=True)
class KeysAndSecretsArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    location: str
    """Azure location of the vault."""
    resource_group_name: pulumi.Input[str]
    """Resource group the vault is created in."""
    tenant_id: pulumi.Input[str]
    """Entra ID tenant that authenticates requests to the vault."""
    customer_managed_key: bool = True
    """Create an RSA key the workspace encrypts its data with (off only to save cost in dev)."""
    private: bool = True
    """Deny public network access (reached through a private endpoint)."""
    soft_delete_days: int = 90
    """Days a deleted vault, key or secret can be recovered (7 to 90)."""
    release_token: pulumi.Input[str] | None = None
    """CI token stored as the `release-token` secret; None: no secret."""
    release_token_expires_on: datetime.date | None = None
    """Date the CI token expires: the secret's expiry (required with `release_token`)."""
    protect: bool = STORE_DEFAULTS.protect
    """Protect the vault and key from `pulumi destroy` (prod)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def expires_epoch(day: datetime.date | None) -> int | None:
    """Key Vault's `expires`: seconds since the epoch, the end of `day` in UTC."""
    if day is None:
        return None
    end = datetime.datetime.combine(day, datetime.time(23, 59, 59), tzinfo=datetime.UTC)
    return int(end.timestamp())


def validate_keys_args(args: KeysAndSecretsArgs) -> None:
    problems: list[str] = []
    check(
        problems,
        7 <= args.soft_delete_days <= 90,
        "soft_delete_days",
        args.soft_delete_days,
        "between 7 and 90",
        "pass a soft-delete retention from 7 to 90 days",
    )
    check(
        problems,
        bool(args.prefix),
        "prefix",
        args.prefix,
        "a non-empty name prefix",
        "pass settings.prefix",
    )
    check(
        problems,
        args.release_token is None or args.release_token_expires_on is not None,
        "release_token_expires_on",
        args.release_token_expires_on,
        "the date the CI token expires",
        "set release.tokenExpiresOn in Pulumi.<stack>.yaml to the token's expiry date "
        "(README, Security changes: rotating the CI token)",
    )
    raise_if("KeysAndSecrets", problems)


class KeysAndSecrets(pulumi.ComponentResource):
    """Key Vault (RBAC, purge protection, soft delete), workspace CMK and the CI token."""

    vault_id: pulumi.Output[str]
    vault_name: pulumi.Output[str]
    vault_uri: pulumi.Output[str]
    key_id: pulumi.Output[str]
    """Versioned key URI of the CMK ("" when customer_managed_key is off)."""
    release_token_secret_uri: pulumi.Output[str] | None

    def __init__(self, name: str, args: KeysAndSecretsArgs, opts: ResourceOptions | None = None):
        validate_keys_args(args)
        super().__init__("mlops:azure:KeysAndSecrets", name, None, opts)
        child = ResourceOptions(parent=self)
        keep = ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)

        vault = keyvault.Vault(
            f"{name}-vault",
            vault_name=dashed_name("kv", args.prefix, args.location, 24),
            resource_group_name=args.resource_group_name,
            location=args.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family="A", name="standard"),
                enable_rbac_authorization=True,
                enable_purge_protection=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=args.soft_delete_days,
                public_network_access="Disabled" if args.private else "Enabled",
                network_acls=keyvault.NetworkRuleSetArgs(
                    default_action="Deny" if args.private else "Allow",
                    bypass="AzureServices",
                ),
            ),
            tags=args.tags,
            opts=keep,
        )
        key_id: pulumi.Output[str] = pulumi.Output.from_input("")
        if args.customer_managed_key:
            key = keyvault.Key(
                f"{name}-cmk",
                key_name="workspace-cmk",
                vault_name=vault.name,
                resource_group_name=args.resource_group_name,
                properties=keyvault.KeyPropertiesArgs(
                    kty="RSA",
                    key_size=3072,
                    key_ops=["wrapKey", "unwrapKey"],
                    rotation_policy=keyvault.RotationPolicyArgs(
                        attributes=keyvault.KeyRotationPolicyAttributesArgs(expiry_time="P2Y"),
                        lifetime_actions=[
                            keyvault.LifetimeActionArgs(
                                action=keyvault.ActionArgs(type="rotate"),
                                trigger=keyvault.TriggerArgs(time_before_expiry="P30D"),
                            )
                        ],
                    ),
                ),
                tags=args.tags,
                opts=keep,
            )
            key_id = key.key_uri_with_version
        self.release_token_secret_uri = None
        if args.release_token is not None:
            secret = keyvault.Secret(
                f"{name}-release-token",
                secret_name="release-token",
                vault_name=vault.name,
                resource_group_name=args.resource_group_name,
                properties=keyvault.SecretPropertiesArgs(
                    value=pulumi.Output.secret(args.release_token),
                    content_type="text/plain",
                    attributes=keyvault.SecretAttributesArgs(
                        enabled=True, expires=expires_epoch(args.release_token_expires_on)
                    ),
                ),
                # the same date, readable where the secret's properties are not (plan, portal)
                tags={**args.tags, "mlops-expires-on": str(args.release_token_expires_on)},
                opts=child,
            )
            self.release_token_secret_uri = secret.properties.secret_uri

        self.vault_id = vault.id
        self.vault_name = vault.name
        self.vault_uri = vault.properties.vault_uri
        self.key_id = key_id
        self.register_outputs({"vaultId": vault.id, "vaultUri": self.vault_uri, "keyId": key_id})
