"""Data-change trigger: an Event Grid system topic on the artifact store with a subscription
that passes `Microsoft.Storage.BlobCreated` events under the `raw` container to the forwarder,
which submits the training pipeline job to the workspace. Dead letters stay in storage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
from pulumi import ResourceOptions

from components.azure._common import check, raise_if
from components.azure._eventgrid import QueueDelivery, check_queue_args, route_events

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
STORAGE_TOPIC_TYPE = "Microsoft.Storage.StorageAccounts"


@dataclass(frozen=True)
class DataChangeTriggerArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    location: str
    """Azure location of the storage account."""
    resource_group_name: pulumi.Input[str]
    """Resource group of the stack."""
    storage_account_id: pulumi.Input[str]
    """Artifact store whose raw container is watched (and which keeps dead letters)."""
    function_id: pulumi.Input[str]
    """Forwarder function the events are delivered to (when `queue_id` is None)."""
    identity_id: pulumi.Input[str]
    """Identity Event Grid writes dead letters with (the release identity)."""
    container: str = "raw"
    """Container whose new blobs start training."""
    queue_id: pulumi.Input[str] | None = None
    """Private mode: the artifact-store queue events are delivered to; None: the function."""
    subscription_id: pulumi.Input[str] | None = None
    """Subscription of the built-in roles granted to the topic (required with `queue_id`)."""
    dead_letter_container_id: pulumi.Input[str] | None = None
    """The store's `deadletters` container, granted to the topic (required with `queue_id`)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def validate_data_trigger_args(args: DataChangeTriggerArgs) -> None:
    problems: list[str] = []
    check(
        problems,
        bool(re.match(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$", args.container)),
        "container",
        args.container,
        "a blob container name (3-63 lowercase, digits, dashes)",
        "pass an existing container such as raw",
    )
    check_queue_args(problems, args.queue_id, args.subscription_id, args.dead_letter_container_id)
    raise_if("DataChangeTrigger", problems)


class DataChangeTrigger(pulumi.ComponentResource):
    """Storage system topic + BlobCreated subscription on the raw container."""

    subscription_name: pulumi.Output[str]

    def __init__(self, name: str, args: DataChangeTriggerArgs, opts: ResourceOptions | None = None):
        validate_data_trigger_args(args)
        super().__init__("mlops:azure:DataChangeTrigger", name, None, opts)
        _, subscription = route_events(
            name,
            self,
            topic_name=f"evgt-{args.prefix}-storage",
            resource_group_name=args.resource_group_name,
            location=args.location,
            source_id=args.storage_account_id,
            topic_type=STORAGE_TOPIC_TYPE,
            identity_id=args.identity_id,
            function_id=args.function_id,
            storage_account_id=args.storage_account_id,
            queue=None
            if args.queue_id is None
            else QueueDelivery(
                args.queue_id, args.dead_letter_container_id or "", args.subscription_id or ""
            ),
            event_types=[BLOB_CREATED],
            subject_begins_with=f"/blobServices/default/containers/{args.container}/blobs/",
            tags=args.tags,
        )
        self.subscription_name = subscription.name
        self.register_outputs({"subscriptionName": subscription.name})
