"""Container registry: an external registry (Harbor or similar), or a small in-cluster one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.onprem.validation import QUANTITY_MEM, Checks
from components.onprem.workload import (
    Peer,
    app_labels,
    container,
    http_probe,
    pod_template,
    policy_spec,
    resources,
)
from core.config import STORE_DEFAULTS

REGISTRY_PORT = 5000
PUSH_USER = "mlops"


@dataclass(frozen=True)
class ContainerRegistryArgs:
    prefix: str
    """Start of every object name (`<client>-<environment>`)."""
    namespace: str
    """Namespace of the in-cluster registry (the platform namespace)."""
    host: str
    """Host name the registry is reached at through the TLS ingress."""
    image: str
    """Registry image (distribution `registry`)."""
    clients: Sequence[Peer]
    """Pods allowed to reach the registry port (the ingress controller)."""
    storage_class: str | None = None
    """StorageClass of the image volume; None: the cluster default."""
    size: str = "50Gi"
    """Size of the image volume."""
    protect: bool = STORE_DEFAULTS.protect
    """Keep the image volume on `pulumi destroy` (prod)."""
    external_url: str | None = None
    """`host/project` of an existing registry (Harbor, ...); set: nothing is deployed."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""


def validate(args: ContainerRegistryArgs) -> None:
    c = Checks("ContainerRegistry")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    c.dns_label("namespace", args.namespace, "pass Namespaces.names['platform']")
    c.expect(
        "." in args.host and " " not in args.host and "/" not in args.host,
        "host",
        args.host,
        "a host name such as registry.ml.example.internal",
        "set kubernetes.ingressDomain in Pulumi.<stack>.yaml",
    )
    c.expect(
        bool(QUANTITY_MEM.match(args.size)),
        "size",
        args.size,
        "a storage quantity such as 50Gi",
        "pass size like '50Gi'",
    )
    c.expect(
        args.external_url is None or "://" not in args.external_url,
        "external_url",
        args.external_url,
        "`host/project` without a scheme",
        "pass e.g. harbor.example.internal/ml",
    )
    c.expect(
        args.external_url is not None or len(args.clients) > 0,
        "clients",
        list(args.clients),
        "a non-empty list",
        "pass the ingress controller's pods",
    )
    c.done()


class ContainerRegistry(pulumi.ComponentResource):
    """The distribution registry on a persistent volume (retained in prod), pushed to with a
    generated htpasswd credential, reached only through the TLS ingress. With
    `external_url` the stack uses an existing registry and deploys nothing."""

    url: str
    service: str
    credentials_secret: str | None

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate(args)
        super().__init__("mlops:onprem:ContainerRegistry", name, None, opts)
        if args.external_url:
            self.url, self.service, self.credentials_secret = args.external_url, "", None
            self.register_outputs({"url": self.url})
            return
        ns, app = args.namespace, f"{args.prefix}-registry"
        self.url, self.service = f"{args.host}/{args.prefix}", app
        self.credentials_secret = f"{app}-auth"
        labels = app_labels(app, "container-registry", args.labels)
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(
            parent=self, protect=args.protect, retain_on_delete=args.protect
        )
        password = random.RandomPassword(
            f"{name}-push-password", length=32, special=False, opts=child
        )
        k8s.core.v1.Secret(
            f"{name}-auth",
            metadata={"name": self.credentials_secret, "namespace": ns, "labels": labels},
            type="Opaque",
            string_data={
                "htpasswd": pulumi.Output.secret(
                    pulumi.Output.concat(PUSH_USER, ":", password.bcrypt_hash)
                ),
                "username": PUSH_USER,
                "password": pulumi.Output.secret(password.result),
            },
            opts=child,
        )
        k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={"name": f"{app}-config", "namespace": ns, "labels": labels},
            data={
                "REGISTRY_HTTP_ADDR": f":{REGISTRY_PORT}",
                "REGISTRY_STORAGE_DELETE_ENABLED": "true",
                "REGISTRY_AUTH": "htpasswd",
                "REGISTRY_AUTH_HTPASSWD_REALM": args.host,
                "REGISTRY_AUTH_HTPASSWD_PATH": "/auth/htpasswd",
            },
            opts=child,
        )
        claim: dict = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": args.size}},
        }
        if args.storage_class:
            claim["storageClassName"] = args.storage_class
        pvc = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data",
            metadata={"name": f"{app}-data", "namespace": ns, "labels": labels},
            spec=claim,
            opts=keep,
        )
        server = container(
            "registry",
            args.image,
            ports={"registry": REGISTRY_PORT},
            config_map=f"{app}-config",
            mounts=[
                {"name": "data", "mountPath": "/var/lib/registry"},
                {"name": "auth", "mountPath": "/auth", "readOnly": True},
            ],
            res=resources("100m", "256Mi", cpu_limit="500m"),
            readiness=http_probe("/", "registry"),
            liveness=http_probe("/", "registry", initial_delay=20),
        )
        k8s.apps.v1.Deployment(
            f"{name}-registry",
            metadata={"name": app, "namespace": ns, "labels": labels},
            spec={
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app": app}},
                "template": pod_template(
                    labels,
                    [server],
                    volumes=[
                        {"name": "data", "persistentVolumeClaim": {"claimName": f"{app}-data"}},
                        {
                            "name": "auth",
                            "secret": {
                                "secretName": self.credentials_secret,
                                "items": [{"key": "htpasswd", "path": "htpasswd"}],
                            },
                        },
                    ],
                ),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pvc]),
        )
        k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": app, "namespace": ns, "labels": labels},
            spec={
                "selector": {"app": app},
                "type": "ClusterIP",
                "ports": [{"name": "registry", "port": REGISTRY_PORT, "targetPort": "registry"}],
            },
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow",
            metadata={"name": f"{app}-allow", "namespace": ns, "labels": labels},
            spec=policy_spec(app, ingress=[(p, [REGISTRY_PORT]) for p in args.clients]),
            opts=child,
        )
        self.register_outputs({"url": self.url})
