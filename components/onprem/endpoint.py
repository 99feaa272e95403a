"""Endpoint: a KServe InferenceService serving the pinned MLflow model version."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.onprem.validation import QUANTITY_CPU, QUANTITY_MEM, Checks
from components.onprem.workload import (
    Peer,
    container_security,
    policy_spec,
    resources,
)
from core.config import ENDPOINT_DEFAULTS, ROLLOUT_DEFAULTS, STRATEGIES

KSERVE_CHART_REPO = "oci://ghcr.io/kserve/charts"
KSERVE_VERSION = "v0.15.0"
KNATIVE_PORTS = (8012, 8013, 8022, 9090)  # queue-proxy http, h2c, admin, autoscaler stats
METRICS_PORTS = (9090, 9091)  # queue-proxy and user metrics
STORAGE_URI_PREFIX = "models:/"


@dataclass(frozen=True)
class ModelEndpointArgs:
    prefix: str
    """Start of every object name (`<client>-<environment>`)."""
    namespace: str
    """Namespace of the InferenceService (the serving namespace)."""
    model_name: str
    """Registered MLflow model name."""
    model_version: str
    """Registered version to serve (mlops:model)."""
    service_account: str
    """ServiceAccount the predictor runs as (Identities.accounts['serving'])."""
    storage_image: str
    """Image with the mlflow CLI; it downloads `models:/name/version` before the server starts."""
    tracking_uri: str
    """MLflow tracking URI the model is downloaded from."""
    tracking: Peer
    """The MLflow pods (egress allowed to download the model)."""
    capture_url: str
    """Where the request logger sends requests and responses (the capture sink)."""
    capture: Peer
    """The capture sink pods (egress allowed)."""
    min_replicas: int = 1
    """Fewest replicas; 0 scales to zero (dev)."""
    max_replicas: int = 2
    """Most replicas the autoscaler may add."""
    target_per_minute: int = 100
    """Autoscaling target: requests per replica per minute."""
    rollout_strategy: str = ROLLOUT_DEFAULTS.strategy
    """all-at-once, canary or linear: how traffic moves to a new version."""
    traffic_step_percent: int = ROLLOUT_DEFAULTS.traffic_step_percent
    """Share of traffic the new version gets first (canary / linear)."""
    cpu: str = "500m"
    """CPU request of a predictor pod (the limit is twice that)."""
    memory: str = "1Gi"
    """Memory request and limit of a predictor pod."""
    capture_percent: int = ENDPOINT_DEFAULTS.capture_percent
    """Share of requests captured: 100 (all) or 0 (off); the KServe logger cannot sample."""
    gateway_namespaces: Sequence[str] = ("knative-serving", "kourier-system")
    """Namespaces of the Knative activator and gateway, allowed to reach the predictor."""
    monitoring_namespace: str = "monitoring"
    """Namespace of Prometheus (allowed to scrape the predictor)."""
    install_kserve: bool = True
    """Install the KServe CRDs and controller from their Helm charts (cluster-wide)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""


def validate(args: ModelEndpointArgs) -> None:
    c = Checks("ModelEndpoint")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    c.dns_label("namespace", args.namespace, "pass Namespaces.names['serving']")
    c.expect(
        args.model_version.isdigit() and int(args.model_version) > 0,
        "model_version",
        args.model_version,
        "a registered version number such as 3",
        "set mlops:model in Pulumi.<stack>.yaml",
    )
    c.expect(
        0 <= args.min_replicas <= args.max_replicas,
        "min_replicas",
        args.min_replicas,
        f"between 0 and max_replicas={args.max_replicas}",
        "set endpoint.minInstances <= endpoint.maxInstances",
    )
    c.expect(
        1 <= args.max_replicas <= 100,
        "max_replicas",
        args.max_replicas,
        "between 1 and 100",
        "set endpoint.maxInstances in Pulumi.<stack>.yaml",
    )
    c.expect(
        args.rollout_strategy in STRATEGIES,
        "rollout_strategy",
        args.rollout_strategy,
        f"one of {', '.join(STRATEGIES)}",
        "set rollout.strategy in Pulumi.<stack>.yaml",
    )
    c.expect(
        1 <= args.traffic_step_percent <= 50,
        "traffic_step_percent",
        args.traffic_step_percent,
        "between 1 and 50",
        "set rollout.trafficStepPercent in Pulumi.<stack>.yaml",
    )
    c.expect(
        bool(QUANTITY_CPU.match(args.cpu)),
        "cpu",
        args.cpu,
        "a CPU quantity like 500m",
        "set endpoint.cpu in Pulumi.<stack>.yaml",
    )
    c.expect(
        bool(QUANTITY_MEM.match(args.memory)),
        "memory",
        args.memory,
        "a memory quantity like 1Gi",
        "set endpoint.memory in Pulumi.<stack>.yaml",
    )
    c.expect(
        args.capture_percent in (0, 100),
        "capture_percent",
        args.capture_percent,
        "0 or 100 (KServe logs every request or none)",
        "set endpoint.capturePercent to 100 or 0 in Pulumi.<stack>.yaml",
    )
    c.expect(
        args.target_per_minute >= 1,
        "target_per_minute",
        args.target_per_minute,
        "at least 1",
        "set endpoint.targetInvocationsPerInstance",
    )
    c.done()


