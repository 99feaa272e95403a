"""Tracking and model registry: the MLflow server on PostgreSQL, artifacts in the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.onprem import secrets as sec
from components.onprem.validation import QUANTITY_MEM, Checks
from components.onprem.workload import (
    Peer,
    app_labels,
    container,
    exec_probe,
    http_probe,
    pod_template,
    policy_spec,
    resources,
    secret_files,
    secret_mount,
    secret_path,
    svc_host,
)
from core.config import STORE_DEFAULTS

MLFLOW_PORT = 5000
POSTGRES_PORT = 5432
# A high UID no host user has (the image runs as any UID; fsGroup makes the data volume its
# group's, and initdb creates PGDATA, a subdirectory of the volume, owned by this UID).
POSTGRES_UID = 10070
PG_SECRETS = "/run/secrets/postgres"
DB_NAME = DB_USER = "mlflow"


def mlflow_entrypoint(postgres_host: str) -> str:
    """`sh -c` script that starts `mlflow server "$@"` with its credentials read from the
    mounted Secret files: the S3 keys for boto3 and the backend-store URI (MLflow reads
    MLFLOW_BACKEND_STORE_URI). They live only in the server process's environment, never in
    the pod spec or on the command line."""
    return "\n".join(
        [
            "set -eu",
            f'export {sec.S3_ACCESS_KEY}="$(cat {secret_path("s3", sec.S3_ACCESS_KEY)})"',
            f'export {sec.S3_SECRET_KEY}="$(cat {secret_path("s3", sec.S3_SECRET_KEY)})"',
            f'password="$(cat {secret_path("postgres", sec.POSTGRES_PASSWORD)})"',
            f'export MLFLOW_BACKEND_STORE_URI="postgresql://{DB_USER}:$password@'
            f'{postgres_host}:{POSTGRES_PORT}/{DB_NAME}"',
            'exec mlflow server "$@"',
        ]
    )


@dataclass(frozen=True)
class TrackingArgs:
    prefix: str
    """Start of every object name (`<client>-<environment>`)."""
    namespace: str
    """Namespace of MLflow and PostgreSQL (the platform namespace)."""
    mlflow_image: str
    """Image with `mlflow[db]` (the kit image)."""
    postgres_image: str
    """PostgreSQL image."""
    postgres_secret: str
    """Secret with POSTGRES_PASSWORD."""
    s3_secret: str
    """Secret with the artifact store key."""
    s3_endpoint: str
    """Artifact store endpoint URL."""
    bucket: str
    """Bucket the MLflow artifacts go to (under `mlflow/`)."""
    artifact_store: Peer
    """The artifact store pods (egress allowed to the S3 port)."""
    clients: Sequence[Peer]
    """Pods allowed to reach the MLflow port."""
    hosts: Sequence[str] = ()
    """Extra host names MLflow answers to (the ingress host)."""
    replicas: int = 2
    """MLflow server replicas (2 or more in prod, spread over nodes)."""
    storage_class: str | None = None
    """StorageClass of the database volume; None: the cluster default."""
    db_size: str = "20Gi"
    """Size of the database volume."""
    protect: bool = STORE_DEFAULTS.protect
    """Keep the database volume on `pulumi destroy` (prod)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""


def validate(args: TrackingArgs) -> None:
    c = Checks("Tracking")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    c.dns_label("namespace", args.namespace, "pass Namespaces.names['platform']")
    c.expect(
        1 <= args.replicas <= 10,
        "replicas",
        args.replicas,
        "between 1 and 10",
        "use 2 in prod, 1 in dev",
    )
    c.expect(
        bool(QUANTITY_MEM.match(args.db_size)),
        "db_size",
        args.db_size,
        "a storage quantity such as 20Gi",
        "pass db_size like '20Gi'",
    )
    c.expect(
        args.s3_endpoint.startswith(("http://", "https://")),
        "s3_endpoint",
        args.s3_endpoint,
        "an http(s):// URL",
        "pass ArtifactStore.endpoint",
    )
    c.expect(
        len(args.clients) > 0,
        "clients",
        list(args.clients),
        "a non-empty list",
        "pass the pods that log to MLflow",
    )
    c.done()


