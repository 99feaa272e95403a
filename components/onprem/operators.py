"""Cluster operators: the charts and cluster-wide objects every on-prem stack of one cluster
shares, installed once by the cluster stack (blueprint `cluster`), never by a client stack.

- cert-manager (CRDs kept on uninstall) and the CA ClusterIssuer that signs client ingresses;
- the Prometheus Operator CRDs (ServiceMonitor, PrometheusRule) the client stacks declare;
- Argo Workflows and Argo Events: CRDs and one cluster-wide controller each; a client's
  workflows, sensors and event buses live in its own namespaces;
- KServe CRDs and controller in RawDeployment mode: InferenceServices become a Deployment, a
  Service and an HPA, so there is no Knative Serving and no gateway to install and operate.

Each chart is pinned by version in `CHARTS`, and every container image it runs with these
values by tag, and by digest where one is recorded, in `CHART_IMAGES` (both in
`components.onprem.charts`); each operator namespace
enforces the restricted Pod Security Standard, denies traffic by default (allowing DNS, the API
server and webhook calls) and carries a ResourceQuota and a LimitRange.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.onprem.charts import CHART_IMAGES, CHARTS, ChartImage, check_images
from components.onprem.validation import Checks
from components.onprem.workload import DNS_PORTS, KUBE_DNS, Peer, container_security, pod_security

KSERVE_MODE = "RawDeployment"
"""KServe deployment mode the cluster's controller runs and client InferenceServices ask for."""
API_PORTS = (443, 6443)
WEBHOOK_PORTS = (9443, 10250, 8443)
"""Ports the API server calls the operators' admission and conversion webhooks on."""


OPERATOR_NAMESPACES = tuple(dict.fromkeys(chart.namespace for chart in CHARTS.values()))
"""One namespace per operator (KServe's two charts share one)."""
CONTROLLER_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"cpu": "500m", "memory": "512Mi"},
}


