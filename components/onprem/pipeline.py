"""Training pipeline and continuous training: the compiled WorkflowTemplate, a CronWorkflow for
the schedule and an Argo Events trigger on new data, all in the client's pipelines namespace.
The Argo Workflows and Argo Events controllers and CRDs belong to the cluster stack
(components/onprem/operators.py); this namespace keeps its own artifact repository."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.onprem import secrets as sec
from components.onprem.validation import Checks
from components.onprem.workload import Peer, container_security, pod_security
from core.config import StackSettings, is_cron
from pipelines.compilers.cache import compiled
from pipelines.definition import pipeline_settings_from_stack

ARTIFACT_REPOSITORIES = "artifact-repositories"
"""The ConfigMap Argo Workflows reads a namespace's artifact repositories from."""
WORKFLOW_UID = 10001
API_PORTS = (443, 6443)


DATA_KEY = "data/"
"""Key prefix new raw data lands under (the pipeline's input; the data trigger watches it)."""
BASELINE_KEY = "accepted/baseline/"
"""Key prefix of the accepted training baseline (the drift check compares against it)."""


def compile_workflow_template(
    stack_settings: StackSettings,
    *,
    name: str,
    namespace: str,
    image: str,
    mlflow_tracking_uri: str,
    service_account: str,
    artifact_bucket: str,
) -> dict[str, Any]:
    """The one adapter to the pipelines package: the Argo WorkflowTemplate manifest compiled
    from the pipeline definition for this stack (plain values in, a dict out)."""
    settings = pipeline_settings_from_stack(stack_settings)
    inputs = {
        "settings": settings,
        "name": name,
        "namespace": namespace,
        "image": image,
        "mlflow_tracking_uri": mlflow_tracking_uri,
        "service_account": service_account,
        "artifact_bucket": artifact_bucket,
        "data_key": DATA_KEY,
        "baseline_key": BASELINE_KEY,
        "training_cpu": stack_settings.training.cpu,
        "training_memory": stack_settings.training.memory,
    }

    def compile_(_: Mapping[str, str]) -> dict[str, Any]:
        # lazy: the pipeline SDKs (sagemaker, azure-ai-ml, hera) load only when compiling
        from pipelines.compilers.argo import compile_argo

        return compile_argo(**inputs)

    # every input is plain config here (nothing comes from another resource), so all are keyed
    return compiled("argo", inputs=inputs, resolved={}, trainer=settings.trainer, compile=compile_)


def registered_model_name(stack_settings: StackSettings) -> str:
    """The MLflow registered model name the pipeline registers for this stack."""
    return pipeline_settings_from_stack(stack_settings).registered_model_name


