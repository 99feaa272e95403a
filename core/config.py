"""The stack config schema: every `mlops:` key, its description, its default and its checks.

Data flows one way: the raw `mlops:` keys of a stack (from `pulumi.Config` under `pulumi up`,
or from `Pulumi.<stack>.yaml` for the offline tools) are layered over the blueprint and tier
defaults, validated here into a frozen `StackSettings`, and only then handed to a blueprint.
Every problem is reported at once, before any resource exists.
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

from core.regions import ANALYZER_ACCOUNTS

NAMESPACE = "mlops"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

Blueprint = Literal["sagemaker", "azureml", "onprem", "cluster"]
Environment = Literal["dev", "staging", "prod"]

# Keys whose values are credentials: they must be stored with `pulumi config set --secret`.
SECRET_KEYS: dict[str, str] = {
    "releaseToken": "token the release trigger uses to start the CI release workflow",
}


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        use_attribute_docstrings=True,
    )


class NetworkSettings(_Model):
    mode: Literal["public", "private"] = "public"
    """`private` puts jobs and endpoints in private subnets/endpoints with no public access."""
    cidr: str = Field("10.40.0.0/16", pattern=r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])$")
    """Address range of the stack's network (a /16 to /24; on Azure, where the event forwarder
    takes a second /24, a /16 to /23), used when mode is private."""


CHUNK_ROWS_RANGE = (100, 100_000_000)
"""Allowed training.chunkRows: rows the pipeline's data steps hold at once."""
MAX_TRAIN_ROWS_RANGE = (100, 1_000_000_000)
"""Allowed training.maxRows: most rows the trainer is fitted on."""


class TrainingSettings(_Model):
    instance_type: str = "ml.m5.large"
    """Training instance or VM size (AWS `ml.*`, Azure `Standard_*`; on-prem it is ignored)."""
    instance_count: int = Field(1, ge=1, le=64)
    """Instances per training job."""
    max_nodes: int = Field(2, ge=1, le=100)
    """Upper bound of the training cluster (Azure ML and Kubernetes); it always scales to zero."""
    spot: bool = False
    """Train on spot / low-priority capacity (cheaper, may be interrupted)."""
    max_runtime_minutes: int = Field(120, ge=5, le=7 * 24 * 60)
    """A training job is stopped after this many minutes."""
    cpu: str = Field("1", pattern=r"^\d+(\.\d+)?m?$")
    """CPU request of a training pod (on-prem)."""
    memory: str = Field("2Gi", pattern=r"^\d+(Mi|Gi)$")
    """Memory request of a training pod (on-prem)."""
    chunk_rows: int = Field(1_000_000, ge=CHUNK_ROWS_RANGE[0], le=CHUNK_ROWS_RANGE[1])
    """Rows the pipeline's data steps hold at once (validate, split, score, ONNX parity); with
    training.maxRows it bounds the pipeline's memory whatever the batch size."""
    max_rows: int = Field(1_000_000, ge=MAX_TRAIN_ROWS_RANGE[0], le=MAX_TRAIN_ROWS_RANGE[1])
    """Most rows the model is fitted on: a larger train split is sampled (uniform, seeded)
    and the version records it (tags training_rows, training_sampled)."""


class EndpointSettings(_Model):
    mode: Literal["realtime", "serverless"] = "serverless"
    """`realtime` keeps instances running; `serverless` scales to zero between requests."""
    instance_type: str = "ml.m5.large"
    """Serving instance or VM size (AWS `ml.*`, Azure `Standard_*`; on-prem uses cpu/memory)."""
    min_instances: int = Field(1, ge=0, le=100)
    """Fewest instances (replicas) the autoscaler keeps; 0 means scale to zero."""
    max_instances: int = Field(2, ge=1, le=100)
    """Most instances (replicas) the autoscaler may add."""
    target_invocations_per_instance: int = Field(100, ge=1, le=100_000)
    """Autoscaling target: invocations per instance per minute."""
    serverless_memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 2048
    """Memory of a serverless endpoint."""
    serverless_max_concurrency: int = Field(5, ge=1, le=200)
    """Concurrent invocations a serverless endpoint accepts."""
    cpu: str = Field("500m", pattern=r"^\d+(\.\d+)?m?$")
    """CPU request of a serving pod (on-prem)."""
    memory: str = Field("1Gi", pattern=r"^\d+(Mi|Gi)$")
    """Memory request of a serving pod (on-prem)."""
    capture_percent: int = Field(100, ge=0, le=100)
    """Share of requests and responses captured for monitoring."""


