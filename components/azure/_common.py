"""Small helpers shared by the Azure components: naming rules, built-in role ids, validation.

Azure names are global for storage accounts, key vaults, registries and function apps, so
those carry a short hash of the stack prefix and location: stable across updates, distinct
between clients and regions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import pulumi

from core.errors import problem, raise_problems

# Built-in Azure RBAC role definition ids (GUIDs are the same in every tenant).
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
ROLES: dict[str, str] = {
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Queue Data Message Sender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "Key Vault Administrator": "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Crypto Service Encryption User": "e147488a-f6f5-4113-8e2d-b22465e65bf6",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "Monitoring Contributor": "749f88d5-cbae-40b8-bcfc-e573ddc772fa",
    "Monitoring Reader": "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
}
# Roles never granted by this kit (they allow granting further access).
FORBIDDEN_ROLES = ("Owner", "User Access Administrator")

_SUFFIX_LEN = 6


def short_hash(*parts: str) -> str:
    """A stable 6-character suffix for globally unique names."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:_SUFFIX_LEN]


def alnum_name(prefix: str, stack_prefix: str, location: str, max_len: int) -> str:
    """`<prefix><client><env><hash>`: lowercase letters and digits only (storage, ACR)."""
    body = re.sub(r"[^a-z0-9]", "", stack_prefix.lower())
    room = max_len - len(prefix) - _SUFFIX_LEN
    return f"{prefix}{body[:room]}{short_hash(stack_prefix, location)}"


def dashed_name(prefix: str, stack_prefix: str, location: str, max_len: int) -> str:
    """`<prefix>-<client>-<env>-<hash>` cut to max_len (Key Vault, function app, endpoint)."""
    room = max_len - len(prefix) - _SUFFIX_LEN - 2
    return f"{prefix}-{stack_prefix[:room].rstrip('-')}-{short_hash(stack_prefix, location)}"


def role_definition_id(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    """The full role definition id of a built-in role in the stack's subscription."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(sorted(ROLES))}")
    guid = ROLES[role]
    return pulumi.Output.concat(
        "/subscriptions/",
        subscription_id,
        "/providers/Microsoft.Authorization/roleDefinitions/",
        guid,
    )


def check(problems: list[str], ok: bool, field: str, value: Any, allowed: str, fix: str) -> None:
    """Append `<field>=<value> is not <allowed>; <fix>` when `ok` is false."""
    if not ok:
        problems.append(problem(field, value, allowed, fix))


def raise_if(component: str, problems: Iterable[str]) -> None:
    """Raise one ArgsError listing every problem of a component's args."""
    raise_problems(component, problems)


AZURE_LOCATION = re.compile(r"^[a-z]+[a-z0-9]*$")
