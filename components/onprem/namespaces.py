"""Namespaces: the stack's isolation and budget boundary on Kubernetes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.onprem.validation import Checks
from components.onprem.workload import DNS_PORTS, KUBE_DNS

ROLES = ("platform", "pipelines", "serving")
"""platform: stores, tracking, registry, release bridge; pipelines: Argo and the training
and drift runs; serving: the InferenceService and its capture sink."""
BUDGET_SHARE = {"platform": 0.35, "pipelines": 0.40, "serving": 0.25}
"""Share of the monthly budget each namespace's quota is sized from."""
MEMORY_GIB_PER_CORE = 4
MIN_CORES, MAX_CORES = 4, 512
POD_SECURITY_LEVELS = ("restricted", "baseline")


@dataclass(frozen=True)
class NamespacesArgs:
    prefix: str
    """Start of every namespace name: `<namespacePrefix>-<client>-<environment>`."""
    monthly_budget_usd: float
    """Monthly budget of the stack; each namespace's ResourceQuota is sized from its share."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every namespace and policy (stack tags)."""
    usd_per_core_month: float = 30.0
    """What one CPU core (with 4 GiB memory) costs per month on this cluster, in USD."""
    usd_per_gib_month: float = 4.0
    """What one GiB of memory costs per month on this cluster, in USD."""
    pod_security: str = "restricted"
    """Pod Security Standard enforced; `baseline` is an explicit opt-out for legacy images."""
    protect: bool = False
    """Protect the namespaces and retain them on delete (stores.protect): deleting a namespace
    makes Kubernetes delete everything in it, the retained stores included."""


def quota_cores(budget_usd: float, share: float, usd_core: float, usd_gib: float) -> int:
    """Cores a namespace may use for its share of the budget (memory follows at 4 GiB/core)."""
    per_core = usd_core + MEMORY_GIB_PER_CORE * usd_gib
    return max(MIN_CORES, min(MAX_CORES, math.floor(budget_usd * share / per_core)))


def validate(args: NamespacesArgs) -> None:
    c = Checks("Namespaces")
    longest = max(len(r) for r in ROLES)
    c.dns_label(
        "prefix",
        args.prefix,
        "set kubernetes.namespacePrefix to a shorter lowercase name in Pulumi.<stack>.yaml",
        max_len=62 - longest,
    )
    c.expect(
        args.monthly_budget_usd > 0,
        "monthly_budget_usd",
        args.monthly_budget_usd,
        "a positive amount",
        "set budget.monthlyUsd in Pulumi.<stack>.yaml",
    )
    for name in ("usd_per_core_month", "usd_per_gib_month"):
        value = getattr(args, name)
        c.expect(value > 0, name, value, "a positive price", f"pass a positive {name}")
    c.expect(
        args.pod_security in POD_SECURITY_LEVELS,
        "pod_security",
        args.pod_security,
        f"one of {', '.join(POD_SECURITY_LEVELS)}",
        "use restricted (the default)",
    )
    c.done()


class Namespaces(pulumi.ComponentResource):
    """One namespace per duty (protected and retained with the stores, `protect`), each with
    the Pod Security Standard enforced, a default-deny
    NetworkPolicy (only DNS egress allowed; every other flow is allowed by the component
    that needs it), a ResourceQuota sized from the budget, and a LimitRange."""

    names: dict[str, str]
    quota_name: str

    def __init__(self, name: str, args: NamespacesArgs, opts: pulumi.ResourceOptions | None = None):
        validate(args)
        super().__init__("mlops:onprem:Namespaces", name, None, opts)
        self.names = {role: f"{args.prefix}-{role}" for role in ROLES}
        self.quota_name = f"{args.prefix}-budget"
        pss = {
            f"pod-security.kubernetes.io/{mode}": args.pod_security
            for mode in ("enforce", "audit", "warn")
        }
        pss["pod-security.kubernetes.io/enforce-version"] = "latest"
        self.namespaces: dict[str, k8s.core.v1.Namespace] = {}
        kept = pulumi.ResourceOptions(
            parent=self, protect=args.protect, retain_on_delete=args.protect
        )
        for role, ns_name in self.names.items():
            ns = k8s.core.v1.Namespace(
                f"{name}-{role}",
                metadata={"name": ns_name, "labels": {**args.labels, **pss, "mlops/role": role}},
                opts=kept,
            )
            self.namespaces[role] = ns
            in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{role}-default-deny",
                metadata={
                    "name": "default-deny",
                    "namespace": ns_name,
                    "labels": {**args.labels, "mlops-default-deny": ns_name},
                },
                spec={
                    "podSelector": {},
                    "policyTypes": ["Ingress", "Egress"],
                    "egress": [{"to": [KUBE_DNS.as_dict()], "ports": DNS_PORTS}],
                },
                opts=in_ns,
            )
            cores = quota_cores(
                args.monthly_budget_usd,
                BUDGET_SHARE[role],
                args.usd_per_core_month,
                args.usd_per_gib_month,
            )
            memory = f"{cores * MEMORY_GIB_PER_CORE}Gi"
            k8s.core.v1.ResourceQuota(
                f"{name}-{role}-budget",
                metadata={"name": self.quota_name, "namespace": ns_name, "labels": args.labels},
                spec={
                    "hard": {
                        "requests.cpu": str(cores),
                        "limits.cpu": str(cores * 2),
                        "requests.memory": memory,
                        "limits.memory": memory,
                        "pods": "100",
                        "persistentvolumeclaims": "20",
                        "services.loadbalancers": "0",
                        "services.nodeports": "0",
                    }
                },
                opts=in_ns,
            )
            k8s.core.v1.LimitRange(
                f"{name}-{role}-limits",
                metadata={"name": "defaults", "namespace": ns_name, "labels": args.labels},
                spec={
                    "limits": [
                        {
                            "type": "Container",
                            "default": {"cpu": "500m", "memory": "512Mi"},
                            "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                            "max": {"cpu": str(cores), "memory": memory},
                        }
                    ]
                },
                opts=in_ns,
            )
        self.register_outputs({"names": self.names, "quotaName": self.quota_name})
