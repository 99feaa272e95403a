"""CI identity on-prem: a ServiceAccount the CI runner pod runs as (for example an
actions-runner-controller or Azure DevOps agent pod in the cluster), with rights only inside
the stack's namespaces. Its API token is the pod's projected, short-lived token: no
long-lived token Secret is created and none is stored in CI.

Rights: manage the namespaced kinds the blueprint declares, in the stack's namespaces. Its
get/patch of exactly those Namespace objects is a ClusterRole the cluster stack owns
(components/onprem/tenants.py), so the client stack declares nothing cluster-scoped; the CRDs,
the KServe and Argo controllers and the namespaces' first creation stay with the cluster stack
and a cluster administrator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.onprem.validation import Checks

VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
RULES = [
    {
        "apiGroups": [""],
        "resources": [
            "configmaps",
            "secrets",
            "services",
            "serviceaccounts",
            "persistentvolumeclaims",
            "resourcequotas",
            "limitranges",
        ],
        "verbs": VERBS,
    },
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": VERBS},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": VERBS},
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies", "ingresses"],
        "verbs": VERBS,
    },
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings"],
        "verbs": VERBS,
    },
    {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": VERBS},
    {
        "apiGroups": ["argoproj.io"],
        "resources": ["workflowtemplates", "cronworkflows", "sensors", "eventsources"],
        "verbs": VERBS,
    },
    {"apiGroups": ["monitoring.coreos.com"], "resources": ["prometheusrules"], "verbs": VERBS},
    {"apiGroups": ["cert-manager.io"], "resources": ["certificates"], "verbs": VERBS},
]


@dataclass(frozen=True)
class CiIdentityArgs:
    prefix: str
    """`<client>-<env>`: the ServiceAccount is `<prefix>-ci`."""
    home_namespace: str
    """Namespace the CI runner pods run in (the platform namespace)."""
    namespaces: Sequence[str]
    """The stack's namespaces: the only places the identity has rights."""
    repository: str = ""
    """`owner/repo` (or `organization/project`) the runners serve, recorded as an annotation."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""


def validate(args: CiIdentityArgs) -> None:
    c = Checks("CiIdentity")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    c.dns_label("home_namespace", args.home_namespace, "pass a name from Namespaces.names")
    for ns in args.namespaces:
        c.dns_label("namespaces[]", ns, "pass names from Namespaces.names")
    c.expect(
        bool(args.namespaces),
        "namespaces",
        list(args.namespaces),
        "non-empty",
        "pass the stack's namespaces",
    )
    c.done()


class CiIdentity(pulumi.ComponentResource):
    """A ServiceAccount with namespaced deploy rights; no token Secret."""

    service_account: str

    def __init__(self, name: str, args: CiIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        validate(args)
        super().__init__("mlops:onprem:CiIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        sa = f"{args.prefix}-ci"
        labels = {**args.labels, "mlops/duty": "ci"}
        k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={
                "name": sa,
                "namespace": args.home_namespace,
                "labels": labels,
                "annotations": {"mlops/repository": args.repository},
            },
            automount_service_account_token=False,
            opts=child,
        )
        subject = [{"kind": "ServiceAccount", "name": sa, "namespace": args.home_namespace}]
        for ns in args.namespaces:
            k8s.rbac.v1.Role(
                f"{name}-deploy-{ns}",
                metadata={"name": f"{args.prefix}-ci-deploy", "namespace": ns, "labels": labels},
                rules=RULES,
                opts=child,
            )
            k8s.rbac.v1.RoleBinding(
                f"{name}-deploy-{ns}",
                metadata={"name": f"{args.prefix}-ci-deploy", "namespace": ns, "labels": labels},
                role_ref={
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": f"{args.prefix}-ci-deploy",
                },
                subjects=subject,
                opts=child,
            )
        self.service_account = f"{args.home_namespace}/{sa}"
        self.register_outputs({"serviceAccount": self.service_account})
