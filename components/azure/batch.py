"""Batch scoring: an Azure ML batch endpoint and deployment serving the configured registered
model version on the training cluster, invoked on the batch cron.

- `BatchEndpoint`: Entra ID token auth (`AADToken`, the only mode batch endpoints accept, no
  keys). It has no identity of its own: its jobs run on the cluster, as the cluster's.
- `BatchDeployment` `model-v<N>` on the training cluster (`AmlCompute`, which scales to zero
  and whose jobs run as the pipeline identity, the one with Blob Data Contributor on the
  artifact store). The model is an MLflow model, so no scoring script or environment is
  needed (no-code deployment). Every input file is scored; a failed mini-batch fails the job
  (`errorThreshold` 0) instead of being skipped, and rows are appended to
  `predictions.csv` under the output folder.
- Azure refuses an endpoint default that names a deployment which does not exist yet, so the
  default deployment is set by an incremental ARM deployment (`<name>-default`) that depends
  on the deployment, the technique the online endpoint uses for its traffic map.
- `Schedule` on `batch.cron` whose action is `InvokeBatchEndpoint`: the schedule action type
  the Azure ML REST API (and pulumi-azure-native's `EndpointScheduleAction`) offers for batch
  endpoints. Its `endpointInvocationDefinition` is typed as free-form (`Any`, documented
  "TBD") in the API spec, so it carries exactly the body `azure-ai-ml`'s
  `batch_endpoints.invoke` posts (inputs and outputs on the workspace datastore, which lives
  in the artifact store's storage account) next to the endpoint's ARM id; the tests check the
  body against the real client. Input and output are `azureml://datastores/<ds>/paths/<prefix>`
  folders; every run writes the same output folder and the artifact store's blob versioning
  keeps earlier predictions as versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import resources

from components.azure._common import check, dashed_name, raise_if
from core.config import is_cron
from core.names import azure_deployment_name as deployment_name

BATCH_ENDPOINT_ARM_TYPE = "Microsoft.MachineLearningServices/workspaces/batchEndpoints"
BATCH_API_VERSION = "2024-10-01"
DATASTORE = "workspaceblobstore"
_VERSION = re.compile(r"^[1-9]\d{0,5}$")
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9/_-]*/$")


def datastore_uri(prefix: str, datastore: str = DATASTORE) -> str:
    """`azureml://` URI of a folder on a workspace datastore."""
    return f"azureml://datastores/{datastore}/paths/{prefix}"


def invocation_body(input_prefix: str, output_prefix: str, datastore: str = DATASTORE) -> dict:
    """The body `azure-ai-ml` posts to a batch endpoint to score `input_prefix` into
    `output_prefix` (`batch_endpoints.invoke(inputs={"input": ...}, outputs={"score": ...})`)."""
    return {
        "properties": {
            "inputData": {
                "input": {
                    "jobInputType": "UriFolder",
                    "uri": datastore_uri(input_prefix, datastore),
                }
            },
            "outputData": {
                "score": {
                    "jobOutputType": "UriFolder",
                    "uri": datastore_uri(output_prefix, datastore),
                }
            },
        }
    }


@dataclass(frozen=True)
class BatchScoringArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    location: str
    """Azure location of the workspace."""
    resource_group_name: pulumi.Input[str]
    """Resource group of the workspace."""
    workspace_name: pulumi.Input[str]
    """Workspace the endpoint belongs to."""
    workspace_id: pulumi.Input[str]
    """Workspace resource id (the registered model's parent)."""
    compute_id: pulumi.Input[str]
    """ARM id of the training cluster the batch jobs run on."""
    model_name: str
    """Registered model name in the workspace."""
    model_version: str
    """Registered model version to score with (`mlops:model`)."""
    cron: str = "0 2 * * *"
    """When batch scoring runs (5-field cron, UTC; `batch.cron`)."""
    instance_count: int = 1
    """Cluster nodes a batch job uses (`batch.instanceCount`)."""
    input_prefix: str = "batch/input/"
    """Datastore folder scored (`batch.inputPrefix`)."""
    output_prefix: str = "batch/output/"
    """Datastore folder predictions are written to (`batch.outputPrefix`)."""
    mini_batch_size: int = 10
    """Files per mini-batch."""
    max_retries: int = 3
    """Retries of a failed mini-batch before the job fails."""
    timeout_minutes: int = 30
    """Time one mini-batch may take."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def validate_batch_scoring_args(args: BatchScoringArgs) -> None:
    problems: list[str] = []
    check(
        problems,
        is_cron(args.cron),
        "cron",
        args.cron,
        "a 5-field cron expression (minute hour day month weekday)",
        "set batch.cron in Pulumi.<stack>.yaml",
    )
    check(
        problems,
        bool(_VERSION.match(args.model_version)),
        "model_version",
        args.model_version,
        "a registered version number such as 3",
        "set mlops:model before batch.enabled",
    )
    check(
        problems,
        1 <= args.instance_count <= 20,
        "instance_count",
        args.instance_count,
        "between 1 and 20",
        "set batch.instanceCount",
    )
    for name, key in (("input_prefix", "inputPrefix"), ("output_prefix", "outputPrefix")):
        value = getattr(args, name)
        check(
            problems,
            bool(_PREFIX.match(value)),
            name,
            value,
            "a folder ending in '/'",
            f"set batch.{key}",
        )
    check(
        problems,
        not (
            args.input_prefix.startswith(args.output_prefix)
            or args.output_prefix.startswith(args.input_prefix)
        ),
        "output_prefix",
        args.output_prefix,
        f"apart from input_prefix {args.input_prefix!r}",
        "set batch.outputPrefix to another folder so outputs are not scored next run",
    )
    check(
        problems,
        1 <= args.mini_batch_size <= 1000,
        "mini_batch_size",
        args.mini_batch_size,
        "between 1 and 1000",
        "pass fewer files per mini-batch",
    )
    check(
        problems,
        0 <= args.max_retries <= 10,
        "max_retries",
        args.max_retries,
        "between 0 and 10",
        "pass a small retry count",
    )
    raise_if("BatchScoring", problems)


class BatchScoring(pulumi.ComponentResource):
    """Batch endpoint + deployment on the training cluster, invoked by a schedule."""

    endpoint_name: pulumi.Output[str]
    endpoint_id: pulumi.Output[str]
    deployment_name: str
    schedule_name: pulumi.Output[str]

    def __init__(self, name: str, args: BatchScoringArgs, opts: ResourceOptions | None = None):
        validate_batch_scoring_args(args)
        super().__init__("mlops:azure:BatchScoring", name, None, opts)
        endpoint_name = dashed_name("bep", args.prefix, args.location, 32)
        dep_name = deployment_name(args.model_version)
        tags = {**args.tags, "mlops:purpose": "batch-scoring"}

        endpoint = ml.BatchEndpoint(
            f"{name}-endpoint",
            endpoint_name=endpoint_name,
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            location=args.location,
            properties=ml.BatchEndpointPropertiesArgs(
                auth_mode="AADToken",
                description=f"Batch scoring of {args.model_name} (default deployment set by "
                f"{name}-default)",
            ),
            tags=tags,
            opts=ResourceOptions(parent=self, ignore_changes=["properties.defaults"]),
        )
        model_id = pulumi.Output.concat(
            args.workspace_id, "/models/", args.model_name, "/versions/", args.model_version
        )
        deployment = ml.BatchDeployment(
            f"{name}-v{args.model_version}",
            deployment_name=dep_name,
            endpoint_name=endpoint.name,
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            location=args.location,
            properties=ml.BatchDeploymentPropertiesArgs(
                compute=args.compute_id,
                model=ml.IdAssetReferenceArgs(reference_type="Id", asset_id=model_id),
                resources=ml.DeploymentResourceConfigurationArgs(
                    instance_count=args.instance_count
                ),
                mini_batch_size=args.mini_batch_size,
                max_concurrency_per_instance=1,
                output_action="AppendRow",
                output_file_name="predictions.csv",
                error_threshold=0,
                retry_settings=ml.BatchRetrySettingsArgs(
                    max_retries=args.max_retries, timeout=f"PT{args.timeout_minutes}M"
                ),
                logging_level="Info",
                description=f"{args.model_name} version {args.model_version}",
            ),
            tags={**tags, "mlops:model-version": args.model_version},
            opts=ResourceOptions(parent=self),
        )
        template: dict[str, Any] = {
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/"
            "deploymentTemplate.json#",
            "contentVersion": "1.0.0.0",
            "resources": [
                {
                    "type": BATCH_ENDPOINT_ARM_TYPE,
                    "apiVersion": BATCH_API_VERSION,
                    "name": pulumi.Output.concat(args.workspace_name, "/", endpoint.name),
                    "location": args.location,
                    "tags": tags,
                    "properties": {
                        "authMode": "AADToken",
                        "defaults": {"deploymentName": dep_name},
                    },
                }
            ],
        }
        default = resources.Deployment(
            f"{name}-default",
            resource_group_name=args.resource_group_name,
            properties=resources.DeploymentPropertiesArgs(mode="Incremental", template=template),
            opts=ResourceOptions(parent=self, depends_on=[deployment]),
        )
        body = invocation_body(args.input_prefix, args.output_prefix)
        schedule = ml.Schedule(
            f"{name}-schedule",
            name=f"{args.prefix}-batch-scoring",
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            properties=ml.SchedulePropertiesArgs(
                display_name=f"{args.prefix} batch scoring",
                description=f"Scores {args.input_prefix} with {args.model_name} version "
                f"{args.model_version} into {args.output_prefix}",
                is_enabled=True,
                trigger=ml.CronTriggerArgs(
                    trigger_type="Cron", expression=args.cron, time_zone="UTC"
                ),
                action=ml.EndpointScheduleActionArgs(
                    action_type="InvokeBatchEndpoint",
                    endpoint_invocation_definition={"endpointId": endpoint.id, **body},
                ),
                tags=tags,
            ),
            opts=ResourceOptions(parent=self, depends_on=[default]),
        )
        self.endpoint_name = endpoint.name
        self.endpoint_id = endpoint.id
        self.deployment_name = dep_name
        self.schedule_name = schedule.name
        self.register_outputs(
            {
                "endpointName": self.endpoint_name,
                "scheduleName": schedule.name,
                "deployment": dep_name,
            }
        )
