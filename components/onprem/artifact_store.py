"""Artifact store: MinIO on persistent volumes with a versioned bucket, or an external
S3-compatible endpoint."""

from __future__ import annotations

import json
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

S3_PORT = 9000


@dataclass(frozen=True)
class ArtifactStoreArgs:
    prefix: str
    """Start of every object name (`<client>-<environment>`)."""
    namespace: str
    """Namespace MinIO runs in (the platform namespace)."""
    bucket: str
    """Bucket holding data, models, baselines and captured traffic."""
    image: str
    """MinIO server image (it also ships `mc`, used by the setup job)."""
    root_secret: str
    """Secret with MINIO_ROOT_USER / MINIO_ROOT_PASSWORD."""
    s3_secret: str
    """Secret with the application key the workloads use (limited to the bucket)."""
    clients: Sequence[Peer]
    """Pods allowed to reach the S3 port."""
    storage_class: str | None = None
    """StorageClass of the volume; None: the cluster default. Use a Retain class in prod."""
    size: str = "50Gi"
    """Size of the data volume."""
    protect: bool = STORE_DEFAULTS.protect
    """Keep the volume and the StatefulSet on `pulumi destroy` (prod)."""
    noncurrent_days: int = 90
    """Days a replaced object version is kept before it expires."""
    external_endpoint: str | None = None
    """URL of an existing S3-compatible endpoint; set: no MinIO is deployed and the bucket
    (versioned) must exist there."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""


def validate(args: ArtifactStoreArgs) -> None:
    c = Checks("ArtifactStore")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    c.dns_label("namespace", args.namespace, "pass Namespaces.names['platform']")
    c.dns_label("bucket", args.bucket, "use 3-63 lowercase letters, digits and '-'")
    c.expect(
        len(args.bucket) >= 3,
        "bucket",
        args.bucket,
        "at least 3 characters",
        "use a longer bucket name",
    )
    c.expect(
        bool(QUANTITY_MEM.match(args.size)),
        "size",
        args.size,
        "a storage quantity such as 50Gi",
        "pass size like '50Gi'",
    )
    c.expect(
        1 <= args.noncurrent_days <= 3650,
        "noncurrent_days",
        args.noncurrent_days,
        "between 1 and 3650",
        "set stores.noncurrentDays in Pulumi.<stack>.yaml",
    )
    c.expect(
        args.external_endpoint is None
        or args.external_endpoint.startswith(("https://", "http://")),
        "external_endpoint",
        args.external_endpoint,
        "an http(s):// URL or None",
        "pass the endpoint URL, e.g. https://s3.example.internal",
    )
    c.expect(
        args.external_endpoint is not None or len(args.clients) > 0,
        "clients",
        list(args.clients),
        "a non-empty list",
        "pass the pods that use the store",
    )
    c.done()


def bucket_policy(bucket: str) -> str:
    """The application user's policy: objects of this one bucket, nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetBucketLocation",
                        "s3:ListBucket",
                        "s3:ListBucketVersions",
                        "s3:ListenBucketNotification",
                    ],
                    "Resource": [f"arn:aws:s3:::{bucket}"],
                },
                {
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:GetObjectVersion",
                    ],
                    "Resource": [f"arn:aws:s3:::{bucket}/*"],
                },
            ],
        }
    )


ROOT_FILES, APP_FILES = "minio-root", "s3"
"""Volumes (and `/run/secrets/<name>` folders) of the root and the bucket-scoped credentials."""


def setup_script(endpoint: str, bucket: str, policy_name: str, noncurrent_days: int) -> str:
    """Idempotent bucket setup: versioning, noncurrent expiry, bucket-scoped app user. The
    credentials are read from the mounted Secret files into shell variables of this script
    only (never exported, never in the pod spec)."""
    ilm = json.dumps(
        {
            "Rules": [
                {
                    "ID": "expire-noncurrent",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
                }
            ]
        }
    )
    return "\n".join(
        [
            "set -eu",
            f'root_user="$(cat {secret_path(ROOT_FILES, sec.MINIO_ROOT_USER)})"',
            f'root_password="$(cat {secret_path(ROOT_FILES, sec.MINIO_ROOT_PASSWORD)})"',
            f'app_key="$(cat {secret_path(APP_FILES, sec.S3_ACCESS_KEY)})"',
            f'app_secret="$(cat {secret_path(APP_FILES, sec.S3_SECRET_KEY)})"',
            f'mc alias set local {endpoint} "$root_user" "$root_password"',
            f"mc mb --ignore-existing local/{bucket}",
            f"mc version enable local/{bucket}",
            f"printf '%s' '{ilm}' > /tmp/ilm.json",
            f"mc ilm import local/{bucket} < /tmp/ilm.json",
            f"printf '%s' '{bucket_policy(bucket)}' > /tmp/policy.json",
            f"mc admin policy create local {policy_name} /tmp/policy.json",
            'mc admin user add local "$app_key" "$app_secret"',
            f'mc admin policy attach local {policy_name} --user "$app_key" || true',
        ]
    )


def minio_app(prefix: str) -> str:
    """Name (and pod `app` label) of the MinIO server of a stack."""
    return f"{prefix}-minio"


