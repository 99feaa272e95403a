"""The azureml blueprint: the stack contract on Azure Machine Learning, built with
pulumi-azure-native.

One resource group holds a Log Analytics workspace and Application Insights; a Key Vault (RBAC,
purge protection, soft delete) with the workspace's customer-managed key; a versioned storage
account as the artifact store; an Azure Container Registry; one user-assigned identity per duty
with roles scoped to these resources; and the Azure ML workspace, which is also the MLflow
tracking server and model registry. Training runs on an AmlCompute cluster that scales to zero,
as a pipeline job compiled from `pipelines/` that a schedule runs on the training cron and an
Event Grid subscription starts when raw data lands. A second Event Grid subscription passes
`ModelRegistered` events for the stack's model to a small Function that starts the CI release
workflow (in private mode through a storage queue: the Function has no public access, runs on
an Elastic Premium plan in the VNet and leaves it through a NAT gateway). Once `mlops:model`
pins a version, a managed online endpoint (Entra ID tokens, no keys) serves it from a
deployment named after the version, with autoscaling and data collection; the endpoint
component splits traffic blue/green (canary or mirror share) when it
is given the version serving now, which the stack config cannot express yet; a drift
monitor, metric alerts and a budget watch it. In private mode (staging, prod) the workspace,
storage, vault and registry have public access disabled and are reached through private
endpoints, and the workspace's managed network allows approved outbound traffic only.
Batch scoring (`batch.enabled`, with `mlops:model`): a batch endpoint (Entra ID tokens) and a
deployment of the same version on the training cluster, invoked by a schedule on `batch.cron`,
reading and writing folders of the workspace datastore in the artifact store.
"""

from __future__ import annotations

import pulumi

from blueprints import Evidence
from components.azure.artifact_store import ArtifactStore, ArtifactStoreArgs
from components.azure.batch import BatchScoring, BatchScoringArgs
from components.azure.budget import Budget, BudgetArgs
from components.azure.ci_identity import CiIdentity, CiIdentityArgs
from components.azure.compute import TrainingCompute, TrainingComputeArgs
from components.azure.data_trigger import DataChangeTrigger, DataChangeTriggerArgs
from components.azure.endpoint import ModelEndpoint, ModelEndpointArgs
from components.azure.forwarder import EventForwarder, EventForwarderArgs
from components.azure.foundation import Foundation, FoundationArgs
from components.azure.identities import Identities, IdentitiesArgs
from components.azure.keys import KeysAndSecrets, KeysAndSecretsArgs
from components.azure.monitoring import Monitoring, MonitoringArgs
from components.azure.network import PrivateNetwork, PrivateNetworkArgs
from components.azure.pipeline import TrainingPipeline, TrainingPipelineArgs
from components.azure.registry import ContainerRegistry, ContainerRegistryArgs
from components.azure.release_trigger import ReleaseTrigger, ReleaseTriggerArgs
from components.azure.workspace import MlWorkspace, MlWorkspaceArgs
from core.config import StackSettings
from core.contract import Capability

NAME = "azureml"
PLATFORM = "azure"
TITLE = "Azure Machine Learning"

