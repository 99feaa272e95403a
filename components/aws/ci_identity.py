"""CI identity: keyless trust for the CI system that deploys this stack.

An IAM OIDC provider for GitHub Actions (`token.actions.githubusercontent.com`) and a deploy
role that only a workflow of `release.repository` can assume, and only from the protected
environment (`ci.environment`, e.g. prod) or, without one, from the branch (`ci.branch`):
the trust pins the token's `sub` exactly (StringEquals, no wildcards) and its audience.
Sessions last at most an hour; no IAM user or access key exists, so CI holds no long-lived
secret. The role may manage only resources named after the stack (`<prefix>-*`), plus the
id-named network and key calls Pulumi needs, limited to the stack's region.

It cannot make itself (or anything else) administrator, the standard pattern for IaC deploy
roles: every role it creates or changes must carry the stack's permissions boundary
(`components/aws/boundary.py`, condition `iam:PermissionsBoundary`); it may not change its own
role, change the boundary policy, or remove a boundary from any role; it creates no managed
policies; and it passes only the stack's duty roles, each only to the services that use it.
The control AWS-IAM-05 checks that no role of the stack can rewrite its own permissions.

The OIDC provider is one per account and URL: in an account that already has one, pass its
ARN as `oidc_provider_arn` (stack key `mlops:ci.oidcProviderArn`).

Azure DevOps (stack keys `mlops:ci.azureDevops.*`): pipelines that sign in with an AWS service
connection using OIDC (AWS Toolkit for Azure DevOps 1.15+, `AWSShellScript@1`) present a
workload identity federation token of their organization. The role then trusts a second
provider, `https://vstoken.dev.azure.com/<organization id>`, and a second statement pins that
token's `sub` to the one service connection, `sc://<organization>/<project>/<connection>`, and
its `aud` to `api://AzureADTokenExchange`, both StringEquals. Sources for those claims:
Microsoft's azure-pipelines-tasks docs/service-connections/azure-oidc/README.md (federation
subject `sc://<org>/<project>/<service connection name>`) and AWS's blog "How to federate into
AWS from Azure DevOps using OpenID Connect" (provider `vstoken.dev.azure.com/<organization
GUID>`, audience `api://AzureADTokenExchange`); the toolkit's `getOIDCToken`
(aws/aws-toolkit-azure-devops src/lib/awsConnectionParameters.ts) asks the Task API for the
service connection's token, as the Azure CLI tasks do. A stack released from Azure DevOps only
(`release.provider: azuredevops`) gets the role with the Azure DevOps statement alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.boundary import BOUNDARY_REWRITES
from components.aws.common import bad, child, partition, policy
from components.aws.identities import SERVICES_OF_DUTY
from core.config import AZURE_DEVOPS_ISSUER
from core.errors import raise_problems

GITHUB_ISSUER = "token.actions.githubusercontent.com"
# GitHub's published intermediate thumbprint; AWS no longer checks it for this issuer but the
# API still requires one.
GITHUB_THUMBPRINT = "6938fd4d98bab03faadb97b34396831e3780aea1"
AUDIENCE = "sts.amazonaws.com"
AZURE_DEVOPS_AUDIENCE = "api://AzureADTokenExchange"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Services whose resources the blueprint names `<prefix>-...`: granted on those names only.
NAMED_SERVICES = (
    "s3",
    "sagemaker",
    "ecr",
    "events",
    "scheduler",
    "sqs",
    "sns",
    "cloudwatch",
    "secretsmanager",
    "budgets",
    "application-autoscaling",
    "logs",
)
# Id-named resources (VPC parts, KMS keys): single actions, only in the stack's region.
ID_ACTIONS = (
    "ec2:Describe*",
    "ec2:Create*",
    "ec2:Delete*",
    "ec2:Modify*",
    "ec2:Associate*",
    "ec2:Disassociate*",
    "ec2:AuthorizeSecurityGroup*",
    "ec2:RevokeSecurityGroup*",
    "kms:CreateKey",
    "kms:Describe*",
    "kms:Get*",
    "kms:List*",
    "kms:EnableKeyRotation",
    "kms:PutKeyPolicy",
    "kms:TagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:GenerateDataKey*",
)
# IAM calls on the stack's roles that accept the `iam:PermissionsBoundary` condition key: allowed
# only when the target role carries the stack's boundary.
BOUNDED_ROLE_ACTIONS = (
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
)
# IAM calls on the stack's roles without that key (role lifecycle, trust, tags).
ROLE_LIFECYCLE_ACTIONS = (
    "iam:DeleteRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
)
IAM_READ_ACTIONS = (
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRoleTags",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListPolicyVersions",
    "iam:GetOpenIDConnectProvider",
)
# Never on its own role, whatever another statement allows.
OWN_ROLE_DENIED = (
    *BOUNDED_ROLE_ACTIONS[1:],
    *ROLE_LIFECYCLE_ACTIONS,
    "iam:DeleteRolePermissionsBoundary",
)


@dataclass(frozen=True)
class CiIdentityArgs:
    prefix: str
    """`<client>-<env>`: the role is `<prefix>-ci-deploy`; it manages `<prefix>-*` only."""
    repository: str | None
    """`owner/repo` whose GitHub workflows may assume the role (release.repository); None:
    no GitHub trust (then the Azure DevOps one below is required)."""
    account_id: pulumi.Input[str]
    """Account of the stack."""
    region: str
    """Region of the stack; id-named calls are limited to it."""
    branch: str = "main"
    """Branch whose workflows may deploy (ci.branch); used when `environment` is None."""
    environment: str | None = None
    """GitHub environment allowed to deploy (ci.environment); when set, only it may."""
    oidc_provider_arn: str | None = None
    """The account's existing GitHub OIDC provider; None creates one."""
    max_session_seconds: int = 3600
    """Longest session a workflow gets (900-3600)."""
    boundary_arn: pulumi.Input[str] | None = None
    """ARN of the stack's permissions boundary (components/aws/boundary.py); required."""
    ado_organization_id: str | None = None
    """Azure DevOps organization id (GUID) whose service connection may also assume the role
    (ci.azureDevops.organizationId); None: no Azure DevOps trust."""
    ado_organization: str | None = None
    """Azure DevOps organization name (ci.azureDevops.organization)."""
    ado_project: str | None = None
    """Azure DevOps project of the service connection (ci.azureDevops.project)."""
    ado_service_connection: str | None = None
    """Name of the AWS service connection (ci.azureDevops.serviceConnection)."""
    ado_oidc_provider_arn: str | None = None
    """The account's existing OIDC provider for the organization's issuer; None creates one."""


