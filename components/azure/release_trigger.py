"""Release trigger: an Event Grid system topic on the workspace with a subscription that passes
only `Microsoft.MachineLearningServices.ModelRegistered` events for this stack's model to the
forwarder, which starts the CI release workflow. Failed deliveries are retried for a day and
then kept as dead letters in the artifact store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import eventgrid

from components.azure._common import check, raise_if
from components.azure._eventgrid import QueueDelivery, check_queue_args, route_events

MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"
WORKSPACE_TOPIC_TYPE = "Microsoft.MachineLearningServices.Workspaces"


@dataclass(frozen=True)
class ReleaseTriggerArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    location: str
    """Azure location of the workspace."""
    resource_group_name: pulumi.Input[str]
    """Resource group of the stack."""
    workspace_id: pulumi.Input[str]
    """Workspace whose model registrations are watched."""
    model_name: str
    """Only registrations of this model start a release."""
    function_id: pulumi.Input[str]
    """Forwarder function the events are delivered to (when `queue_id` is None)."""
    storage_account_id: pulumi.Input[str]
    """Artifact store; dead letters go to its `deadletters` container."""
    identity_id: pulumi.Input[str]
    """Identity Event Grid writes dead letters with (the release identity)."""
    queue_id: pulumi.Input[str] | None = None
    """Private mode: the artifact-store queue events are delivered to; None: the function."""
    subscription_id: pulumi.Input[str] | None = None
    """Subscription of the built-in roles granted to the topic (required with `queue_id`)."""
    dead_letter_container_id: pulumi.Input[str] | None = None
    """The store's `deadletters` container, granted to the topic (required with `queue_id`)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def validate_release_trigger_args(args: ReleaseTriggerArgs) -> None:
    problems: list[str] = []
    check(
        problems,
        bool(re.match(r"^[A-Za-z0-9][\w.-]{0,254}$", args.model_name)),
        "model_name",
        args.model_name,
        "a registered model name",
        "pass the model name",
    )
    check_queue_args(problems, args.queue_id, args.subscription_id, args.dead_letter_container_id)
    raise_if("ReleaseTrigger", problems)


class ReleaseTrigger(pulumi.ComponentResource):
    """Workspace system topic + ModelRegistered subscription filtered to the stack's model."""

    subscription_name: pulumi.Output[str]

    def __init__(self, name: str, args: ReleaseTriggerArgs, opts: ResourceOptions | None = None):
        validate_release_trigger_args(args)
        super().__init__("mlops:azure:ReleaseTrigger", name, None, opts)
        _, subscription = route_events(
            name,
            self,
            topic_name=f"evgt-{args.prefix}-workspace",
            resource_group_name=args.resource_group_name,
            location=args.location,
            source_id=args.workspace_id,
            topic_type=WORKSPACE_TOPIC_TYPE,
            identity_id=args.identity_id,
            function_id=args.function_id,
            storage_account_id=args.storage_account_id,
            queue=None
            if args.queue_id is None
            else QueueDelivery(
                args.queue_id, args.dead_letter_container_id or "", args.subscription_id or ""
            ),
            event_types=[MODEL_REGISTERED],
            advanced_filters=[
                eventgrid.StringInAdvancedFilterArgs(
                    operator_type="StringIn", key="data.modelName", values=[args.model_name]
                )
            ],
            tags=args.tags,
        )
        self.subscription_name = subscription.name
        self.register_outputs({"subscriptionName": subscription.name})