_ML = "azure-native:machinelearningservices"
CAPABILITIES: dict[Capability, str] = {
    Capability.ARTIFACT_STORE: "Storage account (StorageV2): TLS 1.2, no public blobs, shared "
    "keys off, blob versioning and soft delete; protected in prod.",
    Capability.CONTAINER_REGISTRY: "Azure Container Registry, admin user off (Premium with a "
    "private endpoint in private mode).",
    Capability.KEYS_AND_SECRETS: "Key Vault with RBAC, purge protection and soft delete; an RSA "
    "customer-managed key for the workspace; the CI token as a secret.",
    Capability.IDENTITIES: "User-assigned managed identities per duty (workspace, pipeline, "
    "serving, release, monitoring) with built-in roles scoped to single resources.",
    Capability.EXPERIMENT_TRACKING: "The Azure ML workspace's MLflow-compatible tracking server.",
    Capability.MODEL_REGISTRY: "The Azure ML workspace's model registry (MLflow models).",
    Capability.TRAINING_COMPUTE: "AmlCompute cluster, min 0 nodes, local auth disabled, "
    "low priority in dev.",
    Capability.TRAINING_PIPELINE: "Azure ML pipeline job compiled from pipelines/ "
    "(validate, prepare, train, evaluate, gate, register).",
    Capability.PIPELINE_SCHEDULE: "Azure ML Schedule (cron trigger, CreateJob action).",
    Capability.DATA_CHANGE_TRIGGER: "Event Grid system topic on the storage account: BlobCreated "
    "under raw/ -> forwarder Function -> pipeline job.",
    Capability.RELEASE_TRIGGER: "Event Grid system topic on the workspace: ModelRegistered for "
    "the stack's model -> forwarder Function -> CI release workflow; dead letters in storage. "
    "In private mode Event Grid writes to a storage queue (system identity, trusted service) "
    "that a VNet-integrated Elastic Premium Function with public access disabled reads.",
    Capability.SERVING_ENDPOINT: "Managed online endpoint, Entra ID token auth, public access "
    "disabled in private mode.",
    Capability.AUTOSCALING: "Azure Monitor autoscale settings on each online deployment.",
    Capability.GUARDED_ROLLOUT: "Traffic map applied by an ARM deployment after the online "
    "deployments exist (blue/green canary or mirror share when the serving version is given); "
    "rollback alarms as metric alerts; release helpers shift traffic and roll back.",
    Capability.DATA_CAPTURE: "Online deployment data collector (model inputs and outputs).",
    Capability.DRIFT_MONITORING: "Azure ML model-monitoring schedule (data drift, PSI) against "
    "the training data.",
    Capability.ALERTS: "Azure Monitor metric alerts routed to an action group.",
    Capability.BUDGET: "Consumption budget on the resource group with actual and forecast alerts.",
    Capability.NETWORK_ISOLATION: "Workspace managed network; in private mode a VNet with "
    "private endpoints and DNS zones for workspace, storage (blob, dfs, queue), Key Vault and "
    "ACR, and a subnet for the forwarder's VNet integration with HTTPS-only egress through a "
    "NAT gateway.",
}

EVIDENCE: tuple[Evidence, ...] = (
    Evidence(Capability.ARTIFACT_STORE, "azure-native:storage:StorageAccount"),
    Evidence(
        Capability.ARTIFACT_STORE,
        "azure-native:storage:BlobServiceProperties",
        "isVersioningEnabled",
    ),
    Evidence(Capability.CONTAINER_REGISTRY, "azure-native:containerregistry:Registry"),
    Evidence(Capability.KEYS_AND_SECRETS, "azure-native:keyvault:Vault"),
    Evidence(Capability.KEYS_AND_SECRETS, "azure-native:keyvault:Key"),
    Evidence(Capability.IDENTITIES, "azure-native:managedidentity:UserAssignedIdentity"),
    Evidence(Capability.IDENTITIES, "azure-native:authorization:RoleAssignment"),
    Evidence(Capability.EXPERIMENT_TRACKING, f"{_ML}:Workspace"),
    Evidence(Capability.MODEL_REGISTRY, f"{_ML}:Workspace"),
    Evidence(Capability.TRAINING_COMPUTE, f"{_ML}:Compute", "properties.properties.scaleSettings"),
    Evidence(Capability.TRAINING_PIPELINE, f"{_ML}:Schedule", "properties.action.jobDefinition"),
    Evidence(Capability.PIPELINE_SCHEDULE, f"{_ML}:Schedule", "properties.trigger.expression"),
    Evidence(
        Capability.DATA_CHANGE_TRIGGER,
        "azure-native:eventgrid:SystemTopicEventSubscription",
        "filter.subjectBeginsWith",
    ),
    Evidence(
        Capability.RELEASE_TRIGGER,
        "azure-native:eventgrid:SystemTopicEventSubscription",
        "filter.advancedFilters",
    ),
    Evidence(Capability.RELEASE_TRIGGER, "azure-native:web:WebApp"),
    Evidence(Capability.SERVING_ENDPOINT, f"{_ML}:OnlineEndpoint"),
    Evidence(Capability.SERVING_ENDPOINT, f"{_ML}:OnlineDeployment"),
    Evidence(Capability.AUTOSCALING, "azure-native:monitor:AutoscaleSetting"),
    Evidence(
        Capability.GUARDED_ROLLOUT,
        "azure-native:resources:Deployment",
        "properties.template.resources[0].properties.traffic",
    ),
    Evidence(Capability.DATA_CAPTURE, f"{_ML}:OnlineDeployment", "properties.dataCollector"),
    Evidence(
        Capability.DRIFT_MONITORING,
        f"{_ML}:Schedule",
        "properties.action.monitorDefinition.signals",
    ),
    Evidence(Capability.ALERTS, "azure-native:monitor:MetricAlert"),
    Evidence(Capability.ALERTS, "azure-native:monitor:ActionGroup"),
    Evidence(Capability.BUDGET, "azure-native:consumption:Budget"),
    Evidence(Capability.NETWORK_ISOLATION, f"{_ML}:Workspace", "managedNetwork.isolationMode"),
    Evidence(Capability.NETWORK_ISOLATION, "azure-native:network:PrivateEndpoint"),
)