def azure_devops_issuer(args: CiIdentityArgs) -> str:
    """Host and path of the organization's token issuer: the IAM condition-key prefix."""
    return f"{AZURE_DEVOPS_ISSUER}/{args.ado_organization_id}"


def azure_devops_subject(args: CiIdentityArgs) -> str:
    """The exact `sub` claim the service connection's token carries."""
    return f"sc://{args.ado_organization}/{args.ado_project}/{args.ado_service_connection}"


def subject(args: CiIdentityArgs) -> str:
    """The exact `sub` claim a deploying workflow's token carries."""
    if args.environment:
        return f"repo:{args.repository}:environment:{args.environment}"
    return f"repo:{args.repository}:ref:refs/heads/{args.branch}"


def validate_ci_identity_args(args: CiIdentityArgs) -> None:
    problems = []
    ado = (
        args.ado_organization_id,
        args.ado_organization,
        args.ado_project,
        args.ado_service_connection,
    )
    if args.repository is None and not any(ado):
        problems.append(
            bad(
                "repository",
                None,
                "owner/repo, or an Azure DevOps service connection (ado_*)",
                "set release.repository (GitHub) or ci.azureDevops (Azure DevOps)",
            )
        )
    elif args.repository is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repository):
        problems.append(bad("repository", args.repository, "owner/repo", "set release.repository"))
    if any(ado):
        if not _GUID.match(args.ado_organization_id or ""):
            problems.append(
                bad(
                    "ado_organization_id",
                    args.ado_organization_id,
                    "a lowercase GUID",
                    "set ci.azureDevops.organizationId to the organization's id",
                )
            )
        names = (
            ("ado_organization", "organization", args.ado_organization),
            ("ado_project", "project", args.ado_project),
            ("ado_service_connection", "serviceConnection", args.ado_service_connection),
        )
        for field, key, value in names:
            if not value or set(value) & set('*?/"'):
                problems.append(
                    bad(
                        field,
                        value,
                        "a non-empty name free of wildcards (*, ?) and '/'",
                        f"set ci.azureDevops.{key} to the one name Azure DevOps shows",
                    )
                )
    if "*" in (args.branch + (args.environment or "")):
        problems.append(
            bad(
                "branch/environment",
                f"{args.branch}/{args.environment}",
                "free of wildcards",
                "name one branch (ci.branch) or one environment (ci.environment)",
            )
        )
    if not 900 <= args.max_session_seconds <= 3600:
        problems.append(
            bad("max_session_seconds", args.max_session_seconds, "900-3600", "use 3600 or less")
        )
    if args.boundary_arn is None:
        problems.append(
            bad(
                "boundary_arn",
                None,
                "the ARN of the stack's permissions boundary policy",
                "pass PermissionsBoundary(...).arn (components/aws/boundary.py)",
            )
        )
    if len(f"{args.prefix}-ci-deploy") > 64:
        problems.append(bad("prefix", args.prefix, "short enough for IAM", "shorten the client"))
    raise_problems("CiIdentity", problems)


