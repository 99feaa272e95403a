"""Endpoint: a KServe InferenceService serving the pinned MLflow model version, in the
RawDeployment mode of the cluster's KServe controller (components/onprem/operators.py): a
Deployment, a Service and an HPA in the client's serving namespace, nothing cluster-scoped."""

from __future__ import annotations

from collections.abc import Mapping
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

PREDICTOR_PORT = 8080
"""Port of the predictor container (the `<name>-predictor` Service's port 80 targets it)."""
METRICS_PORT = 8082
"""MLServer's Prometheus metrics port (its default `metrics_port`)."""
CPU_TARGET_PERCENT = 70
"""HPA target: average CPU use of the predictor pods, in percent of their request."""


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
    storage_uri_prefix: str
    """This client's storage URI prefix (the cluster stack's ClusterStorageContainer for it
    downloads `<prefix><name>/<version>` from this client's MLflow)."""
    tracking: Peer
    """The MLflow pods (egress allowed to download the model)."""
    capture_url: str
    """Where the request logger sends requests and responses (the capture sink)."""
    capture: Peer
    """The capture sink pods (egress allowed)."""
    min_replicas: int = 1
    """Fewest replicas; RawDeployment keeps at least 1 (0, the dev default, runs 1)."""
    max_replicas: int = 2
    """Most replicas the autoscaler (an HPA on CPU) may add."""
    rollout_strategy: str = ROLLOUT_DEFAULTS.strategy
    """all-at-once, canary or linear: how a new version replaces the old one's pods."""
    traffic_step_percent: int = ROLLOUT_DEFAULTS.traffic_step_percent
    """Share of the pods (max surge) the new version starts with (canary / linear)."""
    cpu: str = "500m"
    """CPU request of a predictor pod (the limit is twice that)."""
    memory: str = "1Gi"
    """Memory request and limit of a predictor pod."""
    capture_percent: int = ENDPOINT_DEFAULTS.capture_percent
    """Share of requests captured: 100 (all) or 0 (off); the KServe logger cannot sample."""
    deployment_mode: str = "RawDeployment"
    """KServe deployment mode of the cluster's controller (the cluster stack's output)."""
    ingress_namespace: str = "ingress-nginx"
    """Namespace of the ingress controller, allowed to reach the predictor."""
    monitoring_namespace: str = "monitoring"
    """Namespace of Prometheus (allowed to scrape the predictor)."""
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
        args.storage_uri_prefix.endswith(":/"),
        "storage_uri_prefix",
        args.storage_uri_prefix,
        "a URI prefix ending in `:/` such as globex-dev-models:/",
        "pass the cluster stack's clients[<prefix>].storageUriPrefix",
    )
    c.expect(
        args.deployment_mode == "RawDeployment",
        "deployment_mode",
        args.deployment_mode,
        "RawDeployment (the mode the cluster stack installs KServe in)",
        "point kubernetes.clusterStack at a cluster stack of this kit",
    )
    c.done()


def endpoint_app(prefix: str) -> str:
    """Name (and pod `app` label) of the InferenceService of a stack."""
    return f"{prefix}-model"


def metrics_service(app: str) -> str:
    """The Service Prometheus scrapes the predictor's MLServer metrics through."""
    return f"{app}-metrics"


def surge(strategy: str, step_percent: int) -> str:
    """The rolling update's max surge: the share of pods the new version starts with."""
    return "100%" if strategy == "all-at-once" else f"{step_percent}%"


def _double_cpu(cpu: str) -> str:
    if cpu.endswith("m"):
        return f"{int(float(cpu[:-1]) * 2)}m"
    return f"{float(cpu) * 2:g}"


class ModelEndpoint(pulumi.ComponentResource):
    """One InferenceService serving `<storage prefix><model>/<version>` from the client's
    MLflow registry with the MLflow runtime, in RawDeployment mode: an HPA scales the
    predictor on CPU between min and max replicas; a new version replaces the old pods in a
    rolling update whose first step is `traffic_step_percent` of the pods (the old pods keep
    serving until the new ones are ready); every request and response is logged to the
    capture sink; a PodDisruptionBudget; network access only from the ingress controller
    (and Prometheus for metrics)."""

    endpoint_name: str
    storage_uri: str
    service: str
    metrics_selector: dict[str, str]

    def __init__(
        self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate(args)
        super().__init__("mlops:onprem:ModelEndpoint", name, None, opts)
        ns = args.namespace
        self.endpoint_name = app = endpoint_app(args.prefix)
        self.service = f"{app}-predictor"
        self.storage_uri = f"{args.storage_uri_prefix}{args.model_name}/{args.model_version}"
        child = pulumi.ResourceOptions(parent=self)
        pod_labels = {**args.labels, "app": app}
        predictor: dict = {
            "serviceAccountName": args.service_account,
            "minReplicas": max(1, args.min_replicas),
            "maxReplicas": max(1, args.min_replicas, args.max_replicas),
            "scaleMetric": "cpu",
            "scaleTarget": CPU_TARGET_PERCENT,
            "deploymentStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {
                    "maxSurge": surge(args.rollout_strategy, args.traffic_step_percent),
                    "maxUnavailable": 0,
                },
            },
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
                "annotations": {
                    "serving.kserve.io/deploymentMode": args.deployment_mode,
                    "serving.kserve.io/autoscalerClass": "hpa",
                },
            },
            spec={"predictor": predictor},
            opts=child,
        )
        # RawDeployment's predictor Service carries the inference port only
        self.metrics_selector = {"mlops/metrics-of": app}
        k8s.core.v1.Service(
            f"{name}-metrics",
            metadata={
                "name": metrics_service(app),
                "namespace": ns,
                "labels": {**args.labels, **self.metrics_selector},
            },
            spec={
                "type": "ClusterIP",
                "selector": {"app": app},
                "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": METRICS_PORT}],
            },
            opts=child,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata={"name": app, "namespace": ns, "labels": args.labels},
            spec={"maxUnavailable": 1, "selector": {"matchLabels": {"app": app}}},
            opts=child,
        )
        ingress = [
            (Peer(namespace=args.ingress_namespace), [PREDICTOR_PORT]),
            (Peer(namespace=args.monitoring_namespace), [METRICS_PORT]),
        ]
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow",
            metadata={"name": f"{app}-allow", "namespace": ns, "labels": args.labels},
            spec=policy_spec(
                app, ingress=ingress, egress=[(args.tracking, [5000]), (args.capture, [8080])]
            ),
            opts=child,
        )
        self.register_outputs(
            {
                "endpointName": self.endpoint_name,
                "service": self.service,
                "storageUri": self.storage_uri,
            }
        )
