"""The stack contract on any Kubernetes cluster, from open-source parts that run on the
client's own hardware (pulumi-kubernetes).

Three namespaces (platform, pipelines, serving) enforce the `restricted` Pod Security
Standard, deny all traffic by default and carry a ResourceQuota sized from the monthly
budget. MinIO keeps the versioned artifact bucket, a small distribution registry keeps the
images, and MLflow on PostgreSQL is the tracking server and model registry (on-prem it always
runs, because it is the registry; `tracking.enabled` does not remove it). Argo Workflows runs
the compiled training pipeline on a schedule and, through Argo Events, when raw data lands.
Approving a version (the `champion` alias) fires an MLflow webhook at an in-cluster bridge
that checks its signature and starts the CI release workflow. Once `mlops:model` names a
version, KServe serves it in RawDeployment mode: an HPA scales the predictor on CPU (at least
one replica: RawDeployment does not scale to zero), a new version rolls out in steps of
`rollout.trafficStepPercent` of the pods, a disruption budget, and request capture to the
artifact store. Prometheus rules alert on errors, latency,
drift and budget use; cert-manager certificates put TLS on every ingress.

The stack runs on a cluster stack (blueprint `cluster`, named by `kubernetes.clusterStack`)
that installs cert-manager and its ClusterIssuer, the Prometheus Operator CRDs, Argo
Workflows, Argo Events and KServe (RawDeployment mode) once, and owns this stack's
cluster-scoped objects (storage container, training PriorityClass, CI namespace rights). This
stack reads it through a StackReference and declares only objects in its own three namespaces
(which it owns), so unpinning a model or destroying the stack touches no other client.
Several clients share a cluster safely: each client stack owns its namespaces (a tenant
creating its own namespaces is normal; the cluster stack grants its CI identity rights on
exactly those), and its quotas, limit ranges, default-deny policies and namespaced RBAC keep
it apart; its ingress hosts live under its own `kubernetes.ingressDomain` (give every client
its own). Assumed present on the cluster: an ingress controller and Prometheus with
kube-state-metrics.

Known gaps: a new version that trips the rollback alerts is rolled back by a person (set
`mlops:model` back and run `mlops apply`), since KServe does not act on alerts. The kit's own
image (MLflow server, bridge, pipeline steps) is `mlops:image`, which prod pins by digest.

Batch scoring (`batch.enabled`, with `mlops:model`): an Argo CronWorkflow on `batch.cron` scores
the bucket's `batch.inputPrefix` with `models:/<model>/<version>` and writes the predictions
under `batch.outputPrefix`, restricted pod security, requests and limits, never concurrent.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from blueprints import Evidence
from components.onprem import images
from components.onprem.artifact_store import ArtifactStore, ArtifactStoreArgs, minio_app
from components.onprem.batch import BatchScoring, BatchScoringArgs
from components.onprem.capture import DataCapture, DataCaptureArgs, capture_app
from components.onprem.ci_identity import CiIdentity, CiIdentityArgs
from components.onprem.cluster_ref import read_cluster_stack
from components.onprem.endpoint import ModelEndpoint, ModelEndpointArgs, endpoint_app
from components.onprem.identities import Identities, IdentitiesArgs
from components.onprem.monitoring import Monitoring, MonitoringArgs, ScrapeTarget
from components.onprem.namespaces import ROLES, Namespaces, NamespacesArgs
from components.onprem.network import Route, TlsIngress, TlsIngressArgs
from components.onprem.pipeline import (
    BASELINE_KEY,
    TrainingPipeline,
    TrainingPipelineArgs,
    compile_workflow_template,
    registered_model_name,
)
from components.onprem.registry import ContainerRegistry, ContainerRegistryArgs
from components.onprem.release import ReleaseTrigger, ReleaseTriggerArgs
from components.onprem.secrets import Secrets, SecretsArgs
from components.onprem.tracking import Tracking, TrackingArgs, tracking_app
from components.onprem.workload import Peer, labels_from_tags
from core.config import StackSettings
from core.contract import Capability

NAME = "onprem"
PLATFORM = "kubernetes"
TITLE = "Kubernetes (on-premises)"

CAPABILITIES: dict[Capability, str] = {
    Capability.ARTIFACT_STORE: "MinIO StatefulSet with a versioned bucket (or external S3).",
    Capability.CONTAINER_REGISTRY: "In-cluster registry behind TLS ingress (or an external one).",
    Capability.KEYS_AND_SECRETS: "pulumi-random credentials in Kubernetes Secrets.",
    Capability.IDENTITIES: "One ServiceAccount per duty; RBAC only in its namespace.",
    Capability.EXPERIMENT_TRACKING: "MLflow server (Deployment) on PostgreSQL (StatefulSet).",
    Capability.MODEL_REGISTRY: "MLflow model registry; approval is the `champion` alias.",
    Capability.TRAINING_COMPUTE: "Pipelines namespace at the cluster's preemptible PriorityClass.",
    Capability.TRAINING_PIPELINE: "Argo WorkflowTemplate compiled from the pipeline definition.",
    Capability.PIPELINE_SCHEDULE: "Argo CronWorkflow running the WorkflowTemplate.",
    Capability.DATA_CHANGE_TRIGGER: "Argo Events Sensor on new objects under `data/`.",
    Capability.RELEASE_TRIGGER: "MLflow webhook to a bridge that starts the CI release.",
    Capability.SERVING_ENDPOINT: "KServe InferenceService (RawDeployment) of the MLflow version.",
    Capability.AUTOSCALING: "An HPA scaling the predictor on CPU between min and max replicas.",
    Capability.GUARDED_ROLLOUT: "Rolling update in traffic steps, with Prometheus rollback alerts.",
    Capability.DATA_CAPTURE: "KServe request logger to a Vector sink writing to the bucket.",
    Capability.DRIFT_MONITORING: "Argo CronWorkflow comparing captures with the baseline (PSI).",
    Capability.ALERTS: "PrometheusRule alerts on errors, latency, drift and budget.",
    Capability.BUDGET: "ResourceQuota per namespace sized from the monthly budget, with alerts.",
    Capability.NETWORK_ISOLATION: "Default-deny NetworkPolicies and TLS-only ingress.",
}

EVIDENCE: tuple[Evidence, ...] = (
    Evidence(Capability.ARTIFACT_STORE, "mlops:onprem:ArtifactStore"),
    Evidence(Capability.CONTAINER_REGISTRY, "mlops:onprem:ContainerRegistry"),
    Evidence(Capability.KEYS_AND_SECRETS, "random:index/randomPassword:RandomPassword"),
    Evidence(Capability.KEYS_AND_SECRETS, "kubernetes:core/v1:Secret", "stringData"),
    Evidence(Capability.IDENTITIES, "kubernetes:core/v1:ServiceAccount"),
    Evidence(Capability.IDENTITIES, "kubernetes:rbac.authorization.k8s.io/v1:Role", "rules"),
    Evidence(Capability.EXPERIMENT_TRACKING, "mlops:onprem:Tracking"),
    Evidence(Capability.MODEL_REGISTRY, "mlops:onprem:Tracking"),
    Evidence(
        Capability.TRAINING_COMPUTE,
        "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate",
        "spec.podPriorityClassName",
    ),
    Evidence(
        Capability.TRAINING_PIPELINE,
        "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate",
        "spec.templates",
    ),
    Evidence(
        Capability.PIPELINE_SCHEDULE,
        "kubernetes:argoproj.io/v1alpha1:CronWorkflow",
        "spec.workflowSpec.workflowTemplateRef.name",
    ),
    Evidence(
        Capability.DATA_CHANGE_TRIGGER, "kubernetes:argoproj.io/v1alpha1:EventSource", "spec.minio"
    ),
    Evidence(
        Capability.DATA_CHANGE_TRIGGER, "kubernetes:argoproj.io/v1alpha1:Sensor", "spec.triggers"
    ),
    Evidence(Capability.RELEASE_TRIGGER, "mlops:onprem:ReleaseTrigger"),
    Evidence(
        Capability.SERVING_ENDPOINT,
        "kubernetes:serving.kserve.io/v1beta1:InferenceService",
        "spec.predictor.model.storageUri",
    ),
    Evidence(
        Capability.AUTOSCALING,
        "kubernetes:serving.kserve.io/v1beta1:InferenceService",
        "spec.predictor.maxReplicas",
    ),
    Evidence(
        Capability.GUARDED_ROLLOUT,
        "kubernetes:serving.kserve.io/v1beta1:InferenceService",
        "spec.predictor.deploymentStrategy.rollingUpdate.maxSurge",
    ),
    Evidence(
        Capability.DATA_CAPTURE,
        "kubernetes:serving.kserve.io/v1beta1:InferenceService",
        "spec.predictor.logger.url",
    ),
    Evidence(
        Capability.DRIFT_MONITORING,
        "kubernetes:argoproj.io/v1alpha1:CronWorkflow",
        "spec.workflowSpec.templates",
    ),
    Evidence(
        Capability.ALERTS, "kubernetes:monitoring.coreos.com/v1:PrometheusRule", "spec.groups"
    ),
    Evidence(Capability.BUDGET, "kubernetes:core/v1:ResourceQuota", "spec.hard"),
    Evidence(
        Capability.NETWORK_ISOLATION,
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "spec.policyTypes",
    ),
)


def build(settings: StackSettings) -> dict[str, pulumi.Input[str]]:
    prefix, kube = settings.prefix, settings.kubernetes
    # staging is prod-like: the same replicas and digest rules as prod (core.config TIER_DEFAULTS)
    prod_like = settings.environment in ("staging", "prod")
    pin = settings.environment != "dev"
    labels = labels_from_tags(settings.all_tags)
    # mlops:image is the CI-built kit image; staging and prod config require it by digest.
    kit_image = settings.image or images.KIT_IMAGE.ref(pin=pin)
    domain, model = kube.ingress_domain, settings.model

    namespace_prefix = f"{kube.namespace_prefix}-{prefix}"
    shared = read_cluster_stack(
        kube.cluster_stack or "",
        prefix,
        [f"{namespace_prefix}-{role}" for role in ROLES],
        kube.ingress_domain,
    )
    cluster = k8s.Provider("cluster", context=kube.context, enable_server_side_apply=True)
    on_cluster = pulumi.ResourceOptions(providers={"kubernetes": cluster})

    namespaces = Namespaces(
        "namespaces",
        NamespacesArgs(
            prefix=namespace_prefix,
            monthly_budget_usd=settings.budget.monthly_usd,
            labels=labels,
            protect=settings.stores.protect,
        ),
        on_cluster,
    )
    platform = namespaces.names["platform"]
    pipelines_ns = namespaces.names["pipelines"]
    serving = namespaces.names["serving"]
    in_namespaces = pulumi.ResourceOptions(
        providers={"kubernetes": cluster}, depends_on=[namespaces]
    )

    identities = Identities(
        "identities",
        IdentitiesArgs(
            prefix=prefix,
            pipelines_namespace=pipelines_ns,
            serving_namespace=serving,
            platform_namespace=platform,
            labels=labels,
        ),
        in_namespaces,
    )

    token = pulumi.Output.secret(settings.release_token) if settings.release_token else None
    secrets = Secrets(
        "secrets",
        SecretsArgs(
            prefix=prefix,
            platform_namespace=platform,
            s3_namespaces=[pipelines_ns, serving],
            release_token=token,
            labels=labels,
        ),
        in_namespaces,
    )
    after_secrets = pulumi.ResourceOptions(
        providers={"kubernetes": cluster}, depends_on=[namespaces, secrets]
    )
    if settings.ci.identity and settings.release.repository:
        CiIdentity(
            "ci",
            CiIdentityArgs(
                prefix=prefix,
                home_namespace=platform,
                namespaces=list(namespaces.names.values()),
                repository=settings.release.repository,
                labels=labels,
            ),
            in_namespaces,
        )

    ingress_controller = Peer(namespace=shared.ingress_namespace)
    prometheus = Peer(namespace=shared.monitoring_namespace)
    mlflow = Peer(namespace=platform, app=tracking_app(prefix))
    minio = Peer(namespace=platform, app=minio_app(prefix))
    predictor = Peer(namespace=serving, app=endpoint_app(prefix))
    capture_sink = Peer(namespace=serving, app=capture_app(prefix))

    store = ArtifactStore(
        "artifact-store",
        ArtifactStoreArgs(
            prefix=prefix,
            namespace=platform,
            bucket=f"{prefix}-artifacts",
            image=images.image("minio", pin=pin),
            root_secret=secrets.minio_root,
            s3_secret=secrets.s3,
            clients=[
                mlflow,
                Peer(namespace=pipelines_ns),
                prometheus,
                *([capture_sink] if model else []),
            ],
            storage_class=kube.storage_class,
            protect=settings.stores.protect,
            noncurrent_days=settings.stores.noncurrent_days,
            labels=labels,
        ),
        after_secrets,
    )

    registry = ContainerRegistry(
        "registry",
        ContainerRegistryArgs(
            prefix=prefix,
            namespace=platform,
            host=f"registry.{domain}",
            image=images.image("registry", pin=pin),
            clients=[ingress_controller],
            storage_class=kube.storage_class,
            protect=settings.stores.protect,
            labels=labels,
        ),
        in_namespaces,
    )

    tracking = Tracking(
        "tracking",
        TrackingArgs(
            prefix=prefix,
            namespace=platform,
            mlflow_image=kit_image,
            postgres_image=images.image("postgres", pin=pin),
            postgres_secret=secrets.postgres,
            s3_secret=secrets.s3,
            s3_endpoint=store.endpoint,
            bucket=store.bucket,
            artifact_store=minio,
            clients=[
                Peer(namespace=pipelines_ns),
                ingress_controller,
                prometheus,
                *([predictor] if model else []),
            ],
            hosts=[f"mlflow.{domain}"],
            replicas=2 if prod_like else 1,
            storage_class=kube.storage_class,
            protect=settings.stores.protect,
            labels=labels,
        ),
        after_secrets,
    )

    model_name = registered_model_name(settings)
    pipeline = TrainingPipeline(
        "pipeline",
        TrainingPipelineArgs(
            prefix=prefix,
            namespace=pipelines_ns,
            workflow_template=compile_workflow_template(
                settings,
                name=f"{prefix}-training",
                namespace=pipelines_ns,
                image=kit_image,
                mlflow_tracking_uri=tracking.tracking_uri,
                service_account=identities.accounts["pipeline"],
                artifact_bucket=store.bucket,
            ),
            service_account=identities.accounts["pipeline"],
            schedule_cron=settings.schedule.cron,
            s3_endpoint=store.endpoint,
            bucket=store.bucket,
            s3_secret=secrets.s3,
            artifact_store=minio,
            tracking=mlflow,
            priority_class=shared.priority_class,
            data_trigger=settings.schedule.data_trigger,
            max_parallel=settings.training.max_nodes,
            api_server_cidr=settings.kubernetes.api_server_cidr,
            labels=labels,
        ),
        after_secrets,
    )

    if model and settings.batch.enabled:
        BatchScoring(
            "batch",
            BatchScoringArgs(
                prefix=prefix,
                namespace=pipelines_ns,
                image=kit_image,
                service_account=identities.accounts["pipeline"],
                tracking_uri=tracking.tracking_uri,
                model_name=model_name,
                model_version=model,
                s3_endpoint=store.endpoint,
                bucket=store.bucket,
                s3_secret=secrets.s3,
                cron=settings.batch.cron,
                input_prefix=settings.batch.input_prefix,
                output_prefix=settings.batch.output_prefix,
                cpu=settings.training.cpu,
                memory=settings.training.memory,
                require_digest=prod_like,
                labels=labels,
            ),
            after_secrets,
        )

    release = ReleaseTrigger(
        "release",
        ReleaseTriggerArgs(
            prefix=prefix,
            namespace=platform,
            image=kit_image,
            service_account=identities.accounts["release"],
            tracking_uri=tracking.tracking_uri,
            tracking_app=tracking.app,
            webhook_secret=secrets.webhook,
            model_name=model_name,
            stack=f"{settings.client}-{settings.environment}",
            provider=settings.release.provider,
            repository=settings.release.repository,
            token_secret=secrets.release_token,
            event_type=settings.release.event_type,
            labels=labels,
        ),
        after_secrets,
    )

    endpoint_name = endpoint_url = ""
    routes = [
        Route("mlflow", platform, f"mlflow.{domain}", tracking.service, 5000),
        Route("registry", platform, f"registry.{domain}", registry.service, 5000, max_body="0"),
    ]
    targets = [
        ScrapeTarget("mlflow", platform, {"app": tracking.app}, "http"),
        ScrapeTarget("minio", platform, {"app": store.app}, "s3", "/minio/v2/metrics/cluster"),
    ]
    capture_prefix = f"captures/{endpoint_app(prefix)}/"
    if model:
        capture = DataCapture(
            "capture",
            DataCaptureArgs(
                prefix=prefix,
                namespace=serving,
                image=images.image("vector", pin=pin),
                s3_endpoint=store.endpoint,
                bucket=store.bucket,
                key_prefix=capture_prefix,
                s3_secret=secrets.s3,
                senders=predictor,
                artifact_store=minio,
                labels=labels,
            ),
            after_secrets,
        )
        endpoint = ModelEndpoint(
            "endpoint",
            ModelEndpointArgs(
                prefix=prefix,
                namespace=serving,
                model_name=model_name,
                model_version=model,
                service_account=identities.accounts["serving"],
                storage_uri_prefix=shared.storage_uri_prefix,
                tracking=mlflow,
                capture_url=capture.url,
                capture=capture_sink,
                min_replicas=settings.endpoint.min_instances,
                max_replicas=settings.endpoint.max_instances,
                rollout_strategy=settings.rollout.strategy,
                traffic_step_percent=settings.rollout.traffic_step_percent,
                cpu=settings.endpoint.cpu,
                memory=settings.endpoint.memory,
                capture_percent=settings.endpoint.capture_percent,
                deployment_mode=shared.kserve_mode,
                ingress_namespace=shared.ingress_namespace,
                monitoring_namespace=shared.monitoring_namespace,
                labels=labels,
            ),
            pulumi.ResourceOptions(
                providers={"kubernetes": cluster}, depends_on=[namespaces, tracking, capture]
            ),
        )
        endpoint_name = endpoint.endpoint_name
        endpoint_url = f"https://{endpoint_name}.{domain}/v2/models/{endpoint_name}/infer"
        routes.append(
            Route(
                "endpoint",
                serving,
                f"{endpoint_name}.{domain}",
                endpoint.service,
                80,
            )
        )
        targets.append(
            ScrapeTarget(
                "endpoint",
                serving,
                endpoint.metrics_selector,
                "metrics",
            )
        )

    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            prefix=prefix,
            namespace=pipelines_ns,
            targets=targets,
            image=kit_image,
            service_account=identities.accounts["monitoring"],
            drift_cron=settings.drift.check_cron,
            drift_threshold=settings.drift.threshold,
            captures_uri=f"{store.uri}/{capture_prefix}",
            baseline_uri=f"{store.uri}/{BASELINE_KEY}",
            s3_endpoint=store.endpoint,
            s3_secret=secrets.s3,
            quota_namespaces=list(namespaces.names.values()),
            quota_name=namespaces.quota_name,
            budget_alert_percents=settings.budget.alert_percents,
            endpoint=endpoint_name or None,
            serving_namespace=serving,
            rollback_alarms=settings.rollout.alarms,
            latency_threshold_ms=settings.rollout.latency_threshold_ms,
            labels=labels,
        ),
        in_namespaces,
    )

    TlsIngress(
        "ingress",
        TlsIngressArgs(
            prefix=prefix,
            routes=routes,
            cluster_issuer=shared.cluster_issuer,
            ingress_class=shared.ingress_class,
            allowed_cidrs=[settings.network.cidr] if settings.network.mode == "private" else [],
            labels=labels,
        ),
        in_namespaces,
    )

    return {
        "blueprint": NAME,
        "client": settings.client,
        "environment": settings.environment,
        "artifactStoreUri": store.uri,
        "containerRegistryUrl": registry.url,
        "keyId": f"{platform}/{secrets.minio_root}",
        "secretStore": secrets.store,
        "pipelineIdentity": identities.pipeline,
        "servingIdentity": identities.serving,
        "releaseIdentity": identities.release,
        "monitoringIdentity": identities.monitoring,
        "trackingUri": tracking.tracking_uri,
        "modelRegistry": f"mlflow:{model_name}",
        "trainingCompute": pipeline.training_compute,
        "pipelineName": pipeline.pipeline_name,
        "pipelineSchedule": pipeline.schedule_name,
        "dataChangeTrigger": pipeline.trigger_name,
        "releaseTrigger": release.name,
        "endpointName": endpoint_name,
        "endpointUrl": endpoint_url,
        "modelVersion": model or "",
        "alertsTarget": monitoring.alerts_target,
        "budgetName": namespaces.quota_name,
        "network": ",".join(namespaces.names.values()),
    }