RollbackAlarm = Literal["errors5xx", "latency", "invocationErrors"]
ROLLBACK_ALARMS: tuple[str, ...] = get_args(RollbackAlarm)
"""Alarms that can roll a release back, on every platform."""
Strategy = Literal["all-at-once", "canary", "linear"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
"""How traffic moves to a new model version, on every platform."""


class RolloutSettings(_Model):
    strategy: Strategy = "all-at-once"
    """How traffic moves to a new model version."""
    traffic_step_percent: int = Field(10, ge=1, le=50)
    """Canary share, or the size of each linear step, in percent of traffic."""
    bake_minutes: int = Field(5, ge=0, le=180)
    """Minutes each step is watched before traffic moves on."""
    auto_rollback: bool = True
    """Roll back automatically when a rollback alarm fires during the rollout."""
    alarms: tuple[RollbackAlarm, ...] = get_args(RollbackAlarm)
    """Alarms that roll a release back."""
    latency_threshold_ms: int = Field(500, ge=1, le=60_000)
    """Model latency (p99, ms) above which the latency alarm fires."""
    previous_model: str | None = Field(None, pattern=r"^[1-9]\d{0,5}$")
    """Version serving before `model`, kept as the stable side of a blue/green rollout where
    the platform needs both (Azure ML); `mlops release` sets it. Unset: no split."""
    mirror_percent: int = Field(0, ge=0, le=50)
    """Before the canary share, mirror this share of traffic to the new version (Azure ML)."""


class ApprovalSettings(_Model):
    mode: Literal["auto", "manual"] = "auto"
    """`auto` approves a version that passes the quality gate; `manual` waits for a person."""


class ScheduleSettings(_Model):
    cron: str = "0 3 * * 1"
    """When continuous training runs: a 5-field cron expression in UTC."""
    data_trigger: bool = True
    """Also start training when new raw data lands in the artifact store."""


class DriftSettings(_Model):
    threshold: float = Field(0.2, gt=0, le=10)
    """Population stability index per feature above which drift is raised."""
    check_cron: str = "0 * * * *"
    """When captured traffic is compared with the training baseline (5-field cron, UTC)."""


class GateSettings(_Model):
    metric: Literal["roc_auc", "accuracy", "f1"] = "roc_auc"
    """Metric the quality gate compares."""
    minimum: float = Field(0.9, ge=0, le=1)
    """A model whose metric is below this is not registered."""
    max_regression: float = Field(0.01, ge=0, le=1)
    """A model may trail the current champion by at most this much."""


class BudgetSettings(_Model):
    monthly_usd: float = Field(200, gt=0, le=10_000_000)
    """Monthly spending limit of the stack, in US dollars."""
    alert_percents: tuple[int, ...] = (50, 80, 100)
    """Alert when spend (actual or forecast) crosses these percentages of the limit."""


class PromotionSettings(_Model):
    target: str | None = Field(None, pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
    """Stack that approved versions are promoted to next (e.g. `acme-prod`); unset: none."""
    target_account: str | None = Field(None, pattern=r"^(\d{12}|[0-9a-f-]{36})$")
    """AWS account id or Azure subscription id of the target, given read access to the registry."""


class ReleaseSettings(_Model):
    provider: Literal["none", "github", "azuredevops"] = "none"
    """CI system the release trigger starts."""
    repository: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$")
    """`owner/repo` (GitHub) or `organization/project` (Azure DevOps)."""
    event_type: str = "mlops-release"
    """Event name sent to the CI system (GitHub `repository_dispatch` type)."""
    token_expires_on: datetime.date | None = None
    """Date the CI token (`mlops:releaseToken`) expires; Azure's Key Vault secret carries it as
    its expiry. Rotate the token before then (README, "Security changes")."""


class TrackingSettings(_Model):
    enabled: bool = True
    """Run experiment tracking (MLflow). May be off in dev to save cost."""
    size: Literal["Small", "Medium", "Large"] = "Small"
    """Size of the managed tracking server where the platform has sizes."""


class StoreSettings(_Model):
    protect: bool = False
    """Protect stateful stores (`protect` and `retain_on_delete`): `pulumi destroy` keeps them."""
    noncurrent_days: int = Field(90, ge=1, le=3650)
    """Days a replaced object version is kept before it expires."""


class KubernetesSettings(_Model):
    context: str | None = None
    """kubeconfig context of the cluster (on-prem); unset: the current context."""
    namespace_prefix: str = Field("mlops", pattern=r"^[a-z][a-z0-9-]{0,30}$")
    """Prefix of the namespaces the stack creates."""
    storage_class: str | None = None
    """StorageClass of persistent volumes; unset: the cluster default."""
    ingress_domain: str = Field("mlops.internal", pattern=r"^[a-z0-9.-]+$")
    """DNS suffix for the endpoint and MLflow ingress hosts."""
    cluster_issuer: str = "internal-ca"
    """cluster: the cert-manager ClusterIssuer the cluster stack creates to sign ingress
    certificates (client stacks use the one their cluster stack exports)."""
    api_server_cidr: str = Field("0.0.0.0/0", pattern=r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")
    """Address range of the Kubernetes API as pods reach it (narrow it, e.g. 10.96.0.1/32)."""
    cluster_stack: str | None = Field(None, pattern=r"^([\w.-]+/){0,2}[a-z][a-z0-9-]{0,62}$")
    """onprem: the cluster stack (blueprint `cluster`) this stack runs on, e.g. `globex-cluster`
    (or `org/project/stack`); its outputs name the shared operators, issuer and storage."""


CLIENT_STACK = r"^[a-z][a-z0-9]{1,19}-(dev|staging|prod)$"


def default_ingress_domain(client: str, environment: str) -> str:
    """The ingress domain `mlops new` gives an on-prem stack: its own, so that stacks sharing
    a cluster never share an ingress host."""
    return f"{environment}.{client}.mlops.internal"


class ClusterSettings(_Model):
    clients: dict[str, str] = Field(default_factory=dict)
    """cluster: the client stacks sharing this cluster, `<client>-<environment>: <its
    kubernetes.ingressDomain>`; each gets its own storage container, training PriorityClass
    and CI namespace rights, and its ingress domain is its own (no host of two clients meets)."""
    ingress_class: str = Field("nginx", pattern=r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")
    """cluster: IngressClass of the cluster's ingress controller (client ingresses use it)."""
    ingress_namespace: str = Field("ingress-nginx", pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    """cluster: namespace of the ingress controller (client NetworkPolicies admit it)."""
    monitoring_namespace: str = Field("monitoring", pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    """cluster: namespace of Prometheus (client NetworkPolicies admit its scrapes)."""
    control_plane_cidr: str | None = Field(None, pattern=r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")
    """cluster: addresses the API server calls the operators' webhooks from (the control-plane
    nodes, e.g. 10.0.0.0/24); the operator namespaces admit webhook calls only from there."""
    issuer_secret: str = Field("internal-ca", pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
    """cluster: Secret in cert-manager's namespace holding the CA the ClusterIssuer signs with
    (created by the platform team; the issuer is named by kubernetes.clusterIssuer)."""
    image_digests: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9./_-]*:[A-Za-z0-9_][\w.-]*$")],
        Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")],
    ] = Field(default_factory=dict)
    """cluster: the multi-arch index digest of each chart image, `<repository>:<tag>: sha256:<64
    hex>` (read with `crane digest <repository>:<tag>`); the charts then pull these images by
    digest. Keys are the images of docs/blueprints/cluster.md's "Chart images" table."""


class BatchSettings(_Model):
    enabled: bool = False
    """Also serve in batch: score files from the artifact store on a schedule."""
    cron: str = "0 2 * * *"
    """When batch scoring runs: a 5-field cron expression in UTC."""
    instance_type: str = "ml.m5.large"
    """Batch instance or VM size (AWS `ml.*`; Azure ML uses the training cluster)."""
    instance_count: int = Field(1, ge=1, le=20)
    """Instances a batch job runs on."""
    input_prefix: str = Field("batch/input/", pattern=r"^[a-z0-9][a-z0-9/_-]*/$")
    """Artifact-store prefix the batch job reads (CSV or Parquet)."""
    output_prefix: str = Field("batch/output/", pattern=r"^[a-z0-9][a-z0-9/_-]*/$")
    """Artifact-store prefix the batch job writes predictions to."""
    chunk_rows: int = Field(50_000, ge=100, le=10_000_000)
    """Rows scored per chunk (bounds memory)."""


class ExportSettings(_Model):
    onnx: bool = True
    """Export each registered version to ONNX for edge serving (skl2onnx)."""
    tolerance: float = Field(1e-4, gt=0, le=0.5)
    """Largest allowed |probability difference| between ONNX and the original model."""


class ExplainSettings(_Model):
    permutation_repeats: int = Field(5, ge=1, le=100)
    """Repeats of permutation importance in the evaluation step."""
    clarify: bool = False
    """Add a SageMaker Clarify explainability step to the pipeline (SageMaker only)."""


AZURE_DEVOPS_ISSUER = "vstoken.dev.azure.com"
"""Host of the issuer of Azure DevOps workload identity federation tokens; the issuer of one
organization is `https://vstoken.dev.azure.com/<organization id>`."""


class AzureDevOpsCiSettings(_Model):
    organization_id: str | None = None
    """AWS only: id (a GUID) of the Azure DevOps organization whose AWS service connection
    deploys this stack: its tokens' issuer is `https://vstoken.dev.azure.com/<id>` (find it at
    `https://dev.azure.com/<organization>/_apis/connectionData`, `instanceId`). Unset: the CI
    deploy role trusts GitHub only."""
    organization: str | None = None
    """Name of that Azure DevOps organization (`dev.azure.com/<organization>`)."""
    project: str | None = None
    """Azure DevOps project that holds the service connection."""
    service_connection: str | None = None
    """Name of the AWS service connection ("Use OIDC") the pipelines sign in with, e.g.
    `mlops-aws-prod`; the trust pins the token subject `sc://<organization>/<project>/<name>`."""
    oidc_provider_arn: str | None = None
    """The account's existing IAM OIDC provider for this organization's issuer (one per
    account); unset: the stack creates it."""


class CiSettings(_Model):
    identity: bool = True
    """Create keyless CI trust for release.repository (AWS OIDC role, Azure federated
    credential, Kubernetes service account); no long-lived keys in CI."""
    branch: str = Field("main", pattern=r"^[\w./-]+$")
    """Branch whose workflows may deploy this stack."""
    environment: str | None = Field(None, pattern=r"^[\w.-]+$")
    """CI environment (GitHub environment) allowed to deploy; prod names a protected one."""
    oidc_provider_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[\w-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$",
    )
    """AWS only: the account's existing GitHub OIDC provider (one per account); unset: the
    stack creates it."""
    azure_devops: AzureDevOpsCiSettings = AzureDevOpsCiSettings()
    """AWS only: also let one Azure DevOps AWS service connection (OIDC) assume the CI deploy
    role; set all of organizationId, organization, project and serviceConnection."""


class Suppression(_Model):
    control: str = Field(pattern=r"^[A-Z][A-Z0-9]*-[A-Z0-9]+(-[A-Z0-9]+)*$")
    """Id of the control that is waived for this stack."""
    justification: str = Field(min_length=10)
    """Why the control does not apply; shown in the plan and the docs."""


class StackSettings(_Model):
    """A validated stack. Built only by `validate_settings`."""

    blueprint: Blueprint
    """Platform blueprint: sagemaker (AWS), azureml (Azure), onprem (Kubernetes) or cluster (the
    operators and cluster-wide objects the on-prem stacks of one cluster share)."""
    client: str = Field(pattern=r"^[a-z][a-z0-9]{1,19}$")
    """Short client name (lowercase letters and digits), used in every resource name."""
    environment: Environment
    """Environment tier; it sets the defaults of every other key."""
    region: str = "us-east-1"
    """AWS region or Azure location (ignored on-prem)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Extra tags or labels on every resource (client, environment and blueprint are added)."""
    network: NetworkSettings = NetworkSettings()
    """Network isolation of jobs and endpoints."""
    training: TrainingSettings = TrainingSettings()
    """Training compute: sizes, spot capacity, time limit."""
    endpoint: EndpointSettings = EndpointSettings()
    """Serving endpoint: mode, sizes, autoscaling, data capture."""
    rollout: RolloutSettings = RolloutSettings()
    """How a new model version takes traffic, and when it is rolled back."""
    approval: ApprovalSettings = ApprovalSettings()
    """How a registered model version is approved for release."""
    schedule: ScheduleSettings = ScheduleSettings()
    """Continuous training: schedule and data-change trigger."""
    drift: DriftSettings = DriftSettings()
    """Drift monitoring of captured traffic against the training baseline."""
    gate: GateSettings = GateSettings()
    """Quality gate a model passes before it is registered."""
    budget: BudgetSettings = BudgetSettings()
    """Monthly spending limit and its alerts (ResourceQuota on-prem)."""
    image: str | None = Field(
        None, pattern=r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$"
    )
    """The kit's container image (pipeline steps, release bridge; MLflow on-prem): `repo:tag`
    or `repo:tag@sha256:<digest>`; unset: the blueprint's default. Prod pins it by digest."""
    model: str | None = Field(None, pattern=r"^[1-9]\d{0,5}$")
    """Registered model version to serve (e.g. `3`); unset means no endpoint yet."""
    promotion: PromotionSettings = PromotionSettings()
    """Where approved versions are promoted next."""
    release: ReleaseSettings = ReleaseSettings()
    """CI release workflow the release trigger starts."""
    release_token: str | None = None
    """Secret token for the CI system (`pulumi config set --secret mlops:releaseToken ...`)."""
    batch: BatchSettings = BatchSettings()
    """Batch scoring, the serving mode beside the real-time endpoint."""
    export: ExportSettings = ExportSettings()
    """Edge export of registered versions."""
    explain: ExplainSettings = ExplainSettings()
    """Explanations computed by the pipeline."""
    ci: CiSettings = CiSettings()
    """Keyless CI identity that deploys this stack."""
    tracking: TrackingSettings = TrackingSettings()
    """Experiment tracking (MLflow)."""
    stores: StoreSettings = StoreSettings()
    """Stateful stores: protection and version retention."""
    kubernetes: KubernetesSettings = KubernetesSettings()
    """On-prem cluster settings."""
    cluster: ClusterSettings = ClusterSettings()
    """Shared cluster stack (blueprint `cluster`): the client stacks it serves."""
    suppressions: tuple[Suppression, ...] = ()
    """Controls waived for this stack, each with a justification."""

    @property
    def prefix(self) -> str:
        """`<client>-<environment>`: the start of every resource name."""
        return f"{self.client}-{self.environment}"

    @property
    def stack_name(self) -> str:
        """The stack's conventional name: `<client>-<environment>`, or `<client>-cluster` for
        a cluster stack (one per cluster, whatever tier's rules it follows)."""
        return f"{self.client}-cluster" if self.blueprint == "cluster" else self.prefix

    @property
    def all_tags(self) -> dict[str, str]:
        return {
            "mlops:client": self.client,
            "mlops:environment": self.environment,
            "mlops:blueprint": self.blueprint,
            **self.tags,
        }


# Layered under the stack's own keys: the blueprint's platform defaults, then the tier's.
BLUEPRINT_DEFAULTS: dict[str, dict[str, Any]] = {
    "sagemaker": {"region": "us-east-1"},
    "azureml": {
        "region": "eastus",
        "training": {"instanceType": "Standard_DS3_v2"},
        "endpoint": {"instanceType": "Standard_DS3_v2"},
        "batch": {"instanceType": "Standard_DS3_v2"},
    },
    "onprem": {"region": "local"},
    "cluster": {"region": "local"},
}

TIER_DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {
        "network": {"mode": "public"},
        "training": {"spot": True, "maxNodes": 2},
        "endpoint": {"mode": "serverless", "minInstances": 0, "maxInstances": 2},
        "rollout": {"strategy": "all-at-once", "bakeMinutes": 0},
        "approval": {"mode": "auto"},
        "budget": {"monthlyUsd": 200},
        "stores": {"protect": False, "noncurrentDays": 7},
        "tracking": {"enabled": False},
    },
    # Staging is prod-like: every control that applies to prod applies to staging (dev
    # exceptions are not waived), so it runs >= 2 instances with a shifting rollout, protected
    # stores, private networking and images pinned by digest. Its documented relaxations
    # (STAGING_RELAXATIONS) are sizes and cost, never a control.
    "staging": {
        "network": {"mode": "private"},
        "training": {"spot": True, "maxNodes": 4},
        "endpoint": {"mode": "realtime", "minInstances": 2, "maxInstances": 3},
        "rollout": {"strategy": "linear", "trafficStepPercent": 25, "bakeMinutes": 5},
        "approval": {"mode": "manual"},
        "budget": {"monthlyUsd": 1000},
        "stores": {"protect": True, "noncurrentDays": 30},
        "tracking": {"enabled": True},
    },
    "prod": {
        "network": {"mode": "private"},
        "training": {"spot": False, "maxNodes": 8},
        "endpoint": {"mode": "realtime", "minInstances": 2, "maxInstances": 6},
        "rollout": {"strategy": "canary", "trafficStepPercent": 10, "bakeMinutes": 10},
        "approval": {"mode": "manual"},
        "budget": {"monthlyUsd": 5000},
        "stores": {"protect": True, "noncurrentDays": 365},
        "tracking": {"enabled": True, "size": "Medium"},
    },
}

STAGING_RELAXATIONS: dict[str, str] = {
    "endpoint.maxInstances": "3 instead of 6: staging carries test traffic, not production load",
    "training.spot": "training on spot capacity: an interrupted staging run is retried",
    "training.maxNodes": "4 instead of 8 training nodes",
    "rollout.strategy": "linear in 25% steps with 5-minute bakes (prod: 10% canary, 10 minutes)",
    "budget.monthlyUsd": "1000 instead of 5000",
    "stores.noncurrentDays": "replaced versions kept 30 days instead of 365",
    "tracking.size": "the Small tracking server instead of Medium",
    "approval.mode": "may be auto: staging is where versions are tried before prod's manual gate",
    "ci.environment": "may be unset: staging deploys from its branch, no protected environment",
}
"""What staging may do differently from prod. Every control still applies to staging."""

_AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_AZURE_LOCATION = re.compile(r"^[a-z]+[a-z0-9]*$")
_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a stack config."""

    key: str
    value: Any
    message: str
    fix: str

    def __str__(self) -> str:
        shown = "<unset>" if self.value is _UNSET else repr(self.value)
        return f"{NAMESPACE}:{self.key}={shown} {self.message}; {self.fix}"


_UNSET: Any = object()


class ConfigError(ValueError):
    """A stack config with one or more problems; `problems` lists every one of them."""

    def __init__(self, stack: str, problems: list[Problem]):
        self.stack = stack
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"stack config {stack!r} has {len(problems)} problem(s); nothing was created:\n{lines}"
        )


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _model_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    """The pydantic model whose fields live at a camelCase key path."""
    model: type[BaseModel] = StackSettings
    for part in path:
        field = next((f for n, f in model.model_fields.items() if to_camel(n) == part), None)
        if field is None:
            return None
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [to_camel(n) for n in model.model_fields]


def _fix_for(key: str, stack: str) -> str:
    return f"set {key} in Pulumi.{stack}.yaml"


def _describe(err: dict[str, Any], key: str, stack: str) -> tuple[str, str]:
    kind = err["type"]
    ctx = err.get("ctx", {})
    if kind == "extra_forbidden":
        parent = tuple(str(p) for p in err["loc"][:-1])
        model = _model_at(parent)
        known = _keys_of(model) if model else []
        close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1, cutoff=0.6)
        hint = f"did you mean {'.'.join((*parent, close[0]))}?" if close else ""
        allowed = ", ".join(known)
        return (
            f"is not a known key{(' (' + hint + ')') if hint else ''}",
            f"remove it or use one of: {allowed}",
        )
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"is not one of {expected}", _fix_for(key, stack)
    if kind == "missing":
        return "is required", f"{_fix_for(key, stack)} (see docs/config.md)"
    if kind == "string_pattern_mismatch":
        model = _model_at(tuple(str(p) for p in err["loc"][:-1]))
        field = next(
            (
                f
                for n, f in (model.model_fields.items() if model else [])
                if to_camel(n) == str(err["loc"][-1])
            ),
            None,
        )
        what = f" ({field.description.rstrip('.')})" if field and field.description else ""
        return f"does not match the pattern {ctx.get('pattern')}{what}", _fix_for(key, stack)
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        return err["msg"].lower(), _fix_for(key, stack)
    return err["msg"][0].lower() + err["msg"][1:], _fix_for(key, stack)


def is_cron(expr: Any) -> bool:
    """A 5-field cron expression (minute hour day month weekday) of numbers, ranges, lists,
    steps and `*`: the form every platform's scheduler accepts."""
    fields = expr.split() if isinstance(expr, str) else []
    return len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields)


def _cron_problem(expr: Any) -> str | None:
    if not isinstance(expr, str) or is_cron(expr):
        return None
    return "is not a 5-field cron expression (minute hour day month weekday)"


def _get(raw: Mapping[str, Any], path: str, default: Any = _UNSET) -> Any:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _cross_checks(raw: Mapping[str, Any], stack: str) -> list[Problem]:
    """Rules that span keys or depend on the blueprint and tier. Runs on the merged raw config,
    so these problems are reported together with the per-field ones."""
    problems: list[Problem] = []
    bp, env = raw.get("blueprint"), raw.get("environment")

    def add(key: str, message: str, fix: str | None = None) -> None:
        problems.append(Problem(key, _get(raw, key), message, fix or _fix_for(key, stack)))

    region = raw.get("region")
    if bp == "sagemaker" and isinstance(region, str) and not _AWS_REGION.match(region):
        add("region", "is not an AWS region such as us-east-1 or eu-west-1")
    if bp == "azureml" and isinstance(region, str) and not _AZURE_LOCATION.match(region):
        add("region", "is not an Azure location such as eastus or westeurope")
    for key in ("training.instanceType", "endpoint.instanceType", "batch.instanceType"):
        value = _get(raw, key)
        if not isinstance(value, str):
            continue
        if bp == "sagemaker" and not value.startswith("ml."):
            add(key, "is not a SageMaker instance type (ml.*, for example ml.m5.large)")
        if bp == "azureml" and not value.startswith("Standard_") and key != "batch.instanceType":
            add(key, "is not an Azure VM size (Standard_*, for example Standard_DS3_v2)")
    for key in ("schedule.cron", "drift.checkCron", "batch.cron"):
        if message := _cron_problem(_get(raw, key)):
            add(key, message)
    lo, hi = _get(raw, "endpoint.minInstances"), _get(raw, "endpoint.maxInstances")
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        add("endpoint.maxInstances", f"is below endpoint.minInstances={lo}")
    percents = _get(raw, "budget.alertPercents")
    if isinstance(percents, list | tuple) and not all(
        isinstance(p, int) and 1 <= p <= 200 for p in percents
    ):
        add("budget.alertPercents", "must be whole percentages from 1 to 200")
    provider = _get(raw, "release.provider")
    if provider in ("github", "azuredevops"):
        if _get(raw, "release.repository", None) is None:
            add("release.repository", f"is required when release.provider is {provider}")
        if raw.get("releaseToken") is None:
            add(
                "releaseToken",
                f"is required when release.provider is {provider}",
                "run `pulumi config set --secret mlops:releaseToken <token>`",
            )
    previous = _get(raw, "rollout.previousModel", None)
    if previous is not None and previous == raw.get("model"):
        add(
            "rollout.previousModel",
            "equals mlops:model",
            "unset it, or set it to the version serving before mlops:model",
        )
    if previous is not None and raw.get("model") is None:
        add(
            "rollout.previousModel",
            "is set but mlops:model is not",
            "set mlops:model to the new version, or unset rollout.previousModel",
        )
    problems.extend(_tag_problems(raw, stack))
    problems.extend(_platform_problems(raw, stack))
    if _get(raw, "promotion.target", None) == f"{raw.get('client')}-{env}":
        add("promotion.target", "names this stack itself", "name the next environment's stack")
    if env in ("prod", "staging"):
        # The prod-like tiers: every control applies, so every key a control depends on is
        # held to the prod value (STAGING_RELAXATIONS lists what staging may do differently).
        tier_fix = f"remove the override: the {env} tier requires it" + (
            " (or use environment dev)" if env == "staging" else " (or use environment staging)"
        )
        if _get(raw, "endpoint.mode") == "serverless":
            add("endpoint.mode", f"is serverless, but {env} serves from >= 2 instances", tier_fix)
        if isinstance(lo, int) and lo < 2:
            add("endpoint.minInstances", f"is below 2, but {env} runs >= 2 across zones", tier_fix)
        if _get(raw, "rollout.strategy") == "all-at-once":
            add("rollout.strategy", f"is all-at-once, but {env} needs canary or linear", tier_fix)
        if _get(raw, "rollout.autoRollback") is False:
            add("rollout.autoRollback", f"is off, but {env} rolls back automatically", tier_fix)
        if _get(raw, "stores.protect") is False:
            add("stores.protect", f"is off, but {env} stores are protected", tier_fix)
        if _get(raw, "network.mode") == "public":
            add("network.mode", f"is public, but {env} uses private networking", tier_fix)
        image = raw.get("image")
        if image is None or (isinstance(image, str) and "@sha256:" not in image):
            add(
                "image",
                f"is not pinned by digest, but {env} runs images by digest",
                "set mlops:image to the CI-built `repo:tag@sha256:<digest>`",
            )
    if env == "prod":
        prod_fix = "remove the override: the prod tier requires it (or use environment staging)"
        if (
            _get(raw, "ci.identity") is not False
            and _get(raw, "ci.environment", None) is None
            and _get(raw, "release.provider") in ("github", "azuredevops")
        ):
            add(
                "ci.environment",
                "is unset, but prod deploys only from a protected environment",
                "set ci.environment to the protected CI environment (e.g. prod)",
            )
        if _get(raw, "approval.mode") == "auto":
            add("approval.mode", "is auto, but prod approves versions by hand", prod_fix)
    return problems


# Tag and label rules of each platform, checked on the stack's own `mlops:tags`.
MAX_USER_TAGS = 40
"""Tags a stack may add: AWS and Azure allow 50 per resource and the kit sets up to 10."""
_AWS_TAG_CHARS = re.compile(r"^[\w\s.:/=+\-@]*$")
_AZURE_TAG_FORBIDDEN = set("<>%&\\?/")
_K8S_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_K8S_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$")
_DNS_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def _tag_rule(bp: Any, key: str, value: Any) -> str | None:
    """Why one user tag cannot be set on the blueprint's platform, or None."""
    if not isinstance(key, str) or not isinstance(value, str):
        return None  # the schema reports non-string tags
    if key.lower().startswith("mlops:"):
        return "uses the kit's reserved `mlops:` prefix (client, environment, blueprint)"
    if bp == "sagemaker":
        if key.lower().startswith("aws:"):
            return "uses the `aws:` prefix, which AWS reserves for its own tags"
        if not 1 <= len(key) <= 128 or len(value) > 256:
            return "is too long for AWS (key 1-128 characters, value at most 256)"
        if not (_AWS_TAG_CHARS.match(key) and _AWS_TAG_CHARS.match(value)):
            return "has characters AWS tags do not allow (letters, digits, spaces, _.:/=+-@)"
    if bp == "azureml":
        if not 1 <= len(key) <= 512 or len(value) > 256:
            return "is too long for Azure (name 1-512 characters, value at most 256)"
        if bad := sorted(_AZURE_TAG_FORBIDDEN & set(key)):
            return f"has characters Azure tag names forbid ({''.join(bad)}; none of <>%&\\?/)"
    if bp in ("onprem", "cluster"):
        # Tags become Kubernetes labels; `prefix:name` becomes the label `prefix/name`.
        prefix, sep, name = key.replace(":", "/", 1).rpartition("/")
        if sep and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
            return "has a label prefix that is not a DNS subdomain (lowercase, at most 253)"
        if sep and (
            prefix in ("kubernetes.io", "k8s.io") or prefix.endswith((".kubernetes.io", ".k8s.io"))
        ):
            return "uses a label prefix Kubernetes reserves (kubernetes.io, k8s.io)"
        if not _K8S_LABEL_NAME.match(name):
            return (
                "is not a Kubernetes label name (at most 63 letters, digits, '-', '_', '.', "
                "starting and ending with a letter or digit)"
            )
        if not _K8S_LABEL_VALUE.match(value):
            return (
                "has a value that is not a Kubernetes label value (at most 63 letters, digits, "
                "'-', '_', '.', starting and ending with a letter or digit)"
            )
    return None


def _tag_problems(raw: Mapping[str, Any], stack: str) -> list[Problem]:
    tags = raw.get("tags")
    if not isinstance(tags, Mapping):
        return []
    bp = raw.get("blueprint")
    problems: list[Problem] = []
    fix = f"rename or remove the tag in mlops:tags in Pulumi.{stack}.yaml"
    if len(tags) > MAX_USER_TAGS:
        problems.append(
            Problem("tags", f"<{len(tags)} tags>", f"has more than {MAX_USER_TAGS} tags", fix)
        )
    for key, value in tags.items():
        if message := _tag_rule(bp, key, value):
            problems.append(Problem(f"tags.{key}", value, message, fix))
    return problems


SAGEMAKER_MAX_BAKE_MINUTES = 60
"""SageMaker deployment guardrails wait at most 3600 s per traffic step."""
_AWS_LOCAL_NVME = re.compile(r"^ml\.[a-z]+\d+[a-z]*d[a-z]*\.")
_K8S_NAMESPACE_ROOM = 53
_K8S_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_AZURE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
"""Longest `<kubernetes.namespacePrefix>-<client>-<environment>`: a namespace adds
`-pipelines` and stays a 63-character DNS label."""


def _platform_problems(raw: Mapping[str, Any], stack: str) -> list[Problem]:
    """The component argument checks a stack config can reach, per blueprint, so they are
    reported with the others before any resource (the components keep them as guards)."""
    problems: list[Problem] = []
    bp = raw.get("blueprint")

    def add(key: str, message: str, fix: str | None = None) -> None:
        problems.append(Problem(key, _get(raw, key), message, fix or _fix_for(key, stack)))

    mode, strategy = _get(raw, "endpoint.mode"), _get(raw, "rollout.strategy")
    lo = _get(raw, "endpoint.minInstances")
    if _get(raw, "rollout.autoRollback") is not False and _get(raw, "rollout.alarms") in ([], ()):
        add(
            "rollout.alarms",
            "is empty, but rollout.autoRollback needs at least one alarm",
            f"name one of {', '.join(ROLLBACK_ALARMS)}, or set rollout.autoRollback false",
        )
    if bp == "sagemaker":
        bake = _get(raw, "rollout.bakeMinutes")
        if isinstance(bake, int) and bake > SAGEMAKER_MAX_BAKE_MINUTES:
            add(
                "rollout.bakeMinutes",
                f"is above {SAGEMAKER_MAX_BAKE_MINUTES}: SageMaker waits at most 3600 s per step",
                f"set rollout.bakeMinutes to 0-{SAGEMAKER_MAX_BAKE_MINUTES}",
            )
        if mode == "serverless" and strategy in ("canary", "linear"):
            add(
                "rollout.strategy",
                f"is {strategy}, but a serverless SageMaker endpoint only deploys all-at-once",
                "set rollout.strategy all-at-once or endpoint.mode realtime",
            )
        if mode == "realtime" and isinstance(lo, int):
            if lo < 1:
                add(
                    "endpoint.minInstances",
                    "is 0, but a realtime SageMaker endpoint keeps at least 1 instance",
                    "set endpoint.minInstances >= 1 or endpoint.mode serverless",
                )
            elif strategy in ("canary", "linear") and lo < 2:
                add(
                    "endpoint.minInstances",
                    f"is {lo}, but {strategy} traffic shifting needs >= 2 instances",
                    "set endpoint.minInstances to 2, or rollout.strategy all-at-once",
                )
        itype = _get(raw, "endpoint.instanceType")
        if mode == "realtime" and isinstance(itype, str) and _AWS_LOCAL_NVME.match(itype):
            add(
                "endpoint.instanceType",
                "has local NVMe storage, for which SageMaker refuses the stack's KMS key",
                "pick an instance type without `d`, e.g. ml.m5.xlarge",
            )
    cidr = _get(raw, "network.cidr")
    private_azure = bp == "azureml" and _get(raw, "network.mode") == "private"
    if private_azure and isinstance(cidr, str) and cidr.endswith("/24"):
        add(
            "network.cidr",
            "is a /24, but a private Azure stack needs two /24 subnets (private endpoints, "
            "and the event forwarder's VNet integration)",
            "set network.cidr to a /16 to /23 range",
        )
    problems.extend(_cluster_problems(raw, stack))
    problems.extend(_audited_component_rules(raw, stack))
    problems.extend(_azure_devops_ci_problems(raw, stack))
    if bp == "onprem":
        capture = _get(raw, "endpoint.capturePercent")
        if isinstance(capture, int) and capture not in (0, 100):
            add(
                "endpoint.capturePercent",
                "is not 0 or 100: KServe logs every request or none",
                "set endpoint.capturePercent to 100 or 0",
            )
        ns, client, env = (
            _get(raw, "kubernetes.namespacePrefix"),
            raw.get("client"),
            raw.get("environment"),
        )
        if all(isinstance(v, str) for v in (ns, client, env)):
            full = f"{ns}-{client}-{env}"
            if len(full) > _K8S_NAMESPACE_ROOM:
                add(
                    "kubernetes.namespacePrefix",
                    f"makes namespaces like {full}-pipelines longer than 63 characters",
                    f"shorten kubernetes.namespacePrefix or mlops:client (at most "
                    f"{_K8S_NAMESPACE_ROOM} for `<prefix>-<client>-<environment>`)",
                )
    return problems


_ADO_ORGANIZATION = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,48}[A-Za-z0-9])?$")
_ADO_NAME_FORBIDDEN = set('*?/"')
ADO_NAMES = ("organization", "project", "serviceConnection")


def _azure_devops_ci_problems(raw: Mapping[str, Any], stack: str) -> list[Problem]:
    """ci.azureDevops: the Azure DevOps service connection the AWS CI deploy role trusts. Its
    values become the trust's issuer and exact subject, so each is checked for the form Azure
    DevOps gives it, and none may hold a wildcard."""
    group = _get(raw, "ci.azureDevops", None)
    if not isinstance(group, Mapping) or all(v in (None, "") for v in group.values()):
        return []
    problems: list[Problem] = []
    where = f"in Pulumi.{stack}.yaml"

    def add(key: str, message: str, fix: str) -> None:
        problems.append(Problem(f"ci.azureDevops.{key}", group.get(key, _UNSET), message, fix))

    if raw.get("blueprint") != "sagemaker":
        problems.append(
            Problem(
                "ci.azureDevops",
                dict(group),
                "applies to blueprint sagemaker only (the AWS CI deploy role)",
                f"remove mlops:ci.azureDevops from Pulumi.{stack}.yaml",
            )
        )
        return problems
    if _get(raw, "ci.identity") is False:
        problems.append(
            Problem(
                "ci.azureDevops",
                dict(group),
                "is set but ci.identity is false, so no CI deploy role trusts it",
                f"set ci.identity true, or remove ci.azureDevops {where}",
            )
        )
    org_id = group.get("organizationId")
    if org_id in (None, ""):
        add("organizationId", "is required when ci.azureDevops is set", f"set it {where}")
    elif not (isinstance(org_id, str) and _AZURE_ID.match(org_id)):
        add(
            "organizationId",
            "is not an Azure DevOps organization id (a lowercase GUID such as "
            "61c028b9-510c-4f84-bfb2-f48d33b6b542; its tokens' issuer is "
            f"https://{AZURE_DEVOPS_ISSUER}/<id>)",
            "set ci.azureDevops.organizationId to the `instanceId` that "
            "https://dev.azure.com/<organization>/_apis/connectionData returns",
        )
    for key in ADO_NAMES:
        value = group.get(key)
        if value in (None, ""):
            add(key, "is required when ci.azureDevops is set", f"set ci.azureDevops.{key} {where}")
        elif not isinstance(value, str) or value != value.strip():
            add(key, "is not a plain name", f"set ci.azureDevops.{key} to the name {where}")
        elif bad := sorted(_ADO_NAME_FORBIDDEN & set(value)):
            add(
                key,
                f"holds {' '.join(bad)}: the trust pins the token subject "
                "sc://<organization>/<project>/<serviceConnection> exactly, no wildcards",
                f"set ci.azureDevops.{key} to the one name Azure DevOps shows {where}",
            )
        elif key == "organization" and not _ADO_ORGANIZATION.match(value):
            add(
                key,
                "is not an Azure DevOps organization name (1-50 letters, digits and '-', "
                "starting and ending with a letter or digit)",
                f"set ci.azureDevops.organization to the name in dev.azure.com/<organization> "
                f"{where}",
            )
    arn = group.get("oidcProviderArn")
    if arn not in (None, "") and isinstance(org_id, str):
        expected = (
            rf"^arn:aws[\w-]*:iam::\d{{12}}:oidc-provider/{re.escape(AZURE_DEVOPS_ISSUER)}/"
            rf"{re.escape(org_id)}$"
        )
        if not (isinstance(arn, str) and re.match(expected, arn)):
            add(
                "oidcProviderArn",
                f"is not the ARN of an IAM OIDC provider for https://{AZURE_DEVOPS_ISSUER}/"
                f"{org_id}",
                "set it to arn:aws:iam::<account>:oidc-provider/"
                f"{AZURE_DEVOPS_ISSUER}/{org_id}, or unset it to create the provider",
            )
    return problems


def _cluster_problems(raw: Mapping[str, Any], stack: str) -> list[Problem]:
    """How an on-prem client stack names its cluster stack, and what a cluster stack lists."""
    problems: list[Problem] = []
    bp = raw.get("blueprint")

    def add(key: str, message: str, fix: str) -> None:
        problems.append(Problem(key, _get(raw, key), message, fix))

    client = raw.get("client") if isinstance(raw.get("client"), str) else "<client>"
    if bp == "onprem":
        if _get(raw, "kubernetes.clusterStack", None) is None:
            add(
                "kubernetes.clusterStack",
                "is required: an on-prem stack runs on a cluster stack (blueprint cluster) that "
                "installs the shared operators, CRDs and cluster-wide objects once",
                f"set kubernetes.clusterStack in Pulumi.{stack}.yaml to the cluster stack, e.g. "
                f"{client}-cluster (create one with `mlops new {client} --blueprint cluster`)",
            )
        if _get(raw, "kubernetes.clusterIssuer", None) is not None:
            add(
                "kubernetes.clusterIssuer",
                "is set on a client stack, but the cluster stack owns the ClusterIssuer",
                "remove it here; set kubernetes.clusterIssuer in the cluster stack",
            )
        if _get(raw, "cluster", None):  # Pulumi.yaml's neutral default is {}
            add(
                "cluster",
                "applies only to blueprint cluster",
                f"remove mlops:cluster from Pulumi.{stack}.yaml (list this stack in the cluster "
                "stack's cluster.clients instead)",
            )
    if bp == "cluster":
        if _get(raw, "kubernetes.clusterStack", None) is not None:
            add(
                "kubernetes.clusterStack",
                "applies only to blueprint onprem (client stacks name their cluster stack)",
                f"remove kubernetes.clusterStack from Pulumi.{stack}.yaml",
            )
        if _get(raw, "cluster.controlPlaneCidr", None) is None:
            add(
                "cluster.controlPlaneCidr",
                "is required: the API server calls the operators' webhooks from the control "
                "plane, and the operator namespaces admit those calls from there only",
                f"set cluster.controlPlaneCidr in Pulumi.{stack}.yaml to the control-plane "
                "nodes' range, e.g. 10.0.0.0/24",
            )
        clients = _get(raw, "cluster.clients", {})
        if isinstance(clients, Mapping):
            fix = f"fix cluster.clients in Pulumi.{stack}.yaml"
            if not clients:
                add(
                    "cluster.clients",
                    "is empty: a cluster stack serves at least one client stack",
                    f"list the client stacks as `<client>-<environment>: <ingressDomain>` in "
                    f"cluster.clients in Pulumi.{stack}.yaml, e.g. "
                    f"{{{client}-dev: {default_ingress_domain(client, 'dev')}}}",
                )
            bad = [c for c in clients if not (isinstance(c, str) and re.match(CLIENT_STACK, c))]
            if bad:
                add(
                    "cluster.clients",
                    f"has entries that are not `<client>-<environment>` stacks: {bad}",
                    f"{fix}: names like globex-dev (client: 2-20 lowercase letters and digits; "
                    "environment: dev, staging or prod)",
                )
            domains = [d for d in clients.values() if isinstance(d, str)]
            if any(not _DNS_SUBDOMAIN.match(d) for d in domains):
                add(
                    "cluster.clients",
                    "has an ingress domain that is not a DNS name",
                    f"{fix}: each value is the client stack's kubernetes.ingressDomain",
                )
            shared = sorted(
                {
                    f"{a} and {b} share {da}"
                    for a, da in clients.items()
                    for b, db in clients.items()
                    if a < b and da == db
                }
            )
            if shared:
                add(
                    "cluster.clients",
                    f"gives two client stacks one ingress domain ({'; '.join(shared)}): their "
                    "ingress hosts would collide and one client's host could route to the other",
                    f"{fix}: give each client stack its own kubernetes.ingressDomain",
                )
    return problems


def _or_default(raw: Mapping[str, Any], path: str) -> Any:
    """The value at a key path, or the schema's default for it when the config omits it."""
    value = _get(raw, path)
    if value is not _UNSET:
        return value
    *parents, key = path.split(".")
    model = _model_at(tuple(parents))
    fields = model.model_fields.items() if model is not None else ()
    return next((f.default for n, f in fields if to_camel(n) == key), _UNSET)


def _ipv4_network(value: Any) -> bool:
    try:
        ipaddress.IPv4Network(value)  # strict: no host bits set
    except ValueError:
        return False
    return True


def _audited_component_rules(raw: Mapping[str, Any], stack: str) -> list[Problem]:
    """Component checks found reachable from a stack config by the audit of issue #12 (each is
    a row of tests/unit/test_component_rules.py), reported here before any resource."""
    problems: list[Problem] = []
    bp = raw.get("blueprint")

    def add(key: str, message: str, fix: str | None = None) -> None:
        problems.append(Problem(key, _get(raw, key), message, fix or _fix_for(key, stack)))

    cidr = _get(raw, "network.cidr")
    if isinstance(cidr, str) and not _ipv4_network(cidr):
        add("network.cidr", "is not an IPv4 network (octets 0-255, no host bits set)")
    percents = _get(raw, "budget.alertPercents")
    if bp in ("sagemaker", "azureml") and isinstance(percents, list | tuple) and not percents:
        add("budget.alertPercents", "is empty, but the budget alerts need at least one")
    account = _get(raw, "promotion.targetAccount", None)
    if bp == "sagemaker" and isinstance(account, str) and not re.fullmatch(r"\d{12}", account):
        add("promotion.targetAccount", "is not a 12-digit AWS account id")
    if bp == "azureml" and isinstance(account, str) and not _AZURE_ID.match(account):
        add("promotion.targetAccount", "is not an Azure subscription id (a GUID)")
    inp, out = _or_default(raw, "batch.inputPrefix"), _or_default(raw, "batch.outputPrefix")
    if (
        isinstance(inp, str)
        and isinstance(out, str)
        and (inp.startswith(out) or out.startswith(inp))
    ):
        add(
            "batch.outputPrefix",
            f"overlaps batch.inputPrefix={inp!r}: the next run would score its own outputs",
            "set batch.outputPrefix to a folder apart from batch.inputPrefix",
        )
    event = _get(raw, "release.eventType")
    if isinstance(event, str) and not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", event):
        add("release.eventType", "is not 1-100 letters, digits, '.', '_' or '-'")
    if (
        bp == "azureml"
        and raw.get("releaseToken") is not None
        and _get(raw, "release.tokenExpiresOn", None) is None
    ):
        add(
            "release.tokenExpiresOn",
            "is unset, but on azureml the CI token's Key Vault secret carries its expiry",
            "set release.tokenExpiresOn to the token's expiry date (README, Security changes)",
        )
    region = raw.get("region")
    aws_region = bp == "sagemaker" and isinstance(region, str) and _AWS_REGION.match(region)
    if aws_region and region not in ANALYZER_ACCOUNTS:
        add(
            "region",
            "has no SageMaker Model Monitor, which the stack's drift monitoring runs on",
            f"use one of {', '.join(sorted(ANALYZER_ACCOUNTS))}",
        )
    if bp == "sagemaker":
        for key in ("schedule.cron", "drift.checkCron", "batch.cron"):
            fields = _get(raw, key).split() if isinstance(_get(raw, key), str) else []
            if len(fields) == 5 and fields[2] != "*" and fields[4] != "*":
                add(
                    key,
                    "sets both day-of-month and day-of-week, which AWS schedules cannot",
                    f"set only one of them (the other `*`) in {key}",
                )
        fields = (
            _get(raw, "drift.checkCron").split()
            if isinstance(_get(raw, "drift.checkCron"), str)
            else []
        )
        if len(fields) == 5 and fields[0] != "0":
            add(
                "drift.checkCron",
                "is not at minute 0: SageMaker Model Monitor runs hourly or daily on the hour",
                "set drift.checkCron to e.g. `0 * * * *` (hourly) or `0 2 * * *` (daily)",
            )
    if bp in ("onprem", "cluster"):
        issuer = _get(raw, "kubernetes.clusterIssuer")  # the cluster stack's (#14)
        if bp == "cluster" and isinstance(issuer, str) and not _K8S_DNS_LABEL.match(issuer):
            add(
                "kubernetes.clusterIssuer",
                "is not a DNS label (lowercase letters, digits and '-', at most 63 characters)",
            )
        domain = _get(raw, "kubernetes.ingressDomain")
        if isinstance(domain, str) and not _DNS_SUBDOMAIN.match(domain):
            add(
                "kubernetes.ingressDomain",
                "is not a DNS name (dot-separated labels of lowercase letters, digits and '-')",
            )
    return problems


def _config_keys(model: type[BaseModel] | None = None, parent: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in (model or StackSettings).model_fields.items():
        key = f"{parent}{to_camel(name)}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys.extend(_config_keys(ann, f"{key}."))
        else:
            keys.append(key)
    return keys


def component_error(stack: str, exc: Exception) -> str:
    """A component's argument error that escaped validation, as a config error: the stack,
    the config keys it names (when it names any) and the component's own message."""
    text = str(exc)
    named = [k for k in _config_keys() if re.search(rf"(?<![\w.]){re.escape(k)}(?![\w])", text)]
    keys = f" (config key: {', '.join(named)})" if named else ""
    return (
        f"stack config {stack!r} passed validation but a component refused it{keys}; nothing "
        f"was deployed by that component:\n{text}\n(fix the key above; the schema should have "
        "caught this, please report it)"
    )


def parse_value(value: Any) -> Any:
    """Pulumi hands structured config to programs as JSON text; decode it."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def validate_settings(
    config: Mapping[str, Any], secret_keys: set[str] | frozenset[str] = frozenset(), *, stack: str
) -> StackSettings:
    """Validate the `mlops:` keys of one stack. `config` maps `mlops:key` (or bare `key`) to
    values; `secret_keys` names the keys Pulumi holds as secrets. Raises ConfigError with
    every problem found."""
    raw: dict[str, Any] = {}
    problems: list[Problem] = []
    known = _keys_of(StackSettings)
    for full_key, value in config.items():
        ns, _, key = full_key.rpartition(":")
        if ns and ns != NAMESPACE:
            continue  # other providers' keys (aws:region, azure-native:location, ...)
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean {NAMESPACE}:{close[0]}?)" if close else ""
            problems.append(
                Problem(
                    key,
                    value,
                    f"is not a known key{hint}",
                    "remove it or rename it; docs/config.md lists every key",
                )
            )
            continue
        value = parse_value(value)
        if value == "":
            continue  # Pulumi.yaml's neutral default: the key is unset
        if (
            key in SECRET_KEYS
            and value is not None
            and full_key not in secret_keys
            and (f"{NAMESPACE}:{key}" not in secret_keys)
        ):
            problems.append(
                Problem(
                    key,
                    "<plain text>",
                    "is stored in plain text but holds a credential",
                    f"run `pulumi config set --secret {NAMESPACE}:{key} <value>`",
                )
            )
        raw[key] = value

    bp, env = raw.get("blueprint"), raw.get("environment")
    merged: dict[str, Any] = {}
    if isinstance(bp, str):
        merged = _deep_merge(merged, BLUEPRINT_DEFAULTS.get(bp, {}))
    if isinstance(env, str):
        merged = _deep_merge(merged, TIER_DEFAULTS.get(env, {}))
    merged = _deep_merge(merged, raw)

    settings: StackSettings | None = None
    try:
        settings = StackSettings.model_validate(merged)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            value = err.get("input", _UNSET) if err["type"] != "missing" else _UNSET
            message, fix = _describe(err, key, stack)
            problems.append(Problem(key, value, message, fix))
    problems.extend(_cross_checks(merged, stack))
    if problems or settings is None:
        raise ConfigError(stack, problems)
    return settings


def project_root(start: Path | None = None) -> Path:
    """The Pulumi project the commands work on: the nearest folder at or above `start` (the
    working directory) that holds a `Pulumi.yaml`, else the kit's own folder. `mlops new`
    writes stack files there and every other command reads them from there."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return PROJECT_ROOT


YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""The safe loader, in libyaml when PyYAML has it (the same documents, about 10x faster: every
command reads Pulumi.yaml and a stack file, `mlops docs` and `mlops plans` every stack's)."""


def stack_file(stack: str, root: Path = PROJECT_ROOT) -> Path:
    """Where the stack file of `stack` is (or would be) in the project at `root`."""
    return root / f"Pulumi.{stack}.yaml"


def existing_stack_file(stack: str, root: Path = PROJECT_ROOT) -> Path:
    """The stack file of `stack`; FileNotFoundError naming the stacks there are otherwise."""
    path = stack_file(stack, root)
    if not path.exists():
        known = ", ".join(list_stacks(root)) or "none"
        raise FileNotFoundError(
            f"no stack {stack!r}: {path.name} does not exist in {root} (stacks: {known}); "
            f"create it with `mlops new CLIENT --blueprint B --env E`"
        )
    return path


def read_stack_file(path: Path) -> tuple[dict[str, Any], set[str]]:
    """The `config:` block of a stack file and the keys stored as `secure:` values.
    Secure values cannot be decrypted offline; they read as `[secret]`."""
    try:
        doc = yaml.load(path.read_text(), Loader=YAML_LOADER) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            path.stem.removeprefix("Pulumi."),
            [Problem("<file>", str(path), f"is not valid YAML ({exc})", "fix the YAML syntax")],
        ) from exc
    config = doc.get("config") or {}
    values: dict[str, Any] = {}
    secrets: set[str] = set()
    for key, value in config.items():
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            values[key] = "[secret]"
            secrets.add(key)
        else:
            values[key] = value
    return values, secrets


def apply_project_defaults(values: dict[str, Any], root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Add the defaults Pulumi.yaml declares for keys the stack file does not set, as the
    Pulumi CLI does before it runs the program."""
    project = (
        yaml.load((root / "Pulumi.yaml").read_text(), Loader=YAML_LOADER)
        if (root / "Pulumi.yaml").exists()
        else {}
    )
    merged = dict(values)
    for key, decl in ((project or {}).get("config") or {}).items():
        if isinstance(decl, Mapping) and "default" in decl and key not in merged:
            merged[key] = decl["default"]
    return merged


def list_stacks(root: Path = PROJECT_ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def load_stack(stack: str, root: Path = PROJECT_ROOT) -> StackSettings:
    """Read and validate `Pulumi.<stack>.yaml`. Raises FileNotFoundError naming the stacks
    there are, or ConfigError."""
    values, secrets = read_stack_file(existing_stack_file(stack, root))
    return validate_settings(apply_project_defaults(values, root), secrets, stack=stack)


def tier_config(client: str, blueprint: str, environment: str) -> dict[str, Any]:
    """The `config:` block `mlops new` writes: the keys a person edits first, with the tier's
    defaults written out so they are visible."""
    defaults = _deep_merge(BLUEPRINT_DEFAULTS.get(blueprint, {}), TIER_DEFAULTS[environment])
    settings = StackSettings.model_validate(
        {**defaults, "blueprint": blueprint, "client": client, "environment": environment}
    )
    dumped = settings.model_dump(by_alias=True, mode="json", exclude_none=True)
    keep = (
        "region",
        "network",
        "training",
        "endpoint",
        "rollout",
        "approval",
        "schedule",
        "drift",
        "gate",
        "budget",
        "stores",
        "tracking",
    )
    config: dict[str, Any] = {
        f"{NAMESPACE}:blueprint": blueprint,
        f"{NAMESPACE}:client": client,
        f"{NAMESPACE}:environment": environment,
    }
    for key in keep:
        if key == "region" and blueprint == "onprem":
            continue
        config[f"{NAMESPACE}:{key}"] = dumped[key]
    if blueprint == "onprem":
        config[f"{NAMESPACE}:kubernetes"] = {
            **dumped["kubernetes"],
            "ingressDomain": default_ingress_domain(client, environment),
            "clusterStack": f"{client}-cluster",
        }
        config[f"{NAMESPACE}:kubernetes"].pop("clusterIssuer", None)
    return config


def cluster_config(client: str, environment: str = "prod") -> dict[str, Any]:
    """The `config:` block `mlops new CLIENT --blueprint cluster` writes: the client's three
    tiers listed as the stacks sharing the cluster, and the cluster-wide keys."""
    dumped = StackSettings.model_validate(
        {"blueprint": "cluster", "client": client, "environment": environment}
    ).model_dump(by_alias=True, mode="json", exclude_none=True)
    kube = {k: dumped["kubernetes"][k] for k in ("ingressDomain", "clusterIssuer")}
    return {
        f"{NAMESPACE}:blueprint": "cluster",
        f"{NAMESPACE}:client": client,
        f"{NAMESPACE}:environment": environment,
        f"{NAMESPACE}:kubernetes": kube,
        f"{NAMESPACE}:cluster": {
            **dumped["cluster"],
            "clients": {
                f"{client}-{env}": default_ingress_domain(client, env)
                for env in ("dev", "staging", "prod")
            },
            "controlPlaneCidr": "10.0.0.0/24",
        },
        f"{NAMESPACE}:suppressions": [CLUSTER_WEBHOOK_SUPPRESSION],
    }


CLUSTER_WEBHOOK_SUPPRESSION = {
    "control": "K8S-NET-05",
    "justification": (
        "the API server calls the operators' admission webhooks from the control-plane nodes, "
        "which no namespace or pod selector can name; the operator namespaces admit the "
        "webhook ports from cluster.controlPlaneCidr only"
    ),
}


# The schema's own defaults, for the component arguments that mirror a config key: a
# component's default is the config's, so a programmatic user gets what a stack file would.
ENDPOINT_DEFAULTS = EndpointSettings()
ROLLOUT_DEFAULTS = RolloutSettings()
STORE_DEFAULTS = StoreSettings()
