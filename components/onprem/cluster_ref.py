"""How an on-prem client stack reads its cluster stack (blueprint `cluster`): a
`pulumi.StackReference` named by `kubernetes.clusterStack`, read once before the first
resource, with an error naming the missing output (or the missing client entry) and the fix.

The values are read as plain values (not Outputs) because they name things the client's
components validate and compose into manifests: the storage URI prefix, the PriorityClass,
the ClusterIssuer, the ingress class and the operator namespaces. They are awaited with the
SDK's `_sync_await`, the way its synchronous invokes wait (a private helper: pin the SDK, as
requirements.lock does); no resource is created inside an `apply`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await

from core.errors import raise_problems

NEEDED = (
    "blueprint",
    "kserveDeploymentMode",
    "clusterIssuer",
    "ingressClass",
    "ingressNamespace",
    "monitoringNamespace",
    "clients",
)
"""The cluster stack outputs a client stack reads (a subset of CLUSTER_OUTPUTS)."""


@dataclass(frozen=True)
class ClusterInfo:
    """What a client stack needs from its cluster stack."""

    stack: str
    kserve_mode: str
    cluster_issuer: str
    ingress_class: str
    ingress_namespace: str
    monitoring_namespace: str
    storage_uri_prefix: str
    priority_class: str


def cluster_info(
    stack: str,
    outputs: Mapping[str, Any],
    prefix: str,
    namespaces: Sequence[str],
    ingress_domain: str,
) -> ClusterInfo:
    """The client's view of the cluster stack's outputs; ArgsError naming every missing
    output, a stack that is not a cluster stack, or a client the cluster does not list."""
    problems: list[str] = []
    missing = [n for n in NEEDED if outputs.get(n) in (None, "")]
    if outputs.get("blueprint") not in (None, "", "cluster"):
        problems.append(
            f"kubernetes.clusterStack={stack!r} is a stack of blueprint "
            f"{outputs['blueprint']!r}, not cluster; name the cluster stack"
        )
    elif missing:
        problems.append(
            f"cluster stack {stack!r} (kubernetes.clusterStack) has no output(s) "
            f"{', '.join(missing)}; deploy it with `mlops apply {stack.rsplit('/', 1)[-1]}`, or "
            "set kubernetes.clusterStack to a stack of blueprint cluster"
        )
    else:
        clients = outputs["clients"]
        entry = clients.get(prefix) if isinstance(clients, Mapping) else None
        if entry is None:
            problems.append(
                f"cluster stack {stack!r} does not list {prefix!r} in cluster.clients (it "
                f"lists {', '.join(sorted(clients or {})) or 'none'}); add {prefix} to "
                f"cluster.clients in Pulumi.{stack.rsplit('/', 1)[-1]}.yaml and apply it first"
            )
        elif sorted(entry.get("namespaces") or []) != sorted(namespaces):
            problems.append(
                f"cluster stack {stack!r} grants {prefix!r} the namespaces "
                f"{sorted(entry.get('namespaces') or [])}, but this stack uses "
                f"{sorted(namespaces)}; use the same kubernetes.namespacePrefix in both stacks"
            )
        elif entry.get("ingressDomain") != ingress_domain:
            problems.append(
                f"kubernetes.ingressDomain={ingress_domain!r} is not the domain cluster stack "
                f"{stack!r} registers for {prefix!r} ({entry.get('ingressDomain')!r}); set the "
                "same domain in both stacks (cluster.clients holds one domain per client, so "
                "no two clients' ingress hosts meet)"
            )
    raise_problems("ClusterReference", problems)
    entry = outputs["clients"][prefix]
    return ClusterInfo(
        stack=stack,
        kserve_mode=outputs["kserveDeploymentMode"],
        cluster_issuer=outputs["clusterIssuer"],
        ingress_class=outputs["ingressClass"],
        ingress_namespace=outputs["ingressNamespace"],
        monitoring_namespace=outputs["monitoringNamespace"],
        storage_uri_prefix=entry["storageUriPrefix"],
        priority_class=entry["priorityClass"],
    )


def read_cluster_stack(
    stack: str,
    prefix: str,
    namespaces: Sequence[str],
    ingress_domain: str,
    opts: pulumi.ResourceOptions | None = None,
) -> ClusterInfo:
    """Reference the cluster stack and read the outputs this client needs, before any of the
    client's resources exist (a missing output stops the program with nothing created)."""
    ref = pulumi.StackReference("cluster-stack", stack_name=stack, opts=opts)
    outputs: dict[str, Any] = {}
    for name in NEEDED:
        details = _sync_await(ref.get_output_details(name))
        outputs[name] = details.value if details.value is not None else details.secret_value
    return cluster_info(stack, outputs, prefix, namespaces, ingress_domain)