class CiIdentity(pulumi.ComponentResource):
    """OIDC providers (optional) and a deploy role trusted by one GitHub repository subject
    and/or one Azure DevOps service connection subject."""

    role_arn: pulumi.Output[str]
    subject: str
    """The first trusted subject (GitHub's when there is one)."""
    subjects: tuple[str, ...]
    """Every subject the role trusts: GitHub's, then the Azure DevOps service connection's."""

    def __init__(self, name: str, args: CiIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        validate_ci_identity_args(args)
        super().__init__("mlops:aws:CiIdentity", name, None, opts)
        trust: list[dict] = []
        subjects: list[str] = []
        oidc_resources: list[str] = []

        def trust_issuer(
            key: str,
            issuer: str,
            audience: str,
            sub: str,
            existing: str | None,
            sid: str | None = None,
            **provider: Any,
        ) -> None:
            """Trust one exact `sub` of `issuer` (its IAM OIDC provider: `existing`, or one
            created here): StringEquals on `sub` and `aud`, no wildcards (AWS-CI-04)."""
            provider_arn: pulumi.Input[str] = existing or (
                aws.iam.OpenIdConnectProvider(
                    f"{name}-{key}-oidc",
                    url=f"https://{issuer}",
                    client_id_lists=[audience],
                    opts=child(self),
                    **provider,
                ).arn
            )
            subjects.append(sub)
            oidc_resources.append(issuer)
            condition = {"StringEquals": {f"{issuer}:aud": audience, f"{issuer}:sub": sub}}
            trust.append(
                {
                    **({"Sid": sid} if sid else {}),
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": condition,
                }
            )

        if args.repository is not None:
            trust_issuer(
                "github",
                GITHUB_ISSUER,
                AUDIENCE,
                subject(args),
                args.oidc_provider_arn,
                thumbprint_lists=[GITHUB_THUMBPRINT],
            )
        if args.ado_organization_id is not None:
            # No thumbprint: IAM fetches and checks the issuer's certificate itself.
            trust_issuer(
                "azure-devops",
                azure_devops_issuer(args),
                AZURE_DEVOPS_AUDIENCE,
                azure_devops_subject(args),
                args.ado_oidc_provider_arn,
                sid="AzureDevOpsServiceConnection",
            )
        self.subject = subjects[0]
        self.subjects = tuple(subjects)
        role = aws.iam.Role(
            f"{name}-deploy",
            name=f"{args.prefix}-ci-deploy",
            description=f"CI deploys {args.prefix} from {' or '.join(subjects)} (OIDC, no keys)",
            max_session_duration=args.max_session_seconds,
            assume_role_policy=policy(trust),
            tags={"mlops:duty": "ci"},
            opts=child(self),
        )
        p = partition(args.region)
        iam = pulumi.Output.concat("arn:", p, ":iam::", args.account_id, ":")
        stack_roles = pulumi.Output.concat(iam, "role/", args.prefix, "-*")
        own_role = pulumi.Output.concat(iam, "role/", args.prefix, "-ci-deploy")
        named = [
            f"arn:{p}:s3:::{args.prefix}-*",
            pulumi.Output.concat(
                "arn:", p, ":budgets::", args.account_id, ":budget/", args.prefix, "-*"
            ),
            pulumi.Output.concat(
                "arn:", p, ":*:", args.region, ":", args.account_id, ":*", args.prefix, "-*"
            ),
        ]
        passes: dict[tuple[str, ...], list[str]] = {}
        for duty, services in SERVICES_OF_DUTY.items():
            passes.setdefault(services, []).append(duty)
        aws.iam.RolePolicy(
            f"{name}-deploy",
            role=role.id,
            policy=policy(
                [
                    {
                        "Sid": "StackResourcesByName",
                        "Effect": "Allow",
                        "Action": [f"{s}:*" for s in NAMED_SERVICES],
                        "Resource": named,
                    },
                    {
                        "Sid": "IdNamedResourcesInTheStackRegion",
                        "Effect": "Allow",
                        "Action": list(ID_ACTIONS),
                        "Resource": "*",
                        "Condition": {"StringEquals": {"aws:RequestedRegion": args.region}},
                    },
                    {
                        "Sid": "ReadStackIam",
                        "Effect": "Allow",
                        "Action": list(IAM_READ_ACTIONS),
                        "Resource": [
                            stack_roles,
                            pulumi.Output.concat(iam, "policy/", args.prefix, "-*"),
                            *[
                                pulumi.Output.concat(iam, "oidc-provider/", o)
                                for o in oidc_resources
                            ],
                        ],
                    },
                    {
                        "Sid": "StackRolesCarryTheBoundary",
                        "Effect": "Allow",
                        "Action": list(BOUNDED_ROLE_ACTIONS),
                        "Resource": stack_roles,
                        "Condition": {
                            "StringEquals": {"iam:PermissionsBoundary": args.boundary_arn}
                        },
                    },
                    {
                        "Sid": "StackRolesLifecycle",
                        "Effect": "Allow",
                        "Action": list(ROLE_LIFECYCLE_ACTIONS),
                        "Resource": stack_roles,
                    },
                    *[
                        {
                            "Sid": "PassDutyRolesTo"
                            + "".join(s.split(".")[0].title().replace("-", "") for s in services),
                            "Effect": "Allow",
                            "Action": "iam:PassRole",
                            "Resource": [
                                pulumi.Output.concat(iam, "role/", args.prefix, "-", d)
                                for d in duties
                            ],
                            "Condition": {"StringEquals": {"iam:PassedToService": list(services)}},
                        }
                        for services, duties in passes.items()
                    ],
                    {
                        "Sid": "NeverItsOwnRole",
                        "Effect": "Deny",
                        "Action": list(OWN_ROLE_DENIED),
                        "Resource": own_role,
                    },
                    {
                        "Sid": "NeverTheBoundary",
                        "Effect": "Deny",
                        "Action": [*BOUNDARY_REWRITES, "iam:CreatePolicy"],
                        "Resource": args.boundary_arn,
                    },
                    {
                        "Sid": "NeverRemoveABoundary",
                        "Effect": "Deny",
                        "Action": "iam:DeleteRolePermissionsBoundary",
                        "Resource": "*",
                    },
                ]
            ),
            opts=child(self),
        )
        self.role_arn = role.arn
        self.register_outputs({"roleArn": self.role_arn})