def endpoint_app(prefix: str) -> str:
    """Name (and pod `app` label) of the InferenceService of a stack."""
    return f"{prefix}-model"


def _double_cpu(cpu: str) -> str:
    if cpu.endswith("m"):
        return f"{int(float(cpu[:-1]) * 2)}m"
    return f"{float(cpu) * 2:g}"


class ModelEndpoint(pulumi.ComponentResource):
    """KServe (Helm, Serverless mode) and one InferenceService serving
    `models:/<model>/<version>` from the MLflow registry with the MLflow runtime: Knative
    autoscaling on requests per second between min and max replicas, new versions receiving
    `canaryTrafficPercent` of traffic first, every request and response logged to the capture
    sink, a PodDisruptionBudget, and network access only from the Knative gateway."""

    endpoint_name: str
    storage_uri: str

    def __init__(
        self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate(args)
        super().__init__("mlops:onprem:ModelEndpoint", name, None, opts)
        ns = args.namespace
        self.endpoint_name = app = endpoint_app(args.prefix)
        self.storage_uri = f"{STORAGE_URI_PREFIX}{args.model_name}/{args.model_version}"
        child = pulumi.ResourceOptions(parent=self)
        depends: list[pulumi.Resource] = []
        if args.install_kserve:
            crds = k8s.helm.v3.Release(
                f"{name}-kserve-crd",
                name="kserve-crd",
                chart=f"{KSERVE_CHART_REPO}/kserve-crd",
                version=KSERVE_VERSION,
                namespace="kserve",
                create_namespace=True,
                opts=child,
            )
            controller = k8s.helm.v3.Release(
                f"{name}-kserve",
                name="kserve",
                chart=f"{KSERVE_CHART_REPO}/kserve",
                version=KSERVE_VERSION,
                namespace="kserve",
                create_namespace=True,
                values={"kserve": {"controller": {"deploymentMode": "Serverless"}}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[crds]),
            )
            depends = [crds, controller]
        after = pulumi.ResourceOptions(parent=self, depends_on=depends)
        storage = f"{args.prefix}-mlflow-registry"
        k8s.apiextensions.CustomResource(
            f"{name}-storage",
            api_version="serving.kserve.io/v1alpha1",
            kind="ClusterStorageContainer",
            metadata={"name": storage, "labels": args.labels},
            spec={
                "container": {
                    "name": "storage-initializer",
                    "image": args.storage_image,
                    # KServe appends the storage URI and the target directory as arguments.
                    "command": [
                        "/bin/sh",
                        "-c",
                        'mlflow artifacts download --artifact-uri "$0" --dst-path "$1"',
                    ],
                    "env": [
                        {"name": "MLFLOW_TRACKING_URI", "value": args.tracking_uri},
                        {"name": "HOME", "value": "/tmp"},
                    ],
                    "resources": resources("100m", "512Mi", cpu_limit="1", memory_limit="1Gi"),
                    "securityContext": container_security(),
                },
                "supportedUriFormats": [{"prefix": STORAGE_URI_PREFIX}],
                "workloadType": "initContainer",
            },
            opts=after,
        )
        pod_labels = {**args.labels, "app": app}
        predictor: dict = {
            "serviceAccountName": args.service_account,
            "minReplicas": args.min_replicas,
            "maxReplicas": args.max_replicas,
            "scaleMetric": "rps",
            "scaleTarget": max(1, math.ceil(args.target_per_minute / 60)),
            "canaryTrafficPercent": (
                100 if args.rollout_strategy == "all-at-once" else args.traffic_step_percent
            ),
            "labels": pod_labels,
            "model": {
                "modelFormat": {"name": "mlflow"},
                "protocolVersion": "v2",
                "storageUri": self.storage_uri,
                "resources": resources(args.cpu, args.memory, cpu_limit=_double_cpu(args.cpu)),
                # The MLServer runtime writes to its working directory: root stays writable.
                "securityContext": container_security(read_only_root=False),
            },
        }
        if args.capture_percent:
            predictor["logger"] = {"mode": "all", "url": args.capture_url}
        k8s.apiextensions.CustomResource(
            f"{name}-inference-service",
            api_version="serving.kserve.io/v1beta1",
            kind="InferenceService",
            metadata={
                "name": app,
                "namespace": ns,
                "labels": {**args.labels, "mlops/model-version": args.model_version},
                "annotations": {"serving.kserve.io/deploymentMode": "Serverless"},
            },
            spec={"predictor": predictor},
            opts=after,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata={"name": app, "namespace": ns, "labels": args.labels},
            spec={"maxUnavailable": 1, "selector": {"matchLabels": {"app": app}}},
            opts=child,
        )
        ingress = [(Peer(namespace=g), list(KNATIVE_PORTS)) for g in args.gateway_namespaces]
        ingress.append((Peer(namespace=args.monitoring_namespace), list(METRICS_PORTS)))
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow",
            metadata={"name": f"{app}-allow", "namespace": ns, "labels": args.labels},
            spec=policy_spec(
                app, ingress=ingress, egress=[(args.tracking, [5000]), (args.capture, [8080])]
            ),
            opts=child,
        )
        self.register_outputs({"endpointName": self.endpoint_name, "storageUri": self.storage_uri})
