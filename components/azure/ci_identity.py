"""CI identity: a user-assigned managed identity that CI signs in as with a federated
credential (GitHub OIDC), so CI stores no client secret.

The credential trusts exactly one subject: the protected environment (`ci.environment`) of
`release.repository`, or without one its branch (`ci.branch`). The identity is Contributor on
the stack's resource group only, and may assign only the built-in roles the kit itself
assigns (Role Based Access Control Administrator with a condition naming those role ids), so
it cannot grant Owner or itself more.

Azure DevOps signs in through a workload-identity service connection, which Azure DevOps
creates with its own issuer and subject; point it at this identity by hand (docs/releases.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import authorization, managedidentity

from components.azure._common import ROLES, check, raise_if, role_definition_id

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
AUDIENCE = "api://AzureADTokenExchange"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"  # Role Based Access Control Administrator
ASSIGNABLE = tuple(
    r for r in ROLES if r not in ("Contributor",)
)  # the roles the stack's components assign


@dataclass(frozen=True)
class CiIdentityArgs:
    prefix: str
    """`<client>-<env>`: the identity is `id-<prefix>-ci`."""
    location: str
    """Azure location of the identity."""
    resource_group_name: pulumi.Input[str]
    """Resource group of the stack (where the identity lives)."""
    resource_group_id: pulumi.Input[str]
    """Scope of the identity's grants: the stack's resource group, nothing wider."""
    subscription_id: pulumi.Input[str]
    """Subscription whose built-in role definitions are assigned."""
    repository: str
    """`owner/repo` whose workflows may sign in (release.repository)."""
    branch: str = "main"
    """Branch allowed to sign in when `environment` is None (ci.branch)."""
    environment: str | None = None
    """GitHub environment allowed to sign in (ci.environment); when set, only it may."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags on the identity."""


def subject(args: CiIdentityArgs) -> str:
    if args.environment:
        return f"repo:{args.repository}:environment:{args.environment}"
    return f"repo:{args.repository}:ref:refs/heads/{args.branch}"


def validate_ci_identity_args(args: CiIdentityArgs) -> None:
    problems: list[str] = []
    check(
        problems,
        bool(re.fullmatch(r"[\w.-]+/[\w.-]+", args.repository or "")),
        "repository",
        args.repository,
        "owner/repo",
        "set release.repository",
    )
    check(
        problems,
        "*" not in args.branch + (args.environment or ""),
        "branch/environment",
        f"{args.branch}/{args.environment}",
        "free of wildcards",
        "name one branch (ci.branch) or one environment (ci.environment)",
    )
    raise_if("CiIdentity", problems)


def assign_condition() -> str:
    """ABAC condition: role assignments may be written only for the kit's roles."""
    guids = ", ".join(ROLES[r] for r in ASSIGNABLE)
    action = "Microsoft.Authorization/roleAssignments"
    return (
        f"((!(ActionMatches{{'{action}/write'}})) OR "
        f"(@Request[{action}:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{guids}}})) AND "
        f"((!(ActionMatches{{'{action}/delete'}})) OR "
        f"(@Resource[{action}:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{guids}}}))"
    )


class CiIdentity(pulumi.ComponentResource):
    """Managed identity + GitHub federated credential + resource-group-scoped grants."""

    client_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]
    subject: str

    def __init__(self, name: str, args: CiIdentityArgs, opts: ResourceOptions | None = None):
        validate_ci_identity_args(args)
        super().__init__("mlops:azure:CiIdentity", name, None, opts)
        child = ResourceOptions(parent=self)
        identity_name = f"id-{args.prefix}-ci"
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=identity_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags={**args.tags, "mlops:duty": "ci"},
            opts=child,
        )
        self.subject = subject(args)
        managedidentity.FederatedIdentityCredential(
            f"{name}-github",
            federated_identity_credential_resource_name="github",
            resource_name_=identity.name,
            resource_group_name=args.resource_group_name,
            issuer=GITHUB_ISSUER,
            subject=self.subject,
            audiences=[AUDIENCE],
            opts=ResourceOptions(parent=self, depends_on=[identity]),
        )
        authorization.RoleAssignment(
            f"{name}-contributor",
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=role_definition_id(args.subscription_id, "Contributor"),
            scope=args.resource_group_id,
            description=f"{args.prefix} CI deploys the stack's resource group",
            opts=child,
        )
        authorization.RoleAssignment(
            f"{name}-assign-kit-roles",
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=pulumi.Output.concat(
                "/subscriptions/",
                args.subscription_id,
                "/providers/Microsoft.Authorization/roleDefinitions/",
                RBAC_ADMIN,
            ),
            scope=args.resource_group_id,
            condition=assign_condition(),
            condition_version="2.0",
            description=f"{args.prefix} CI may assign only the kit's built-in roles",
            opts=child,
        )
        self.client_id = identity.client_id
        self.principal_id = identity.principal_id
        self.register_outputs({"clientId": self.client_id})