@dataclass(frozen=True)
class TrainingPipelineArgs:
    prefix: str
    """Start of every object name (`<client>-<environment>`)."""
    namespace: str
    """Namespace Argo and the workflow runs live in (the pipelines namespace)."""
    workflow_template: Mapping[str, Any]
    """WorkflowTemplate manifest from `compile_workflow_template`."""
    service_account: str
    """ServiceAccount the workflow pods run as (Identities.accounts['pipeline'])."""
    schedule_cron: str
    """When continuous training runs (5-field cron, UTC)."""
    s3_endpoint: str
    """Artifact store endpoint URL (Argo artifacts and the data trigger)."""
    bucket: str
    """Bucket of the artifact store."""
    s3_secret: str
    """Secret (in this namespace) with the artifact store key."""
    artifact_store: Peer
    """The artifact store pods (egress allowed)."""
    tracking: Peer
    """The MLflow pods (egress allowed)."""
    priority_class: str
    """Training PriorityClass the cluster stack created for this client (cluster `clients`)."""
    data_trigger: bool = True
    """Start training when an object lands under `raw_prefix` in the bucket."""
    raw_prefix: str = DATA_KEY
    """Key prefix of new raw data."""
    max_parallel: int = 2
    """Pods of one workflow running at once (`spec.parallelism`); the shared controller has no
    per-namespace workflow limit, the namespace ResourceQuota bounds the total."""
    api_server_cidr: str = "0.0.0.0/0"
    """Where the Kubernetes API is reached from pods (workflow executor, controller)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""


def validate(args: TrainingPipelineArgs) -> None:
    c = Checks("TrainingPipeline")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    c.dns_label("namespace", args.namespace, "pass Namespaces.names['pipelines']")
    c.dns_label(
        "priority_class",
        args.priority_class,
        "pass the cluster stack's clients[<prefix>].priorityClass",
        max_len=253,
    )
    kind = (
        args.workflow_template.get("kind") if isinstance(args.workflow_template, Mapping) else None
    )
    c.expect(
        kind == "WorkflowTemplate",
        "workflow_template.kind",
        kind,
        "WorkflowTemplate",
        "pass the manifest from compile_workflow_template",
    )
    name = (args.workflow_template.get("metadata") or {}).get("name") if kind else None
    c.dns_label("workflow_template.metadata.name", name, "fix the Argo compiler's output")
    c.expect(
        is_cron(args.schedule_cron),
        "schedule_cron",
        args.schedule_cron,
        "a 5-field cron expression",
        "set schedule.cron in Pulumi.<stack>.yaml",
    )
    c.expect(
        1 <= args.max_parallel <= 100,
        "max_parallel",
        args.max_parallel,
        "between 1 and 100",
        "set training.maxNodes in Pulumi.<stack>.yaml",
    )
    c.expect(
        args.raw_prefix.endswith("/") and not args.raw_prefix.startswith("/"),
        "raw_prefix",
        args.raw_prefix,
        "a key prefix like data/",
        "pass e.g. 'data/'",
    )
    c.done()


def _hardened(
    manifest: Mapping[str, Any],
    namespace: str,
    service_account: str,
    priority_class: str,
    labels: Mapping[str, str],
    parallelism: int,
) -> dict[str, Any]:
    """The compiled template placed in this namespace, run as the pipeline identity, with the
    restricted pod security on every step unless the compiler already set it."""
    out = copy.deepcopy(dict(manifest))
    meta = out.setdefault("metadata", {})
    meta["namespace"] = namespace
    meta["labels"] = {**labels, **(meta.get("labels") or {})}
    spec = out.setdefault("spec", {})
    spec["serviceAccountName"] = service_account
    spec["podPriorityClassName"] = priority_class
    spec.setdefault("parallelism", parallelism)
    spec.setdefault("securityContext", pod_security(WORKFLOW_UID))
    spec.setdefault(
        "templateDefaults", {"container": {"securityContext": container_security(WORKFLOW_UID)}}
    )
    spec.setdefault("podGC", {"strategy": "OnPodSuccess"})
    spec.setdefault("ttlStrategy", {"secondsAfterCompletion": 7 * 24 * 3600})
    return out


class TrainingPipeline(pulumi.ComponentResource):
    """The compiled WorkflowTemplate, run by the cluster's Argo Workflows controller as the
    pipeline identity at the client's preemptible training priority, with this namespace's
    artifact repository; a CronWorkflow runs it on the schedule; Argo Events starts it when
    raw data lands. Nothing here is cluster-scoped."""

    pipeline_name: str
    schedule_name: str
    trigger_name: str
    training_compute: str

    def __init__(
        self, name: str, args: TrainingPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate(args)
        super().__init__("mlops:onprem:TrainingPipeline", name, None, opts)
        ns = args.namespace
        child = pulumi.ResourceOptions(parent=self)
        s3_host = args.s3_endpoint.split("://", 1)[1].rstrip("/")
        insecure = args.s3_endpoint.startswith("http://")
        self.training_compute = f"{ns}/{args.priority_class}"
        repository = k8s.core.v1.ConfigMap(
            f"{name}-artifact-repository",
            metadata={
                "name": ARTIFACT_REPOSITORIES,
                "namespace": ns,
                "labels": args.labels,
                "annotations": {"workflows.argoproj.io/default-artifact-repository": "default"},
            },
            data={
                "default": json.dumps(
                    {
                        "archiveLogs": True,
                        "s3": {
                            "bucket": args.bucket,
                            "endpoint": s3_host,
                            "insecure": insecure,
                            "keyPrefix": "argo",
                            "accessKeySecret": {"name": args.s3_secret, "key": sec.S3_ACCESS_KEY},
                            "secretKeySecret": {"name": args.s3_secret, "key": sec.S3_SECRET_KEY},
                        },
                    },
                    sort_keys=True,
                )
            },
            opts=child,
        )
        after_argo = pulumi.ResourceOptions(parent=self, depends_on=[repository])
        template = _hardened(
            args.workflow_template,
            ns,
            args.service_account,
            args.priority_class,
            args.labels,
            args.max_parallel,
        )
        self.pipeline_name = template["metadata"]["name"]
        k8s.apiextensions.CustomResource(
            f"{name}-template",
            api_version="argoproj.io/v1alpha1",
            kind="WorkflowTemplate",
            metadata=template["metadata"],
            spec=template["spec"],
            opts=after_argo,
        )
        self.schedule_name = f"{args.prefix}-continuous-training"
        k8s.apiextensions.CustomResource(
            f"{name}-schedule",
            api_version="argoproj.io/v1alpha1",
            kind="CronWorkflow",
            metadata={"name": self.schedule_name, "namespace": ns, "labels": args.labels},
            spec={
                "schedules": [args.schedule_cron],
                "timezone": "UTC",
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 600,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "workflowSpec": {"workflowTemplateRef": {"name": self.pipeline_name}},
            },
            opts=after_argo,
        )
        self.trigger_name = ""
        if args.data_trigger:
            self._data_trigger(name, args, s3_host, insecure, after_argo)
        self._network(name, args)
        self.register_outputs(
            {
                "pipelineName": self.pipeline_name,
                "scheduleName": self.schedule_name,
                "triggerName": self.trigger_name,
            }
        )

    def _data_trigger(
        self,
        name: str,
        args: TrainingPipelineArgs,
        s3_host: str,
        insecure: bool,
        after_argo: pulumi.ResourceOptions,
    ) -> None:
        ns, child = args.namespace, pulumi.ResourceOptions(parent=self)
        after = after_argo
        k8s.apiextensions.CustomResource(
            f"{name}-eventbus",
            api_version="argoproj.io/v1alpha1",
            kind="EventBus",
            metadata={"name": "default", "namespace": ns, "labels": args.labels},
            spec={
                "jetstream": {
                    "version": "latest",
                    "replicas": 3,
                    "securityContext": pod_security(WORKFLOW_UID),
                }
            },
            opts=after,
        )
        source = f"{args.prefix}-raw-data"
        k8s.apiextensions.CustomResource(
            f"{name}-raw-data-source",
            api_version="argoproj.io/v1alpha1",
            kind="EventSource",
            metadata={"name": source, "namespace": ns, "labels": args.labels},
            spec={
                "minio": {
                    "raw-data": {
                        "bucket": {"name": args.bucket},
                        "endpoint": s3_host,
                        "insecure": insecure,
                        "events": [
                            "s3:ObjectCreated:Put",
                            "s3:ObjectCreated:CompleteMultipartUpload",
                        ],
                        "filter": {"prefix": args.raw_prefix, "suffix": ""},
                        "accessKey": {"name": args.s3_secret, "key": sec.S3_ACCESS_KEY},
                        "secretKey": {"name": args.s3_secret, "key": sec.S3_SECRET_KEY},
                    }
                }
            },
            opts=after,
        )
        sensor_sa = f"{args.prefix}-sensor"
        k8s.core.v1.ServiceAccount(
            f"{name}-sensor",
            metadata={"name": sensor_sa, "namespace": ns, "labels": args.labels},
            automount_service_account_token=True,
            opts=child,
        )
        k8s.rbac.v1.Role(
            f"{name}-sensor",
            metadata={"name": sensor_sa, "namespace": ns, "labels": args.labels},
            rules=[
                {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]},
                {
                    "apiGroups": ["argoproj.io"],
                    "resources": ["workflowtemplates"],
                    "verbs": ["get"],
                },
            ],
            opts=child,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-sensor",
            metadata={"name": sensor_sa, "namespace": ns, "labels": args.labels},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sensor_sa},
            subjects=[{"kind": "ServiceAccount", "name": sensor_sa, "namespace": ns}],
            opts=child,
        )
        self.trigger_name = f"{args.prefix}-train-on-new-data"
        k8s.apiextensions.CustomResource(
            f"{name}-data-trigger",
            api_version="argoproj.io/v1alpha1",
            kind="Sensor",
            metadata={"name": self.trigger_name, "namespace": ns, "labels": args.labels},
            spec={
                "template": {
                    "serviceAccountName": sensor_sa,
                    "securityContext": pod_security(WORKFLOW_UID),
                },
                "dependencies": [
                    {"name": "raw-data", "eventSourceName": source, "eventName": "raw-data"}
                ],
                "triggers": [
                    {
                        "rateLimit": {"unit": "Hour", "requestsPerUnit": 1},
                        "template": {
                            "name": "start-training",
                            "argoWorkflow": {
                                "operation": "submit",
                                "source": {
                                    "resource": {
                                        "apiVersion": "argoproj.io/v1alpha1",
                                        "kind": "Workflow",
                                        "metadata": {
                                            "generateName": f"{self.pipeline_name}-data-",
                                            "namespace": ns,
                                        },
                                        "spec": {
                                            "workflowTemplateRef": {"name": self.pipeline_name}
                                        },
                                    }
                                },
                            },
                        },
                    }
                ],
            },
            opts=after,
        )

    def _network(self, name: str, args: TrainingPipelineArgs) -> None:
        """Pods of this namespace talk to each other (EventBus, event source, sensor, steps),
        to the artifact store, MLflow and the Kubernetes API."""
        ns = args.namespace
        same = Peer(namespace=ns).as_dict()
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow",
            metadata={"name": "pipelines-allow", "namespace": ns, "labels": args.labels},
            spec={
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [same]}],
                "egress": [
                    {"to": [same]},
                    {
                        "to": [args.artifact_store.as_dict()],
                        "ports": [{"protocol": "TCP", "port": 9000}],
                    },
                    {"to": [args.tracking.as_dict()], "ports": [{"protocol": "TCP", "port": 5000}]},
                    {
                        "to": [Peer(cidr=args.api_server_cidr).as_dict()],
                        "ports": [{"protocol": "TCP", "port": p} for p in API_PORTS],
                    },
                ],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