def build(settings: StackSettings) -> dict[str, pulumi.Input[str]]:
    prefix, location, tags = settings.prefix, settings.region, settings.all_tags
    private = settings.network.mode == "private"
    protect = settings.stores.protect
    model_name = f"{settings.client}-classifier"

    base = Foundation(f"{prefix}-base", FoundationArgs(prefix=prefix, location=location, tags=tags))
    rg = base.resource_group_name

    keys = KeysAndSecrets(
        f"{prefix}-keys",
        KeysAndSecretsArgs(
            prefix=prefix,
            location=location,
            resource_group_name=rg,
            tenant_id=base.tenant_id,
            customer_managed_key=private,
            private=private,
            protect=protect,
            tags=tags,
            release_token=settings.release_token,
            release_token_expires_on=settings.release.token_expires_on,
        ),
    )
    store = ArtifactStore(
        f"{prefix}-store",
        ArtifactStoreArgs(
            prefix=prefix,
            location=location,
            resource_group_name=rg,
            private=private,
            redundancy="Standard_ZRS" if protect else "Standard_LRS",
            noncurrent_days=settings.stores.noncurrent_days,
            protect=protect,
            tags=tags,
        ),
    )
    registry = ContainerRegistry(
        f"{prefix}-registry",
        ContainerRegistryArgs(
            prefix=prefix,
            location=location,
            resource_group_name=rg,
            private=private,
            sku="Premium" if private else "Basic",
            protect=protect,
            tags=tags,
        ),
    )
    ids = Identities(
        f"{prefix}-ids",
        IdentitiesArgs(
            prefix=prefix,
            location=location,
            resource_group_name=rg,
            subscription_id=base.subscription_id,
            storage_account_id=store.account_id,
            vault_id=keys.vault_id,
            registry_id=registry.registry_id,
            app_insights_id=base.app_insights_id,
            tags=tags,
        ),
    )
    workspace = MlWorkspace(
        f"{prefix}-workspace",
        MlWorkspaceArgs(
            prefix=prefix,
            location=location,
            resource_group_name=rg,
            subscription_id=base.subscription_id,
            storage_account_id=store.account_id,
            vault_id=keys.vault_id,
            registry_id=registry.registry_id,
            app_insights_id=base.app_insights_id,
            identity_id=ids.ids["workspace"],
            identity_client_id=ids.client_ids["workspace"],
            duty_principal_ids=ids.principal_ids,
            cmk_key_id=keys.key_id if private else None,
            private=private,
            protect=protect,
            tags=tags,
        ),
    )
    network = (
        PrivateNetwork(
            f"{prefix}-network",
            PrivateNetworkArgs(
                prefix=prefix,
                location=location,
                resource_group_name=rg,
                cidr=settings.network.cidr,
                targets={
                    "workspace": workspace.workspace_id,
                    "storage": store.account_id,
                    "vault": keys.vault_id,
                    "registry": registry.registry_id,
                },
                tags=tags,
            ),
        )
        if private
        else None
    )
    compute = TrainingCompute(
        f"{prefix}-training",
        TrainingComputeArgs(
            location=location,
            resource_group_name=rg,
            workspace_name=workspace.workspace_name,
            identity_id=ids.ids["pipeline"],
            vm_size=settings.training.instance_type,
            max_nodes=settings.training.max_nodes,
            low_priority=settings.training.spot,
            private=private,
            tags=tags,
        ),
    )
    blob = pulumi.Output.concat("https://", store.account_name, ".blob.core.windows.net/")
    raw_uri = pulumi.Output.concat(blob, "raw/")
    kit_image = pulumi.Output.concat(registry.login_server, "/mlops-kit:latest")
    pipeline = TrainingPipeline(
        f"{prefix}-pipeline",
        TrainingPipelineArgs(
            prefix=prefix,
            resource_group_name=rg,
            workspace_name=workspace.workspace_name,
            stack_settings=settings,
            compute_id=compute.compute_id,
            data_uri=raw_uri,
            image=settings.image or kit_image,
            cron=settings.schedule.cron,
        ),
    )
    forwarder = EventForwarder(
        f"{prefix}-forwarder",
        EventForwarderArgs(
            prefix=prefix,
            stack=f"{settings.client}-{settings.environment}",
            location=location,
            resource_group_name=rg,
            storage_account_name=store.account_name,
            identity_id=ids.ids["release"],
            identity_client_id=ids.client_ids["release"],
            workspace_id=workspace.workspace_id,
            model_name=model_name,
            ci_provider=settings.release.provider,
            repository=settings.release.repository,
            event_type=settings.release.event_type,
            ci_token_secret_uri=keys.release_token_secret_uri,
            training_job=pulumi.Output.json_dumps(pipeline.job_definition)
            if settings.schedule.data_trigger
            else "",
            private=private,
            subnet_id=network.functions_subnet_id if network else None,
            tags=tags,
        ),
    )
    data_trigger = (
        DataChangeTrigger(
            f"{prefix}-data-trigger",
            DataChangeTriggerArgs(
                prefix=prefix,
                location=location,
                resource_group_name=rg,
                storage_account_id=store.account_id,
                function_id=forwarder.function_id,
                identity_id=ids.ids["release"],
                queue_id=forwarder.queue_id,
                dead_letter_container_id=store.container_ids["deadletters"],
                subscription_id=base.subscription_id,
                tags=tags,
            ),
        )
        if settings.schedule.data_trigger
        else None
    )
    release = ReleaseTrigger(
        f"{prefix}-release",
        ReleaseTriggerArgs(
            prefix=prefix,
            location=location,
            resource_group_name=rg,
            workspace_id=workspace.workspace_id,
            model_name=model_name,
            function_id=forwarder.function_id,
            storage_account_id=store.account_id,
            identity_id=ids.ids["release"],
            queue_id=forwarder.queue_id,
            dead_letter_container_id=store.container_ids["deadletters"],
            subscription_id=base.subscription_id,
            tags=tags,
        ),
    )
    if (
        settings.ci.identity
        and settings.release.provider == "github"
        and settings.release.repository
    ):
        CiIdentity(
            f"{prefix}-ci",
            CiIdentityArgs(
                prefix=prefix,
                location=location,
                resource_group_name=rg,
                resource_group_id=base.resource_group_id,
                subscription_id=base.subscription_id,
                repository=settings.release.repository,
                branch=settings.ci.branch,
                environment=settings.ci.environment,
                tags=tags,
            ),
        )
    endpoint = (
        ModelEndpoint(
            f"{prefix}-endpoint",
            ModelEndpointArgs(
                prefix=prefix,
                location=location,
                resource_group_name=rg,
                workspace_name=workspace.workspace_name,
                workspace_id=workspace.workspace_id,
                identity_id=ids.ids["serving"],
                model_name=model_name,
                model_version=settings.model,
                # blue/green: the version serving now stays the stable deployment
                previous_model_version=settings.rollout.previous_model,
                mirror_percent=settings.rollout.mirror_percent,
                instance_type=settings.endpoint.instance_type,
                min_instances=max(1, settings.endpoint.min_instances),
                max_instances=settings.endpoint.max_instances,
                target_requests_per_instance=settings.endpoint.target_invocations_per_instance,
                strategy=settings.rollout.strategy,
                canary_percent=settings.rollout.traffic_step_percent,
                capture_percent=settings.endpoint.capture_percent,
                private=private,
                tags=tags,
            ),
        )
        if settings.model
        else None
    )
    if settings.model and settings.batch.enabled:
        BatchScoring(
            f"{prefix}-batch",
            BatchScoringArgs(
                prefix=prefix,
                location=location,
                resource_group_name=rg,
                workspace_name=workspace.workspace_name,
                workspace_id=workspace.workspace_id,
                compute_id=compute.compute_id,
                model_name=model_name,
                model_version=settings.model,
                cron=settings.batch.cron,
                instance_count=settings.batch.instance_count,
                input_prefix=settings.batch.input_prefix,
                output_prefix=settings.batch.output_prefix,
                tags=tags,
            ),
        )
    alerts = Monitoring(
        f"{prefix}-monitoring",
        MonitoringArgs(
            prefix=prefix,
            location=location,
            resource_group_name=rg,
            workspace_name=workspace.workspace_name,
            workspace_id=workspace.workspace_id,
            identity_id=ids.ids["monitoring"],
            reference_data_uri=raw_uri,
            production_data_uri=pulumi.Output.concat(blob, "captures/model_inputs/"),
            drift_threshold=settings.drift.threshold,
            drift_cron=settings.drift.check_cron,
            endpoint_id=endpoint.endpoint_id if endpoint else None,
            deployment_id=endpoint.current_deployment_id if endpoint else None,
            alarms=settings.rollout.alarms,
            latency_threshold_ms=settings.rollout.latency_threshold_ms,
            tags=tags,
        ),
    )
    budget = Budget(
        f"{prefix}-budget",
        BudgetArgs(
            prefix=prefix,
            resource_group_id=base.resource_group_id,
            monthly_usd=settings.budget.monthly_usd,
            alert_percents=settings.budget.alert_percents,
            action_group_id=alerts.action_group_id,
        ),
    )

    return {
        "blueprint": NAME,
        "client": settings.client,
        "environment": settings.environment,
        "artifactStoreUri": store.uri,
        "containerRegistryUrl": registry.login_server,
        "keyId": keys.key_id,
        "secretStore": keys.vault_uri,
        "pipelineIdentity": ids.ids["pipeline"],
        "servingIdentity": ids.ids["serving"],
        "releaseIdentity": ids.ids["release"],
        "monitoringIdentity": ids.ids["monitoring"],
        "trackingUri": workspace.tracking_uri if settings.tracking.enabled else "",
        "modelRegistry": workspace.workspace_id,
        "trainingCompute": compute.compute_name,
        "pipelineName": pipeline.pipeline_name,
        "pipelineSchedule": pipeline.schedule_name,
        "dataChangeTrigger": data_trigger.subscription_name if data_trigger else "",
        "releaseTrigger": release.subscription_name,
        "endpointName": endpoint.endpoint_name if endpoint else "",
        "endpointUrl": endpoint.scoring_uri if endpoint else "",
        "modelVersion": settings.model or "",
        "alertsTarget": alerts.action_group_id,
        "budgetName": budget.budget_name,
        "network": network.vnet_id if network else "",
    }
