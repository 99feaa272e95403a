"""Data capture: a Vector sink that writes the endpoint's logged requests and responses to
the artifact store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.onprem import secrets as sec
from components.onprem.validation import Checks
from components.onprem.workload import (
    SECRETS_ROOT,
    Peer,
    app_labels,
    container,
    http_probe,
    pod_template,
    policy_spec,
    resources,
    secret_files,
    secret_mount,
    svc_host,
)

CAPTURE_PORT = 8080
API_PORT = 8686


@dataclass(frozen=True)
class DataCaptureArgs:
    prefix: str
    """Start of every object name (`<client>-<environment>`)."""
    namespace: str
    """Namespace of the sink (the serving namespace, next to the endpoint)."""
    image: str
    """Vector image."""
    s3_endpoint: str
    """Artifact store endpoint URL."""
    bucket: str
    """Bucket the captures are written to."""
    key_prefix: str
    """Key prefix of the captures (the drift job reads from here)."""
    s3_secret: str
    """Secret (in this namespace) with the artifact store key."""
    senders: Peer
    """The predictor pods (only they may send)."""
    artifact_store: Peer
    """The artifact store pods (egress allowed)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""


def validate(args: DataCaptureArgs) -> None:
    c = Checks("DataCapture")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    c.dns_label("namespace", args.namespace, "pass Namespaces.names['serving']")
    c.expect(
        args.key_prefix.endswith("/") and not args.key_prefix.startswith("/"),
        "key_prefix",
        args.key_prefix,
        "a key prefix like captures/model/",
        "pass e.g. 'captures/<endpoint>/'",
    )
    c.expect(
        args.s3_endpoint.startswith(("http://", "https://")),
        "s3_endpoint",
        args.s3_endpoint,
        "an http(s):// URL",
        "pass ArtifactStore.endpoint",
    )
    c.done()


def vector_config(args: DataCaptureArgs) -> str:
    """HTTP (CloudEvents from the KServe logger) in, gzip NDJSON objects per hour out."""
    return yaml.safe_dump(
        {
            "data_dir": "/var/lib/vector",
            # the S3 keys are files of the mounted Secret, read by Vector's directory backend
            "secret": {
                "s3": {
                    "type": "directory",
                    "path": f"{SECRETS_ROOT}/s3",
                    "remove_trailing_whitespace": True,
                }
            },
            "api": {"enabled": True, "address": f"0.0.0.0:{API_PORT}"},
            "sources": {
                "kserve_logger": {
                    "type": "http_server",
                    "address": f"0.0.0.0:{CAPTURE_PORT}",
                    "decoding": {"codec": "bytes"},
                    "headers": [
                        "ce-id",
                        "ce-type",
                        "ce-source",
                        "ce-time",
                        "ce-inferenceservicename",
                    ],
                }
            },
            "sinks": {
                "artifact_store": {
                    "type": "aws_s3",
                    "inputs": ["kserve_logger"],
                    "endpoint": args.s3_endpoint,
                    "region": "us-east-1",
                    "bucket": args.bucket,
                    "key_prefix": f"{args.key_prefix}%Y/%m/%d/%H/",
                    "compression": "gzip",
                    "encoding": {"codec": "json"},
                    "framing": {"method": "newline_delimited"},
                    "force_path_style": True,
                    "auth": {
                        "access_key_id": f"SECRET[s3.{sec.S3_ACCESS_KEY}]",
                        "secret_access_key": f"SECRET[s3.{sec.S3_SECRET_KEY}]",
                    },
                    "batch": {"timeout_secs": 300, "max_bytes": 10_000_000},
                }
            },
        },
        sort_keys=False,
    )


def capture_app(prefix: str) -> str:
    """Name (and pod `app` label) of the capture sink of a stack."""
    return f"{prefix}-capture"


class DataCapture(pulumi.ComponentResource):
    """Vector receives the InferenceService logger's CloudEvents (requests and responses)
    and writes them, batched and gzipped, under `key_prefix` in the artifact store."""

    url: str
    app: str
    uri: str

    def __init__(
        self, name: str, args: DataCaptureArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate(args)
        super().__init__("mlops:onprem:DataCapture", name, None, opts)
        ns, self.app = args.namespace, capture_app(args.prefix)
        self.url = f"http://{svc_host(self.app, ns)}:{CAPTURE_PORT}"
        self.uri = f"s3://{args.bucket}/{args.key_prefix}"
        labels = app_labels(self.app, "data-capture", args.labels)
        child = pulumi.ResourceOptions(parent=self)
        k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={"name": f"{self.app}-config", "namespace": ns, "labels": labels},
            data={"vector.yaml": vector_config(args)},
            opts=child,
        )
        sink = container(
            "vector",
            args.image,
            args=["--config", "/etc/vector/vector.yaml"],
            ports={"http": CAPTURE_PORT, "api": API_PORT},
            mounts=[
                {"name": "config", "mountPath": "/etc/vector", "readOnly": True},
                {"name": "data", "mountPath": "/var/lib/vector"},
                secret_mount("s3"),
            ],
            res=resources("100m", "256Mi", cpu_limit="500m"),
            readiness=http_probe("/health", "api", initial_delay=5),
            liveness=http_probe("/health", "api", initial_delay=15),
        )
        k8s.apps.v1.Deployment(
            f"{name}-sink",
            metadata={"name": self.app, "namespace": ns, "labels": labels},
            spec={
                "replicas": 1,
                "selector": {"matchLabels": {"app": self.app}},
                "template": pod_template(
                    labels,
                    [sink],
                    volumes=[
                        {"name": "config", "configMap": {"name": f"{self.app}-config"}},
                        {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                        secret_files("s3", args.s3_secret, [sec.S3_ACCESS_KEY, sec.S3_SECRET_KEY]),
                    ],
                ),
            },
            opts=child,
        )
        k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": self.app, "namespace": ns, "labels": labels},
            spec={
                "selector": {"app": self.app},
                "type": "ClusterIP",
                "ports": [{"name": "http", "port": CAPTURE_PORT, "targetPort": "http"}],
            },
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow",
            metadata={"name": f"{self.app}-allow", "namespace": ns, "labels": labels},
            spec=policy_spec(
                self.app,
                ingress=[(args.senders, [CAPTURE_PORT])],
                egress=[(args.artifact_store, [9000])],
            ),
            opts=child,
        )
        self.register_outputs({"url": self.url, "uri": self.uri})