def tracking_app(prefix: str) -> str:
    """Name (and pod `app` label) of the MLflow server of a stack."""
    return f"{prefix}-mlflow"


class Tracking(pulumi.ComponentResource):
    """MLflow tracking server and model registry (Deployment, `replicas` spread over nodes,
    PodDisruptionBudget) on PostgreSQL (StatefulSet, volume retained in prod), proxying
    artifacts to the artifact store so clients need no storage key."""

    tracking_uri: str
    app: str
    service: str

    def __init__(self, name: str, args: TrackingArgs, opts: pulumi.ResourceOptions | None = None):
        validate(args)
        super().__init__("mlops:onprem:Tracking", name, None, opts)
        ns = args.namespace
        self.app = self.service = tracking_app(args.prefix)
        pg = f"{args.prefix}-postgres"
        self.tracking_uri = f"http://{svc_host(self.app, ns)}:{MLFLOW_PORT}"
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(
            parent=self, protect=args.protect, retain_on_delete=args.protect
        )
        self._postgres(name, args, pg, child, keep)

        labels = app_labels(self.app, "tracking", args.labels)
        host_names = [
            self.app,
            f"{self.app}.{ns}",
            svc_host(self.app, ns),
            *args.hosts,
            "localhost",
        ]
        allowed_hosts = ",".join(h for n in host_names for h in (n, f"{n}:{MLFLOW_PORT}"))
        k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={"name": f"{self.app}-config", "namespace": ns, "labels": labels},
            data={
                "HOME": "/tmp",
                "MLFLOW_S3_ENDPOINT_URL": args.s3_endpoint,
                # The release webhook goes to the in-cluster bridge (a private address).
                "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
                "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
                "PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics",
            },
            opts=child,
        )
        server = container(
            "mlflow",
            args.mlflow_image,
            command=["/bin/sh", "-c", mlflow_entrypoint(svc_host(pg, ns)), "mlflow"],
            args=[
                "--host",
                "0.0.0.0",
                "--port",
                str(MLFLOW_PORT),
                "--workers",
                "2",
                "--artifacts-destination",
                f"s3://{args.bucket}/mlflow",
                "--serve-artifacts",
                "--allowed-hosts",
                allowed_hosts,
                "--expose-prometheus",
                "/tmp/metrics",
            ],
            ports={"http": MLFLOW_PORT},
            mounts=[secret_mount("postgres"), secret_mount("s3")],
            config_map=f"{self.app}-config",
            res=resources("250m", "1Gi", cpu_limit="1", memory_limit="2Gi"),
            readiness=http_probe("/health", "http", host="localhost"),
            liveness=http_probe("/health", "http", host="localhost", initial_delay=30),
        )
        template = pod_template(
            labels,
            [server],
            volumes=[
                secret_files("postgres", args.postgres_secret, [sec.POSTGRES_PASSWORD]),
                secret_files("s3", args.s3_secret, [sec.S3_ACCESS_KEY, sec.S3_SECRET_KEY]),
            ],
        )
        template["spec"]["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app": self.app}},
            }
        ]
        k8s.apps.v1.Deployment(
            f"{name}-mlflow",
            metadata={"name": self.app, "namespace": ns, "labels": labels},
            spec={
                "replicas": args.replicas,
                "selector": {"matchLabels": {"app": self.app}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
                },
                "template": template,
            },
            opts=child,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-mlflow-pdb",
            metadata={"name": self.app, "namespace": ns, "labels": labels},
            spec={"maxUnavailable": 1, "selector": {"matchLabels": {"app": self.app}}},
            opts=child,
        )
        k8s.core.v1.Service(
            f"{name}-mlflow-service",
            metadata={"name": self.app, "namespace": ns, "labels": labels},
            spec={
                "selector": {"app": self.app},
                "type": "ClusterIP",
                "ports": [{"name": "http", "port": MLFLOW_PORT, "targetPort": "http"}],
            },
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-mlflow-allow",
            metadata={"name": f"{self.app}-allow", "namespace": ns, "labels": labels},
            spec=policy_spec(
                self.app,
                ingress=[(p, [MLFLOW_PORT]) for p in args.clients],
                egress=[
                    (Peer(namespace=ns, app=pg), [POSTGRES_PORT]),
                    (args.artifact_store, [9000]),
                ],
            ),
            opts=child,
        )
        self.register_outputs({"trackingUri": self.tracking_uri})

    def _postgres(
        self,
        name: str,
        args: TrackingArgs,
        pg: str,
        child: pulumi.ResourceOptions,
        keep: pulumi.ResourceOptions,
    ) -> None:
        ns = args.namespace
        labels = app_labels(pg, "tracking-database", args.labels)
        k8s.core.v1.ConfigMap(
            f"{name}-postgres-config",
            metadata={"name": f"{pg}-config", "namespace": ns, "labels": labels},
            data={
                "POSTGRES_USER": DB_USER,
                "POSTGRES_DB": DB_NAME,
                "PGDATA": "/var/lib/postgresql/data/pgdata",
                # the image's `*_FILE` convention: the password is a mounted file, not an env var
                "POSTGRES_PASSWORD_FILE": f"{PG_SECRETS}/{sec.POSTGRES_PASSWORD}",
            },
            opts=child,
        )
        ready = ["pg_isready", "-h", "127.0.0.1", "-U", DB_USER, "-d", DB_NAME]
        db = container(
            "postgres",
            args.postgres_image,
            ports={"postgres": POSTGRES_PORT},
            config_map=f"{pg}-config",
            mounts=[
                {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                {"name": "run", "mountPath": "/var/run/postgresql"},
                {"name": "credentials", "mountPath": PG_SECRETS, "readOnly": True},
            ],
            res=resources("250m", "512Mi", cpu_limit="1", memory_limit="1Gi"),
            readiness=exec_probe(ready),
            liveness=exec_probe(ready, initial_delay=30),
            uid=POSTGRES_UID,
        )
        claim: dict = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": args.db_size}},
        }
        if args.storage_class:
            claim["storageClassName"] = args.storage_class
        retention = "Retain" if args.protect else "Delete"
        k8s.apps.v1.StatefulSet(
            f"{name}-postgres",
            metadata={"name": pg, "namespace": ns, "labels": labels},
            spec={
                "serviceName": pg,
                "replicas": 1,
                "selector": {"matchLabels": {"app": pg}},
                "template": pod_template(
                    labels,
                    [db],
                    uid=POSTGRES_UID,
                    volumes=[
                        {"name": "run", "emptyDir": {"sizeLimit": "16Mi"}},
                        {
                            "name": "credentials",
                            "secret": {
                                "secretName": args.postgres_secret,
                                "items": [
                                    {"key": sec.POSTGRES_PASSWORD, "path": sec.POSTGRES_PASSWORD}
                                ],
                                "defaultMode": 0o440,
                            },
                        },
                    ],
                ),
                "volumeClaimTemplates": [
                    {"metadata": {"name": "data", "labels": labels}, "spec": claim}
                ],
                "persistentVolumeClaimRetentionPolicy": {
                    "whenDeleted": retention,
                    "whenScaled": "Retain",
                },
            },
            opts=keep,
        )
        k8s.core.v1.Service(
            f"{name}-postgres-service",
            metadata={"name": pg, "namespace": ns, "labels": labels},
            spec={
                "selector": {"app": pg},
                "type": "ClusterIP",
                "ports": [{"name": "postgres", "port": POSTGRES_PORT, "targetPort": "postgres"}],
            },
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-postgres-allow",
            metadata={"name": f"{pg}-allow", "namespace": ns, "labels": labels},
            spec=policy_spec(pg, ingress=[(Peer(namespace=ns, app=self.app), [POSTGRES_PORT])]),
            opts=child,
        )
