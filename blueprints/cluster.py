"""The shared layer of an on-prem cluster (its own stack per cluster, e.g. `globex-cluster`):
every cluster-wide operator, CRD and object the on-prem client stacks need, installed once.

cert-manager and its CA ClusterIssuer, the Prometheus Operator CRDs, Argo Workflows and Argo
Events (CRDs and cluster-wide controllers) and KServe (CRDs and controller in RawDeployment
mode), each chart pinned by version in its own restricted, default-deny namespace; per client
stack in `cluster.clients`, its ClusterStorageContainer, training PriorityClass and the CI
identity's rights on its own namespaces.

Client stacks (blueprint `onprem`) name this stack in `kubernetes.clusterStack` and read its
outputs through a StackReference; they declare only objects inside their own namespaces, so a
client's `pulumi destroy`, or unpinning its model, never touches another client or an operator.

RawDeployment, not Serverless: an InferenceService becomes a Deployment, a Service and an HPA,
so there is no Knative Serving and no gateway to install, upgrade and secure on every cluster.
What that costs (no scale to zero, no Knative traffic split) is in docs/blueprints/cluster.md.

Not a client stack: it has none of the contract's capabilities and exports its own outputs
(`core.contract.CLUSTER_OUTPUTS`).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.onprem import images
from components.onprem.operators import (
    CHARTS,
    KSERVE_MODE,
    ClusterOperators,
    ClusterOperatorsArgs,
)
from components.onprem.tenants import ClusterTenants, ClusterTenantsArgs, tenant
from components.onprem.workload import labels_from_tags
from core.config import StackSettings
from core.contract import CLUSTER_BLUEPRINT, Capability

NAME = CLUSTER_BLUEPRINT
PLATFORM = "kubernetes"
TITLE = "Kubernetes cluster layer (shared by the on-prem stacks)"

CAPABILITIES: dict[Capability, str] = {}
"""None: the capabilities are the client stacks'; this stack installs what they run on."""
EVIDENCE: tuple = ()


def disabled_capabilities(settings: StackSettings) -> dict[Capability, str]:
    """A cluster stack gives no capability of the contract itself: the plan reports them as
    provided by the client stacks, not as missing."""
    reason = "a cluster stack installs shared operators; its client stacks give this capability"
    return {c: reason for c in Capability}


def declared_outputs(settings: StackSettings) -> dict[str, Any]:
    """The stack outputs, from the config alone: what `build` exports, and what the offline
    plan answers a client's StackReference with."""
    kube, cluster = settings.kubernetes, settings.cluster
    return {
        "blueprint": NAME,
        "cluster": settings.client,
        "kserveVersion": CHARTS["kserve"].version,
        "kserveDeploymentMode": KSERVE_MODE,
        "argoWorkflowsVersion": CHARTS["argo-workflows"].version,
        "argoEventsVersion": CHARTS["argo-events"].version,
        "certManagerVersion": CHARTS["cert-manager"].version,
        "prometheusOperatorCrdsVersion": CHARTS["prometheus-operator-crds"].version,
        "clusterIssuer": kube.cluster_issuer,
        "ingressClass": cluster.ingress_class,
        "ingressNamespace": cluster.ingress_namespace,
        "monitoringNamespace": cluster.monitoring_namespace,
        "clients": {p: tenant(kube.namespace_prefix, p) for p in cluster.clients},
    }


def build(settings: StackSettings) -> dict[str, pulumi.Input[Any]]:
    kube, cluster = settings.kubernetes, settings.cluster
    labels = labels_from_tags(settings.all_tags)
    pin = settings.environment != "dev"
    provider = k8s.Provider("cluster", context=kube.context, enable_server_side_apply=True)
    on_cluster = pulumi.ResourceOptions(providers={"kubernetes": provider})
    operators = ClusterOperators(
        "operators",
        ClusterOperatorsArgs(
            cluster=settings.client,
            cluster_issuer=kube.cluster_issuer,
            issuer_secret=cluster.issuer_secret,
            control_plane_cidr=cluster.control_plane_cidr or "",
            api_server_cidr=kube.api_server_cidr,
            monitoring_namespace=cluster.monitoring_namespace,
            labels=labels,
        ),
        on_cluster,
    )
    ClusterTenants(
        "tenants",
        ClusterTenantsArgs(
            clients=list(cluster.clients),
            namespace_prefix=kube.namespace_prefix,
            storage_image=settings.image or images.KIT_IMAGE.ref(pin=pin),
            labels=labels,
        ),
        pulumi.ResourceOptions(providers={"kubernetes": provider}, depends_on=[operators]),
    )
    return declared_outputs(settings)