@dataclass(frozen=True)
class ClusterOperatorsArgs:
    cluster: str
    """Name of the cluster stack's owner (mlops:client); a label on every object."""
    cluster_issuer: str
    """Name of the CA ClusterIssuer created here (kubernetes.clusterIssuer)."""
    issuer_secret: str
    """Secret in the cert-manager namespace holding the CA key pair (cluster.issuerSecret)."""
    control_plane_cidr: str
    """Where the API server calls webhooks from (cluster.controlPlaneCidr)."""
    api_server_cidr: str = "0.0.0.0/0"
    """Where the Kubernetes API is reached from pods (kubernetes.apiServerCidr)."""
    monitoring_namespace: str = "monitoring"
    """Namespace of Prometheus (allowed to scrape the controllers)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""
    images: tuple[ChartImage, ...] = CHART_IMAGES
    """The image pins written into the chart values (`CHART_IMAGES`)."""


def validate(args: ClusterOperatorsArgs) -> None:
    c = Checks("ClusterOperators")
    c.dns_label("cluster", args.cluster, "set mlops:client in the cluster stack", max_len=40)
    c.dns_label(
        "cluster_issuer",
        args.cluster_issuer,
        "set kubernetes.clusterIssuer in the cluster stack",
        max_len=253,
    )
    c.dns_label(
        "issuer_secret", args.issuer_secret, "set cluster.issuerSecret in the cluster stack"
    )
    c.expect(
        args.control_plane_cidr not in ("0.0.0.0/0", ""),
        "control_plane_cidr",
        args.control_plane_cidr,
        "the control-plane nodes' range (not 0.0.0.0/0)",
        "set cluster.controlPlaneCidr in the cluster stack",
    )
    c.dns_label(
        "monitoring_namespace",
        args.monitoring_namespace,
        "set cluster.monitoringNamespace in the cluster stack",
    )
    check_images(c, args.images)
    c.done()


def chart_values(
    key: str, monitoring_namespace: str, images: tuple[ChartImage, ...] = CHART_IMAGES
) -> dict[str, Any]:
    """The values each chart is installed with: its images pinned (`CHART_IMAGES`), CRDs kept
    on uninstall, hardened controllers with requests and limits, no UI, metrics on, KServe in
    RawDeployment mode."""
    values = _chart_values(key, monitoring_namespace)
    for pin in images:
        if pin.chart == key:
            values = _merge(values, pin.values())
    return values


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, maps key by key (neither is changed)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def _chart_values(key: str, monitoring_namespace: str) -> dict[str, Any]:
    pod, container = pod_security(), container_security()
    if key == "cert-manager":
        limits = {"resources": CONTROLLER_RESOURCES}
        return {
            "crds": {"enabled": True, "keep": True},
            **limits,
            "webhook": limits,
            "cainjector": limits,
            "prometheus": {"enabled": True},
        }
    if key == "prometheus-operator-crds":
        return {}
    if key == "argo-workflows":
        return {
            "crds": {"install": True, "keep": True},
            "server": {"enabled": False},
            "workflow": {"serviceAccount": {"create": False}, "rbac": {"create": False}},
            "controller": {
                "podSecurityContext": pod,
                "securityContext": container,
                "resources": CONTROLLER_RESOURCES,
                "metricsConfig": {"enabled": True},
                "serviceMonitor": {"enabled": True, "namespace": monitoring_namespace},
                # client namespaces each keep their own artifact repository ConfigMap
                "workflowDefaults": {"spec": {"podGC": {"strategy": "OnPodSuccess"}}},
            },
            "executor": {"securityContext": container},
        }
    if key == "argo-events":
        return {
            "crds": {"install": True, "keep": True},
            "global": {"securityContext": pod},
            "controller": {
                "containerSecurityContext": container,
                "resources": CONTROLLER_RESOURCES,
                "rbac": {"enabled": True, "namespaced": False},
            },
            "webhook": {"enabled": False},
        }
    if key == "kserve-crd":
        return {}
    if key == "kserve":
        return {
            "kserve": {
                "controller": {
                    "deploymentMode": KSERVE_MODE,
                    # client stacks declare their own TLS ingress to the predictor Service
                    "gateway": {"disableIngressCreation": True},
                    "securityContext": pod,
                    "containerSecurityContext": container,
                    "resources": CONTROLLER_RESOURCES,
                }
            }
        }
    raise KeyError(f"no chart {key!r}; charts: {', '.join(CHARTS)}")


class ClusterOperators(pulumi.ComponentResource):
    """The shared operators of one cluster (see the module docstring): every chart in `CHARTS`
    pinned by version into its own hardened namespace, and the CA ClusterIssuer."""

    versions: dict[str, str]
    cluster_issuer: str

    def __init__(
        self, name: str, args: ClusterOperatorsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate(args)
        super().__init__("mlops:onprem:ClusterOperators", name, None, opts)
        self.versions = {key: chart.version for key, chart in CHARTS.items()}
        namespaces = {ns: self._namespace(name, ns, args) for ns in OPERATOR_NAMESPACES}
        releases: dict[str, k8s.helm.v3.Release] = {}
        # CRDs before the controllers that serve them; cert-manager before KServe's webhook
        order = {
            "kserve": ["kserve-crd", "cert-manager"],
            "argo-workflows": ["prometheus-operator-crds"],
        }
        for key, chart in CHARTS.items():
            needs = [releases[k] for k in order.get(key, [])]
            oci = chart.repo.startswith("oci://")  # an OCI chart is named by its full reference
            releases[key] = k8s.helm.v3.Release(
                f"{name}-{key}",
                name=chart.release,
                chart=f"{chart.repo}/{chart.chart}" if oci else chart.chart,
                version=chart.version,
                repository_opts=None if oci else {"repo": chart.repo},
                namespace=chart.namespace,
                create_namespace=False,
                atomic=True,
                values=chart_values(key, args.monitoring_namespace, args.images),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[namespaces[chart.namespace], *needs]
                ),
            )
        self.cluster_issuer = args.cluster_issuer
        k8s.apiextensions.CustomResource(
            f"{name}-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata={"name": args.cluster_issuer, "labels": dict(args.labels)},
            spec={"ca": {"secretName": args.issuer_secret}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[releases["cert-manager"]]),
        )
        self.register_outputs({"versions": self.versions, "clusterIssuer": self.cluster_issuer})

    def _namespace(self, name: str, ns: str, args: ClusterOperatorsArgs) -> k8s.core.v1.Namespace:
        """An operator namespace: restricted pod security, default deny with the flows an
        operator needs (DNS, the API server, webhook calls in, scrapes from Prometheus), a
        quota and default limits."""
        pss: dict[str, str] = {
            f"pod-security.kubernetes.io/{mode}": "restricted"
            for mode in ("enforce", "audit", "warn")
        }
        pss["pod-security.kubernetes.io/enforce-version"] = "latest"
        labels = {**args.labels, "mlops/role": "operator"}
        namespace = k8s.core.v1.Namespace(
            f"{name}-{ns}",
            metadata={"name": ns, "labels": {**labels, **pss}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        k8s.networking.v1.NetworkPolicy(
            f"{name}-{ns}-default-deny",
            metadata={
                "name": "default-deny",
                "namespace": ns,
                "labels": {**labels, "mlops-default-deny": ns},
            },
            spec={
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "egress": [{"to": [KUBE_DNS.as_dict()], "ports": DNS_PORTS}],
            },
            opts=in_ns,
        )
        tcp = lambda ports: [{"protocol": "TCP", "port": p} for p in ports]  # noqa: E731
        k8s.networking.v1.NetworkPolicy(
            f"{name}-{ns}-operator",
            metadata={"name": "operator-allow", "namespace": ns, "labels": labels},
            spec={
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    # the API server calls webhooks from the control plane's addresses
                    {
                        "from": [Peer(cidr=args.control_plane_cidr).as_dict()],
                        "ports": tcp(WEBHOOK_PORTS),
                    },
                    {
                        "from": [Peer(namespace=args.monitoring_namespace).as_dict()],
                        "ports": tcp((9090, 9402, 8080)),
                    },
                ],
                "egress": [
                    {"to": [Peer(cidr=args.api_server_cidr).as_dict()], "ports": tcp(API_PORTS)}
                ],
            },
            opts=in_ns,
        )
        k8s.core.v1.ResourceQuota(
            f"{name}-{ns}-quota",
            metadata={"name": "operator-quota", "namespace": ns, "labels": labels},
            spec={
                "hard": {
                    "requests.cpu": "2",
                    "limits.cpu": "4",
                    "requests.memory": "4Gi",
                    "limits.memory": "8Gi",
                    "pods": "20",
                    "services.loadbalancers": "0",
                    "services.nodeports": "0",
                }
            },
            opts=in_ns,
        )
        k8s.core.v1.LimitRange(
            f"{name}-{ns}-limits",
            metadata={"name": "defaults", "namespace": ns, "labels": labels},
            spec={
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "500m", "memory": "512Mi"},
                        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                    }
                ]
            },
            opts=in_ns,
        )
        return namespace