class ArtifactStore(pulumi.ComponentResource):
    """MinIO (StatefulSet on a persistent volume, retained in prod) with one versioned bucket
    whose replaced versions expire after `noncurrent_days`; workloads get a key limited to
    that bucket. Only the listed client pods reach the S3 port."""

    uri: str
    endpoint: str
    bucket: str
    app: str

    def __init__(
        self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate(args)
        super().__init__("mlops:onprem:ArtifactStore", name, None, opts)
        self.bucket = args.bucket
        self.uri = f"s3://{args.bucket}"
        self.app = minio_app(args.prefix)
        if args.external_endpoint:
            self.endpoint = args.external_endpoint
            self.register_outputs({"uri": self.uri, "endpoint": self.endpoint})
            return
        ns, app = args.namespace, self.app
        self.endpoint = f"http://{svc_host(app, ns)}:{S3_PORT}"
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(
            parent=self, protect=args.protect, retain_on_delete=args.protect
        )
        labels = app_labels(app, "artifact-store", args.labels)
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={"name": f"{app}-config", "namespace": ns, "labels": labels},
            data={
                "MINIO_BROWSER": "off",
                "MINIO_PROMETHEUS_AUTH_TYPE": "public",
                "MC_CONFIG_DIR": "/tmp/.mc",
                # the image's MINIO_ROOT_*_FILE convention: root credentials are mounted files
                **{
                    f"{key}_FILE": secret_path(ROOT_FILES, key)
                    for key in (sec.MINIO_ROOT_USER, sec.MINIO_ROOT_PASSWORD)
                },
            },
            opts=child,
        )
        for suffix, svc_name, headless in (
            ("service", app, False),
            ("headless", f"{app}-hl", True),
        ):
            k8s.core.v1.Service(
                f"{name}-{suffix}",
                metadata={"name": svc_name, "namespace": ns, "labels": labels},
                spec={
                    "selector": {"app": app},
                    "ports": [{"name": "s3", "port": S3_PORT, "targetPort": "s3"}],
                    "type": "ClusterIP",
                    **({"clusterIP": "None"} if headless else {}),
                },
                opts=child,
            )
        root_files = secret_files(
            ROOT_FILES, args.root_secret, [sec.MINIO_ROOT_USER, sec.MINIO_ROOT_PASSWORD]
        )
        server = container(
            "minio",
            args.image,
            args=["server", "/data", "--address", f":{S3_PORT}"],
            ports={"s3": S3_PORT},
            config_map=f"{app}-config",
            mounts=[{"name": "data", "mountPath": "/data"}, secret_mount(ROOT_FILES)],
            res=resources("250m", "1Gi", cpu_limit="1"),
            readiness=http_probe("/minio/health/ready", "s3"),
            liveness=http_probe("/minio/health/live", "s3", initial_delay=30),
        )
        retention = "Retain" if args.protect else "Delete"
        claim: dict = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": args.size}},
        }
        if args.storage_class:
            claim["storageClassName"] = args.storage_class
        self.statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-minio",
            metadata={"name": app, "namespace": ns, "labels": labels},
            spec={
                "serviceName": f"{app}-hl",
                "replicas": 1,
                "selector": {"matchLabels": {"app": app}},
                "template": pod_template(labels, [server], volumes=[root_files]),
                "volumeClaimTemplates": [
                    {"metadata": {"name": "data", "labels": labels}, "spec": claim}
                ],
                "persistentVolumeClaimRetentionPolicy": {
                    "whenDeleted": retention,
                    "whenScaled": "Retain",
                },
            },
            opts=pulumi.ResourceOptions.merge(keep, pulumi.ResourceOptions(depends_on=[config])),
        )
        setup_app = f"{app}-setup"
        setup_labels = app_labels(setup_app, "artifact-store", args.labels)
        k8s.batch.v1.Job(
            f"{name}-setup",
            metadata={"name": setup_app, "namespace": ns, "labels": setup_labels},
            spec={
                "backoffLimit": 10,
                "template": pod_template(
                    setup_labels,
                    [
                        container(
                            "setup",
                            args.image,
                            command=["/bin/sh", "-c"],
                            args=[
                                setup_script(
                                    self.endpoint,
                                    args.bucket,
                                    f"{args.prefix}-bucket",
                                    args.noncurrent_days,
                                )
                            ],
                            mounts=[secret_mount(ROOT_FILES), secret_mount(APP_FILES)],
                            config_map=f"{app}-config",
                            res=resources("100m", "128Mi", cpu_limit="250m"),
                        )
                    ],
                    volumes=[
                        root_files,
                        secret_files(
                            APP_FILES, args.s3_secret, [sec.S3_ACCESS_KEY, sec.S3_SECRET_KEY]
                        ),
                    ],
                    restart_policy="OnFailure",
                ),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.statefulset]),
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-s3",
            metadata={"name": f"{app}-allow", "namespace": ns, "labels": labels},
            spec=policy_spec(
                app,
                ingress=[
                    (p, [S3_PORT]) for p in (*args.clients, Peer(namespace=ns, app=setup_app))
                ],
            ),
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-setup-egress",
            metadata={"name": f"{setup_app}-allow", "namespace": ns, "labels": setup_labels},
            spec=policy_spec(setup_app, egress=[(Peer(namespace=ns, app=app), [S3_PORT])]),
            opts=child,
        )
        self.register_outputs({"uri": self.uri, "endpoint": self.endpoint})
