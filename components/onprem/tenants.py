"""Cluster tenants: the cluster-scoped objects each client stack of a shared cluster needs,
owned by the cluster stack so that no client stack declares anything cluster-scoped.

Per client stack (`<client>-<environment>`, listed in the cluster stack's `cluster.clients`
with its ingress domain):
- a KServe ClusterStorageContainer matching only that client's URI prefix
  (`<client>-<environment>-models:/<name>/<version>`) and downloading from that client's
  MLflow, so two clients never match each other's storage URIs;
- the training PriorityClass its workflows run at (preemptible, never preempting);
- a ClusterRole and ClusterRoleBinding letting its CI identity get and patch exactly its own
  Namespace objects (its namespaced rights come from its own stack).

The client stack owns its namespaces (creating them is normal for a tenant); quotas, limits,
default-deny policies and RBAC inside them keep clients apart, and each client's ingress
domain is registered here once, so no two clients' ingress hosts meet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.onprem.namespaces import ROLES
from components.onprem.tracking import MLFLOW_PORT, tracking_app
from components.onprem.validation import Checks
from components.onprem.workload import container_security, resources, svc_host

TRAINING_PRIORITY = 1000


def storage_uri_prefix(prefix: str) -> str:
    """The storage URI prefix one client stack's InferenceServices use."""
    return f"{prefix}-models:/"


def client_namespaces(namespace_prefix: str, prefix: str) -> list[str]:
    """The namespaces of a client stack (Namespaces names them the same way)."""
    return [f"{namespace_prefix}-{prefix}-{role}" for role in ROLES]


def client_tracking_uri(namespace_prefix: str, prefix: str) -> str:
    """The in-cluster MLflow URI of a client stack (Tracking serves it there)."""
    platform = f"{namespace_prefix}-{prefix}-platform"
    return f"http://{svc_host(tracking_app(prefix), platform)}:{MLFLOW_PORT}"


def tenant(namespace_prefix: str, prefix: str, ingress_domain: str) -> dict[str, Any]:
    """What the cluster stack exports for one client stack (the `clients` output's value)."""
    return {
        "ingressDomain": ingress_domain,
        "storageContainer": f"{prefix}-mlflow-registry",
        "storageUriPrefix": storage_uri_prefix(prefix),
        "priorityClass": f"{prefix}-training",
        "namespaces": client_namespaces(namespace_prefix, prefix),
        "ciClusterRole": f"{prefix}-ci-namespaces",
    }


@dataclass(frozen=True)
class ClusterTenantsArgs:
    clients: Mapping[str, str]
    """The client stacks sharing the cluster, `<client>-<environment>` -> its ingress domain
    (cluster.clients)."""
    namespace_prefix: str
    """Prefix of every client namespace (kubernetes.namespacePrefix)."""
    storage_image: str
    """Image with the mlflow CLI that downloads a model before the predictor starts."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""


def validate(args: ClusterTenantsArgs) -> None:
    c = Checks("ClusterTenants")
    c.expect(
        bool(args.clients),
        "clients",
        list(args.clients),
        "at least one `<client>-<environment>` stack",
        "list the client stacks in cluster.clients of the cluster stack",
    )
    for client in args.clients:
        c.dns_label(
            "clients[]", client, "list stacks like globex-dev in cluster.clients", max_len=40
        )
    domains = list(args.clients.values())
    c.expect(
        len(set(domains)) == len(domains),
        "clients",
        dict(args.clients),
        "one ingress domain per client stack",
        "give each client stack its own kubernetes.ingressDomain in cluster.clients",
    )
    c.dns_label(
        "namespace_prefix",
        args.namespace_prefix,
        "set kubernetes.namespacePrefix in the cluster stack",
        max_len=31,
    )
    c.done()


class ClusterTenants(pulumi.ComponentResource):
    """Per client stack: its ClusterStorageContainer, training PriorityClass and the CI
    identity's rights on its own Namespace objects (see the module docstring)."""

    clients: dict[str, dict[str, Any]]

    def __init__(
        self, name: str, args: ClusterTenantsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate(args)
        super().__init__("mlops:onprem:ClusterTenants", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.clients = {}
        for prefix, domain in args.clients.items():
            info = tenant(args.namespace_prefix, prefix, domain)
            self.clients[prefix] = info
            labels = {**args.labels, "mlops/tenant": prefix}
            k8s.apiextensions.CustomResource(
                f"{name}-{prefix}-storage",
                api_version="serving.kserve.io/v1alpha1",
                kind="ClusterStorageContainer",
                metadata={"name": info["storageContainer"], "labels": labels},
                spec={
                    "container": {
                        "name": "storage-initializer",
                        "image": args.storage_image,
                        # KServe appends the storage URI and the target directory; the
                        # client prefix is swapped for MLflow's own `models:/` scheme.
                        "command": [
                            "/bin/sh",
                            "-c",
                            'mlflow artifacts download --artifact-uri "models:/${0#*:/}" '
                            '--dst-path "$1"',
                        ],
                        "env": [
                            {
                                "name": "MLFLOW_TRACKING_URI",
                                "value": client_tracking_uri(args.namespace_prefix, prefix),
                            },
                            {"name": "HOME", "value": "/tmp"},
                        ],
                        "resources": resources("100m", "512Mi", cpu_limit="1", memory_limit="1Gi"),
                        "securityContext": container_security(),
                    },
                    "supportedUriFormats": [{"prefix": info["storageUriPrefix"]}],
                    "workloadType": "initContainer",
                },
                opts=child,
            )
            k8s.scheduling.v1.PriorityClass(
                f"{name}-{prefix}-training",
                metadata={"name": info["priorityClass"], "labels": labels},
                value=TRAINING_PRIORITY,
                preemption_policy="Never",
                global_default=False,
                description=f"Training runs of {prefix}: below serving, never preempt other pods.",
                opts=child,
            )
            platform = info["namespaces"][ROLES.index("platform")]
            ci = {**labels, "mlops/duty": "ci"}
            k8s.rbac.v1.ClusterRole(
                f"{name}-{prefix}-ci-namespaces",
                metadata={"name": info["ciClusterRole"], "labels": ci},
                rules=[
                    {
                        "apiGroups": [""],
                        "resources": ["namespaces"],
                        "resourceNames": info["namespaces"],
                        "verbs": ["get", "patch", "update"],
                    }
                ],
                opts=child,
            )
            k8s.rbac.v1.ClusterRoleBinding(
                f"{name}-{prefix}-ci-namespaces",
                metadata={"name": info["ciClusterRole"], "labels": ci},
                role_ref={
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": info["ciClusterRole"],
                },
                subjects=[
                    {"kind": "ServiceAccount", "name": f"{prefix}-ci", "namespace": platform}
                ],
                opts=child,
            )
        self.register_outputs({"clients": self.clients})
