"""The stack contract: the capabilities every blueprint provides and the stack outputs every
blueprint exports under the same names. `docs/contract.md` is generated from this module."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Capability(StrEnum):
    ARTIFACT_STORE = "artifact-store"
    CONTAINER_REGISTRY = "container-registry"
    KEYS_AND_SECRETS = "keys-and-secrets"
    IDENTITIES = "identities"
    EXPERIMENT_TRACKING = "experiment-tracking"
    MODEL_REGISTRY = "model-registry"
    TRAINING_COMPUTE = "training-compute"
    TRAINING_PIPELINE = "training-pipeline"
    PIPELINE_SCHEDULE = "pipeline-schedule"
    DATA_CHANGE_TRIGGER = "data-change-trigger"
    RELEASE_TRIGGER = "release-trigger"
    SERVING_ENDPOINT = "serving-endpoint"
    AUTOSCALING = "autoscaling"
    GUARDED_ROLLOUT = "guarded-rollout"
    DATA_CAPTURE = "data-capture"
    DRIFT_MONITORING = "drift-monitoring"
    ALERTS = "alerts"
    BUDGET = "budget"
    NETWORK_ISOLATION = "network-isolation"


CAPABILITY_DESCRIPTIONS: dict[Capability, str] = {
    Capability.ARTIFACT_STORE: "Versioned, encrypted object store for data, models and captures.",
    Capability.CONTAINER_REGISTRY: "Registry for the training and serving images.",
    Capability.KEYS_AND_SECRETS: "Customer-managed keys and a secret store.",
    Capability.IDENTITIES: "One least-privilege identity per duty.",
    Capability.EXPERIMENT_TRACKING: "MLflow-compatible experiment tracking.",
    Capability.MODEL_REGISTRY: "Versioned model registry with approval status.",
    Capability.TRAINING_COMPUTE: "Compute that training jobs run on, scaled to zero when idle.",
    Capability.TRAINING_PIPELINE: "The compiled validate-train-evaluate-gate-register pipeline.",
    Capability.PIPELINE_SCHEDULE: "Continuous training on a schedule.",
    Capability.DATA_CHANGE_TRIGGER: "Training started when new raw data lands.",
    Capability.RELEASE_TRIGGER: "Model approval starts the CI release workflow.",
    Capability.SERVING_ENDPOINT: "The online endpoint serving the pinned model version.",
    Capability.AUTOSCALING: "Endpoint capacity follows load.",
    Capability.GUARDED_ROLLOUT: "Canary or linear traffic shifting with automatic rollback.",
    Capability.DATA_CAPTURE: "Requests and responses captured to the artifact store.",
    Capability.DRIFT_MONITORING: "Captured traffic compared with the training baseline.",
    Capability.ALERTS: "Alerts on errors, latency and drift routed to people.",
    Capability.BUDGET: "A spending limit (quota on-prem) with alerts.",
    Capability.NETWORK_ISOLATION: "Private networking and no open ingress.",
}

# Capabilities that exist only once a model version is pinned (`mlops:model`).
ENDPOINT_CAPABILITIES = frozenset(
    {
        Capability.SERVING_ENDPOINT,
        Capability.AUTOSCALING,
        Capability.GUARDED_ROLLOUT,
        Capability.DATA_CAPTURE,
    }
)


@dataclass(frozen=True)
class StackOutput:
    name: str
    description: str


OUTPUTS: tuple[StackOutput, ...] = (
    StackOutput("blueprint", "Blueprint that built the stack (sagemaker, azureml, onprem)."),
    StackOutput("client", "Client the stack belongs to."),
    StackOutput("environment", "Environment tier (dev, staging, prod)."),
    StackOutput("artifactStoreUri", "URI of the artifact store (s3://, abfss://, s3:// on MinIO)."),
    StackOutput("containerRegistryUrl", "Registry host/repository the images are pushed to."),
    StackOutput("keyId", "Id of the customer-managed key (ARN, Key Vault key id, Secret name)."),
    StackOutput("secretStore", "Where the stack's secrets live."),
    StackOutput("pipelineIdentity", "Identity the training pipeline runs as."),
    StackOutput("servingIdentity", "Identity the endpoint runs as."),
    StackOutput("releaseIdentity", "Identity the release bridge runs as."),
    StackOutput("monitoringIdentity", "Identity the drift monitoring runs as."),
    StackOutput(
        "trackingUri",
        "MLflow tracking URI (empty when tracking is off; on-prem MLflow is also the registry, "
        "so it always runs).",
    ),
    StackOutput("modelRegistry", "Model registry: package group, workspace or MLflow model name."),
    StackOutput("trainingCompute", "Name of the training compute."),
    StackOutput("pipelineName", "Name of the training pipeline."),
    StackOutput("pipelineSchedule", "Name of the continuous-training schedule."),
    StackOutput("dataChangeTrigger", "Name of the rule that starts training on new data."),
    StackOutput("releaseTrigger", "Name of the rule that starts a release on approval."),
    StackOutput("endpointName", "Name of the serving endpoint (empty until mlops:model is set)."),
    StackOutput("endpointUrl", "Invocation URL of the endpoint (empty until mlops:model is set)."),
    StackOutput("modelVersion", "Model version the endpoint serves (empty until set)."),
    StackOutput("alertsTarget", "Where alerts go (SNS topic, action group, Alertmanager rule)."),
    StackOutput("budgetName", "Name of the budget (ResourceQuota on-prem)."),
    StackOutput("network", "Id of the isolated network (VPC, VNet, namespace policy)."),
)

OUTPUT_NAMES: tuple[str, ...] = tuple(o.name for o in OUTPUTS)

CLUSTER_BLUEPRINT = "cluster"
"""The blueprint of a shared cluster stack: not a client stack, so not the contract above; it
exports `CLUSTER_OUTPUTS`, which the on-prem client stacks read through a StackReference."""

CLUSTER_OUTPUTS: tuple[StackOutput, ...] = (
    StackOutput("blueprint", "Always `cluster`."),
    StackOutput("cluster", "Name of the cluster stack's owner (mlops:client)."),
    StackOutput("kserveVersion", "KServe chart version installed (CRDs and controller)."),
    StackOutput("kserveDeploymentMode", "KServe deployment mode of the controller: RawDeployment."),
    StackOutput("argoWorkflowsVersion", "Argo Workflows chart version (CRDs and controller)."),
    StackOutput("argoEventsVersion", "Argo Events chart version (CRDs and controller)."),
    StackOutput("certManagerVersion", "cert-manager chart version."),
    StackOutput("prometheusOperatorCrdsVersion", "prometheus-operator-crds chart version."),
    StackOutput("clusterIssuer", "cert-manager ClusterIssuer that signs client ingresses."),
    StackOutput("ingressClass", "IngressClass client ingresses use."),
    StackOutput("ingressNamespace", "Namespace of the ingress controller."),
    StackOutput("monitoringNamespace", "Namespace of Prometheus."),
    StackOutput(
        "clients",
        "Per client stack (`<client>-<environment>`): its storage container, the storage URI "
        "prefix its InferenceServices use, its training PriorityClass and its namespaces.",
    ),
)

CLUSTER_OUTPUT_NAMES: tuple[str, ...] = tuple(o.name for o in CLUSTER_OUTPUTS)


def outputs_of(blueprint: str) -> tuple[str, ...]:
    """The outputs a blueprint exports: the contract's, or the cluster stack's own."""
    return CLUSTER_OUTPUT_NAMES if blueprint == CLUSTER_BLUEPRINT else OUTPUT_NAMES


class ContractError(RuntimeError):
    """A blueprint that does not export exactly the contract's outputs."""


def check_outputs(blueprint: str, outputs: dict[str, object]) -> None:
    names = outputs_of(blueprint)
    missing = [n for n in names if n not in outputs]
    extra = [n for n in outputs if n not in names]
    if missing or extra:
        which = "CLUSTER_OUTPUTS" if blueprint == CLUSTER_BLUEPRINT else "OUTPUTS"
        raise ContractError(
            f"blueprint {blueprint!r} breaks the stack contract: missing outputs {missing}, "
            f"unexpected outputs {extra}; export exactly the names of {which} in "
            "core/contract.py"
        )
