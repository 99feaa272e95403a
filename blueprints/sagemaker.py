"""The sagemaker blueprint: the stack contract on AWS, built with pulumi-aws.

One customer-managed KMS key encrypts everything the stack stores. Data, pipeline artifacts,
MLflow artifacts and captured traffic live in one versioned, private, TLS-only, access-logged
S3 bucket; images in an ECR repository with immutable tags. Each duty (pipeline, serving,
monitoring, release, triggers, tracking) has its own IAM role scoped to the stack's own
resources. The training pipeline is compiled from the kit's single pipeline definition into a
SageMaker pipeline, started on a schedule (EventBridge Scheduler) and when raw data lands
(EventBridge rule on S3 events); it registers accepted versions in a model package group.
A batch that drifted from the training baseline fails the pipeline's validation step, and
that failure is alerted.
Approving a version fires an EventBridge rule that starts the CI release workflow (GitHub
`repository_dispatch` or Azure DevOps) through an API destination whose token sits in Secrets
Manager. The release workflow pins the version in `mlops:model` and runs `pulumi up`: Pulumi
owns the endpoint, which serves the model package (the digest-pinned kit image serving the
MLflow model) network-isolated in private subnets, captures traffic for Model Monitor, scales
with load and rolls new versions out blue/green with automatic rollback on CloudWatch alarms.
Alerts go to one SNS topic; a monthly budget watches the stack's tag.
Batch scoring (`batch.enabled`, with `mlops:model`): a scoring pipeline whose batch-transform
step scores `batch.inputPrefix` of the bucket into `batch.outputPrefix` with the same model
package version, network-isolated, KMS on volume and output, started by a Scheduler schedule.

Dev tier: a serverless endpoint (AWS runs serverless endpoints without network isolation,
VPC, data capture, Model Monitor or deployment guardrails, so those are off and the controls
table documents each exception), a public network (no VPC endpoints to pay for), spot
training, no MLflow server and unprotected stores. Each can be switched on in the stack file.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from blueprints import Evidence
from components.aws.alerts import Alerts, AlertsArgs
from components.aws.artifact_store import ArtifactStore, ArtifactStoreArgs
from components.aws.batch import BatchScoring, BatchScoringArgs
from components.aws.boundary import PermissionsBoundary, PermissionsBoundaryArgs
from components.aws.budget import StackBudget, StackBudgetArgs
from components.aws.ci_identity import CiIdentity, CiIdentityArgs
from components.aws.common import StackNames, arn
from components.aws.data_drift import DataDriftAlerts, DataDriftAlertsArgs
from components.aws.endpoint import ModelEndpoint, ModelEndpointArgs
from components.aws.identities import Identities, IdentitiesArgs
from components.aws.keys import StackKey, StackKeyArgs
from components.aws.model_registry import ModelRegistry, ModelRegistryArgs
from components.aws.monitoring import DriftMonitoring, DriftMonitoringArgs
from components.aws.network import PrivateNetwork, PrivateNetworkArgs
from components.aws.pipeline import (
    TrainingPipeline,
    TrainingPipelineArgs,
    compile_definition,
    kit_image,
)
from components.aws.provider import provider_opts, stack_provider
from components.aws.registry import ContainerRegistry, ContainerRegistryArgs
from components.aws.release import ReleaseTrigger, ReleaseTriggerArgs
from components.aws.tracking import ExperimentTracking, ExperimentTrackingArgs
from components.aws.triggers import ContinuousTraining, ContinuousTrainingArgs
from core.config import StackSettings
from core.contract import Capability

NAME = "sagemaker"
PLATFORM = "aws"
TITLE = "AWS SageMaker"

C = Capability
CAPABILITIES: dict[Capability, str] = {
    C.ARTIFACT_STORE: "S3 bucket: versioned, SSE-KMS, public access blocked, TLS only, "
    "access-logged, noncurrent versions expire.",
    C.CONTAINER_REGISTRY: "ECR repository: immutable tags, scan on push, KMS, lifecycle policy.",
    C.KEYS_AND_SECRETS: "Customer-managed KMS key (yearly rotation); the CI token in Secrets "
    "Manager via the EventBridge connection.",
    C.IDENTITIES: "IAM roles per duty (pipeline, serving, monitoring, release, triggers, "
    "tracking) scoped to the stack's resources.",
    C.EXPERIMENT_TRACKING: "SageMaker managed MLflow tracking server on the artifact bucket "
    "(off in dev by default).",
    C.MODEL_REGISTRY: "SageMaker model package group, readable by the promotion target account.",
    C.TRAINING_COMPUTE: "SageMaker training and processing jobs (spot in dev), billed per run.",
    C.TRAINING_PIPELINE: "SageMaker pipeline compiled from the kit's pipeline definition.",
    C.PIPELINE_SCHEDULE: "EventBridge Scheduler schedule starting the pipeline.",
    C.DATA_CHANGE_TRIGGER: "EventBridge rule on S3 `Object Created` under `raw/`.",
    C.RELEASE_TRIGGER: "EventBridge rule on Model Package approval -> API destination to CI, "
    "with retries and a dead-letter queue.",
    C.SERVING_ENDPOINT: "SageMaker endpoint serving the pinned model package version.",
    C.AUTOSCALING: "Application Auto Scaling target tracking (realtime) or serverless "
    "concurrency (dev).",
    C.GUARDED_ROLLOUT: "Blue/green canary or linear traffic shifting with automatic rollback on "
    "CloudWatch alarms (realtime endpoints).",
    C.DATA_CAPTURE: "Endpoint data capture to the artifact bucket, KMS-encrypted (realtime).",
    C.DRIFT_MONITORING: "Every training batch checked against the baseline by the pipeline "
    "(alerted via EventBridge); Model Monitor data-quality schedule on captured traffic "
    "(realtime endpoints).",
    C.ALERTS: "KMS-encrypted SNS topic fed by CloudWatch alarms, EventBridge and budgets.",
    C.BUDGET: "AWS Budget on the stack's `mlops:stack` tag with actual and forecast alerts.",
    C.NETWORK_ISOLATION: "VPC with private subnets in two zones, VPC endpoints, no open ingress "
    "(private network mode).",
}

EVIDENCE: tuple[Evidence, ...] = (
    Evidence(
        C.ARTIFACT_STORE,
        "aws:s3/bucketVersioning:BucketVersioning",
        "versioningConfiguration.status",
    ),
    Evidence(
        C.CONTAINER_REGISTRY,
        "aws:ecr/repository:Repository",
        "imageScanningConfiguration.scanOnPush",
    ),
    Evidence(C.KEYS_AND_SECRETS, "aws:kms/key:Key", "enableKeyRotation"),
    Evidence(
        C.KEYS_AND_SECRETS, "aws:cloudwatch/eventConnection:EventConnection", "kmsKeyIdentifier"
    ),
    Evidence(C.IDENTITIES, "aws:iam/rolePolicy:RolePolicy", "policy"),
    Evidence(
        C.EXPERIMENT_TRACKING,
        "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer",
        "artifactStoreUri",
    ),
    Evidence(
        C.MODEL_REGISTRY,
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
        "modelPackageGroupName",
    ),
    Evidence(C.TRAINING_COMPUTE, "aws:sagemaker/pipeline:Pipeline", "roleArn"),
    Evidence(C.TRAINING_PIPELINE, "aws:sagemaker/pipeline:Pipeline", "pipelineDefinition"),
    Evidence(C.PIPELINE_SCHEDULE, "aws:scheduler/schedule:Schedule", "scheduleExpression"),
    Evidence(
        C.DATA_CHANGE_TRIGGER, "aws:cloudwatch/eventTarget:EventTarget", "sagemakerPipelineTarget"
    ),
    Evidence(C.RELEASE_TRIGGER, "aws:cloudwatch/eventTarget:EventTarget", "inputTransformer"),
    Evidence(C.SERVING_ENDPOINT, "aws:sagemaker/endpoint:Endpoint", "endpointConfigName"),
    Evidence(
        C.AUTOSCALING,
        "aws:appautoscaling/policy:Policy",
        "targetTrackingScalingPolicyConfiguration",
    ),
    Evidence(
        C.AUTOSCALING,
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "productionVariants[*].serverlessConfig.maxConcurrency",
    ),
    Evidence(
        C.GUARDED_ROLLOUT,
        "aws:sagemaker/endpoint:Endpoint",
        "deploymentConfig.autoRollbackConfiguration.alarms",
    ),
    Evidence(
        C.DATA_CAPTURE,
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "dataCaptureConfig.destinationS3Uri",
    ),
    Evidence(C.DRIFT_MONITORING, "aws:cloudwatch/eventRule:EventRule", "tags.mlops:drift"),
    Evidence(
        C.DRIFT_MONITORING,
        "aws:sagemaker/monitoringSchedule:MonitoringSchedule",
        "monitoringScheduleConfig.monitoringJobDefinitionName",
    ),
    Evidence(C.ALERTS, "aws:sns/topic:Topic", "kmsMasterKeyId"),
    Evidence(C.ALERTS, "aws:cloudwatch/metricAlarm:MetricAlarm", "alarmActions"),
    Evidence(C.BUDGET, "aws:budgets/budget:Budget", "notifications"),
    Evidence(C.NETWORK_ISOLATION, "aws:ec2/subnet:Subnet", "cidrBlock"),
    Evidence(C.NETWORK_ISOLATION, "aws:ec2/vpcEndpoint:VpcEndpoint", "serviceName"),
)


def disabled_capabilities(settings: StackSettings) -> dict[Capability, str]:
    """Capabilities this stack's config switches off on AWS, each with the reason. (Offered to
    the plan so a switched-off capability is not reported as missing.)"""
    off: dict[Capability, str] = {}
    if not settings.tracking.enabled:
        off[C.EXPERIMENT_TRACKING] = "tracking.enabled is false"
    if settings.network.mode != "private":
        off[C.NETWORK_ISOLATION] = "network.mode is public"
    if settings.model and settings.endpoint.mode == "serverless":
        reason = "endpoint.mode is serverless, which AWS offers without "
        off[C.DATA_CAPTURE] = reason + "data capture"
        off[C.GUARDED_ROLLOUT] = reason + "deployment guardrails"
    if not settings.schedule.data_trigger:
        off[C.DATA_CHANGE_TRIGGER] = "schedule.dataTrigger is false"
    return off


def build(settings: StackSettings) -> dict[str, pulumi.Input[str]]:
    s, n, region = settings, StackNames(settings.prefix), settings.region
    provider = stack_provider(s.prefix, region, s.all_tags)
    opts = provider_opts(provider)
    account = aws.get_caller_identity_output(
        opts=pulumi.InvokeOutputOptions(provider=provider)
    ).account_id
    protect = s.stores.protect
    private = s.network.mode == "private"
    realtime = s.endpoint.mode == "realtime"

    key = StackKey(
        f"{s.prefix}-keys",
        StackKeyArgs(
            prefix=s.prefix,
            account_id=account,
            region=region,
            deletion_window_days=30 if protect else 7,
            protect=protect,
        ),
        opts,
    )
    store = ArtifactStore(
        f"{s.prefix}-artifacts",
        ArtifactStoreArgs(
            prefix=s.prefix,
            account_id=account,
            region=region,
            kms_key_arn=key.key_arn,
            noncurrent_days=s.stores.noncurrent_days,
            protect=protect,
            eventbridge_notifications=s.schedule.data_trigger,
        ),
        opts,
    )
    images = ContainerRegistry(
        f"{s.prefix}-registry",
        ContainerRegistryArgs(
            repository_name=n.repository, kms_key_arn=key.key_arn, protect=protect
        ),
        opts,
    )
    boundary = PermissionsBoundary(
        f"{s.prefix}-boundary",
        PermissionsBoundaryArgs(prefix=s.prefix, account_id=account, region=region),
        opts,
    )
    network = (
        PrivateNetwork(
            f"{s.prefix}-network",
            PrivateNetworkArgs(
                cidr=s.network.cidr,
                region=region,
                prefix=s.prefix,
                account_id=account,
                kms_key_arn=key.key_arn,
                boundary_arn=boundary.arn,
            ),
            opts,
        )
        if private
        else None
    )
    roles = Identities(
        f"{s.prefix}-identities",
        IdentitiesArgs(
            prefix=s.prefix,
            account_id=account,
            region=region,
            bucket_arn=store.bucket_arn,
            kms_key_arn=key.key_arn,
            repository_arn=images.repository_arn,
            tracking=s.tracking.enabled,
            in_vpc=private,
            clarify=s.explain.clarify,
            boundary_arn=boundary.arn,
        ),
        opts,
    )
    alerts = Alerts(
        f"{s.prefix}-alerts",
        AlertsArgs(topic_name=n.alerts_topic, account_id=account, kms_key_arn=key.key_arn),
        opts,
    )
    tracking = (
        ExperimentTracking(
            f"{s.prefix}-tracking",
            ExperimentTrackingArgs(
                server_name=n.tracking_server,
                role_arn=roles.tracking_role_arn,
                artifact_store_uri=pulumi.Output.concat(store.uri, "/mlflow"),
                size=s.tracking.size,
                protect=protect,
            ),
            opts,
        )
        if s.tracking.enabled and roles.tracking_role_arn
        else None
    )
    registry = ModelRegistry(
        f"{s.prefix}-model-registry",
        ModelRegistryArgs(
            group_name=n.model_package_group,
            region=region,
            account_id=account,
            reader_account=s.promotion.target_account,
            protect=protect,
        ),
        opts,
    )
    image = kit_image(images.repository_url, s.image)
    subnets = network.subnet_ids if network else []
    groups = [network.workload_security_group_id] if network else []
    pipeline = TrainingPipeline(
        f"{s.prefix}-pipeline",
        TrainingPipelineArgs(
            pipeline_name=n.pipeline,
            role_arn=roles.pipeline_role_arn,
            definition=compile_definition(
                s,
                pipeline_name=n.pipeline,
                role_arn=roles.pipeline_role_arn,
                bucket=store.bucket_name,
                model_package_group=n.model_package_group,
                region=region,
                kms_key_arn=key.key_arn,
                image_uri=image,
                subnets=subnets,
                security_group_ids=groups,
            ),
        ),
        opts,
    )
    training = ContinuousTraining(
        f"{s.prefix}-continuous-training",
        ContinuousTrainingArgs(
            schedule_name=n.schedule,
            cron=s.schedule.cron,
            pipeline_arn=pipeline.pipeline_arn,
            role_arn=roles.trigger_role_arn,
            bucket_name=store.bucket_name,
            kms_key_arn=key.key_arn,
            dlq_name=n.training_dlq,
            rule_name=n.data_rule,
            data_trigger=s.schedule.data_trigger,
        ),
        opts,
    )
    DataDriftAlerts(
        f"{s.prefix}-data-drift",
        DataDriftAlertsArgs(
            rule_name=n.data_drift_rule,
            pipeline_arn=pipeline.pipeline_arn,
            alarm_topic_arn=alerts.topic_arn,
            kms_key_arn=key.key_arn,
            dlq_name=n.data_drift_dlq,
        ),
        opts,
    )
    token = pulumi.Output.secret(s.release_token) if s.release_token else None
    release = ReleaseTrigger(
        f"{s.prefix}-release",
        ReleaseTriggerArgs(
            stack=s.prefix,
            rule_name=n.release_rule,
            model_package_group=n.model_package_group,
            dlq_name=n.release_dlq,
            kms_key_arn=key.key_arn,
            provider=s.release.provider,
            repository=s.release.repository,
            event_type=s.release.event_type,
            token=token,
            destination_name=n.api_destination,
            role_arn=roles.release_role_arn,
            fallback_topic_arn=alerts.topic_arn,
        ),
        opts,
    )
    github = s.release.repository if s.release.provider == "github" else None
    ado = s.ci.azure_devops
    if s.ci.identity and (github or ado.organization_id):
        CiIdentity(
            f"{s.prefix}-ci",
            CiIdentityArgs(
                prefix=s.prefix,
                repository=github,
                account_id=account,
                region=region,
                branch=s.ci.branch,
                environment=s.ci.environment,
                oidc_provider_arn=s.ci.oidc_provider_arn,
                boundary_arn=boundary.arn,
                ado_organization_id=ado.organization_id,
                ado_organization=ado.organization,
                ado_project=ado.project,
                ado_service_connection=ado.service_connection,
                ado_oidc_provider_arn=ado.oidc_provider_arn,
            ),
            opts,
        )

    endpoint = None
    if s.model:
        endpoint = ModelEndpoint(
            f"{s.prefix}-endpoint",
            ModelEndpointArgs(
                endpoint_name=n.endpoint,
                model_version=s.model,
                region=region,
                model_package_arn=arn(
                    "sagemaker", region, account, f"model-package/{n.model_package_group}/{s.model}"
                ),
                execution_role_arn=roles.serving_role_arn,
                kms_key_arn=key.key_arn,
                alarm_topic_arn=alerts.topic_arn,
                mode=s.endpoint.mode,
                instance_type=s.endpoint.instance_type,
                min_instances=s.endpoint.min_instances,
                max_instances=s.endpoint.max_instances,
                target_invocations_per_instance=s.endpoint.target_invocations_per_instance,
                serverless_memory_mb=s.endpoint.serverless_memory_mb,
                serverless_max_concurrency=s.endpoint.serverless_max_concurrency,
                network_isolation=realtime,
                subnet_ids=subnets if realtime else [],
                security_group_ids=groups if realtime else [],
                data_capture=realtime,
                capture_uri=pulumi.Output.concat(store.uri, "/capture"),
                capture_percent=s.endpoint.capture_percent,
                strategy=s.rollout.strategy,
                traffic_step_percent=s.rollout.traffic_step_percent,
                bake_minutes=s.rollout.bake_minutes,
                auto_rollback=s.rollout.auto_rollback and realtime,
                rollback_alarms=s.rollout.alarms,
                latency_threshold_ms=s.rollout.latency_threshold_ms,
            ),
            opts,
        )
        if realtime:
            DriftMonitoring(
                f"{s.prefix}-drift",
                DriftMonitoringArgs(
                    schedule_name=n.monitoring_schedule,
                    endpoint_name=endpoint.endpoint_name,
                    model_version=s.model,
                    bucket_name=store.bucket_name,
                    role_arn=roles.monitoring_role_arn,
                    kms_key_arn=key.key_arn,
                    alarm_topic_arn=alerts.topic_arn,
                    region=region,
                    dlq_name=n.monitoring_dlq,
                    cron=s.drift.check_cron,
                    subnet_ids=subnets,
                    security_group_ids=groups,
                ),
                opts,
            )
    if s.model and s.batch.enabled:
        BatchScoring(
            f"{s.prefix}-batch",
            BatchScoringArgs(
                pipeline_name=f"{s.prefix}-scoring",
                schedule_name=f"{s.prefix}-batch-scoring",
                dlq_name=f"{s.prefix}-batch-dlq",
                cron=s.batch.cron,
                region=region,
                account_id=account,
                model_package_arn=arn(
                    "sagemaker", region, account, f"model-package/{n.model_package_group}/{s.model}"
                ),
                model_version=s.model,
                bucket_name=store.bucket_name,
                kms_key_arn=key.key_arn,
                pipeline_role_arn=roles.pipeline_role_arn,
                serving_role_arn=roles.serving_role_arn,
                trigger_role_arn=roles.trigger_role_arn,
                instance_type=s.batch.instance_type,
                instance_count=s.batch.instance_count,
                input_prefix=s.batch.input_prefix,
                output_prefix=s.batch.output_prefix,
                subnet_ids=subnets,
                security_group_ids=groups,
            ),
            opts,
        )
    budget = StackBudget(
        f"{s.prefix}-budget",
        StackBudgetArgs(
            budget_name=n.budget,
            stack=s.prefix,
            monthly_usd=s.budget.monthly_usd,
            alert_topic_arn=alerts.topic_arn,
            alert_percents=s.budget.alert_percents,
        ),
        opts,
    )

    spot = ", spot" if s.training.spot else ""
    return {
        "blueprint": NAME,
        "client": s.client,
        "environment": s.environment,
        "artifactStoreUri": store.uri,
        "containerRegistryUrl": images.repository_url,
        "keyId": key.key_arn,
        "secretStore": release.secret_arn
        if release.secret_arn is not None
        else f"secretsmanager:{region}",
        "pipelineIdentity": roles.pipeline_role_arn,
        "servingIdentity": roles.serving_role_arn,
        "releaseIdentity": roles.release_role_arn,
        "monitoringIdentity": roles.monitoring_role_arn,
        "trackingUri": tracking.tracking_uri if tracking else "",
        "modelRegistry": registry.group_name,
        "trainingCompute": f"SageMaker training jobs ({s.training.instance_type} "
        f"x{s.training.instance_count}{spot})",
        "pipelineName": pipeline.pipeline_name,
        "pipelineSchedule": training.schedule_name,
        "dataChangeTrigger": training.rule_name if training.rule_name is not None else "",
        "releaseTrigger": release.rule_name,
        "endpointName": endpoint.endpoint_name if endpoint else "",
        "endpointUrl": endpoint.endpoint_url if endpoint else "",
        "modelVersion": s.model or "",
        "alertsTarget": alerts.topic_arn,
        "budgetName": budget.budget_name,
        "network": network.vpc_id if network else "",
    }
