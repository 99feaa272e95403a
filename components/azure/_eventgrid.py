"""An Event Grid system topic and one filtered subscription delivering to the forwarder, with
retries and dead letters kept in the artifact store. Used by the release and data triggers.

Two destinations:

- public mode (dev): the forwarder function itself (`AzureFunction`), with the release
  identity writing dead letters;
- private mode (staging, prod): a storage queue in the artifact store, which has public network
  access disabled. Event Grid is not on the VNet, so it reaches the store as a trusted Microsoft
  service, which the store admits only for a *system-assigned* identity (a user-assigned one is
  refused behind a firewall). The topic therefore gets a system identity, granted Storage Queue
  Data Message Sender on that one queue and Storage Blob Data Contributor on the dead-letter
  container, and delivers and dead-letters with it (`deliveryWithResourceIdentity`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import authorization, eventgrid

from components.azure._common import check, role_definition_id

DEAD_LETTERS = "deadletters"
QUEUE_MESSAGE_TTL_SECONDS = 7 * 24 * 3600
"""A queued event waits a week for the forwarder (the queue's own maximum is 7 days)."""


@dataclass(frozen=True)
class QueueDelivery:
    """Deliver to a storage queue of the artifact store (private mode)."""

    queue_id: pulumi.Input[str]
    """Resource id of the queue the forwarder's queue trigger reads."""
    dead_letter_container_id: pulumi.Input[str]
    """Resource id of the `deadletters` container (scope of the topic's blob grant)."""
    subscription_id: pulumi.Input[str]
    """Subscription whose built-in role definitions are assigned to the topic's identity."""


def check_queue_args(
    problems: list[str],
    queue_id: pulumi.Input[str] | None,
    subscription_id: pulumi.Input[str] | None,
    dead_letter_container_id: pulumi.Input[str] | None,
) -> None:
    """The queue fields of a trigger's args: the subscription and the dead-letter container
    come with the queue."""
    if queue_id is None:
        return
    check(
        problems,
        subscription_id not in (None, ""),
        "subscription_id",
        subscription_id,
        "the stack's subscription id when queue_id is set",
        "pass Foundation.subscription_id with EventForwarder.queue_id",
    )
    check(
        problems,
        dead_letter_container_id not in (None, ""),
        "dead_letter_container_id",
        dead_letter_container_id,
        "the deadletters container id when queue_id is set",
        'pass ArtifactStore.container_ids["deadletters"] with EventForwarder.queue_id',
    )


def route_events(
    name: str,
    parent: pulumi.Resource,
    *,
    topic_name: str,
    resource_group_name: pulumi.Input[str],
    location: str,
    source_id: pulumi.Input[str],
    topic_type: str,
    identity_id: pulumi.Input[str],
    function_id: pulumi.Input[str],
    storage_account_id: pulumi.Input[str],
    event_types: Sequence[str],
    subject_begins_with: str | None = None,
    advanced_filters: Sequence[eventgrid.StringInAdvancedFilterArgs] | None = None,
    queue: QueueDelivery | None = None,
    tags: dict[str, str] | None = None,
) -> tuple[eventgrid.SystemTopic, eventgrid.SystemTopicEventSubscription]:
    child = ResourceOptions(parent=parent)
    if queue is None:
        topic_identity = eventgrid.IdentityInfoArgs(
            type="UserAssigned",
            user_assigned_identities=pulumi.Output.from_input(identity_id).apply(lambda i: {i: {}}),
        )
        delivery_identity = eventgrid.EventSubscriptionIdentityArgs(
            type="UserAssigned", user_assigned_identity=identity_id
        )
    else:
        topic_identity = eventgrid.IdentityInfoArgs(type="SystemAssigned")
        delivery_identity = eventgrid.EventSubscriptionIdentityArgs(type="SystemAssigned")
    topic = eventgrid.SystemTopic(
        f"{name}-topic",
        system_topic_name=topic_name,
        resource_group_name=resource_group_name,
        location=location,
        source=source_id,
        topic_type=topic_type,
        identity=topic_identity,
        tags=tags,
        opts=child,
    )
    function: eventgrid.AzureFunctionEventSubscriptionDestinationArgs | None = None
    queued: eventgrid.DeliveryWithResourceIdentityArgs | None = None
    depends_on: list[pulumi.Resource] = []
    if queue is None:
        function = eventgrid.AzureFunctionEventSubscriptionDestinationArgs(
            endpoint_type="AzureFunction",
            resource_id=function_id,
            max_events_per_batch=1,
            preferred_batch_size_in_kilobytes=64,
        )
    else:
        principal = topic.identity.apply(lambda i: i.principal_id if i else None)
        queue_id = pulumi.Output.from_input(queue.queue_id)
        queue_name = queue_id.apply(lambda i: i.rsplit("/", 1)[-1])
        grants = (
            ("Storage Queue Data Message Sender", queue_id, "the forwarder's queue"),
            (
                "Storage Blob Data Contributor",
                queue.dead_letter_container_id,
                f"the {DEAD_LETTERS} container",
            ),
        )
        for role, scope, what in grants:
            depends_on.append(
                authorization.RoleAssignment(
                    f"{name}-topic-{role.lower().replace(' ', '-')}",
                    principal_id=principal,
                    principal_type="ServicePrincipal",
                    role_definition_id=role_definition_id(queue.subscription_id, role),
                    scope=scope,
                    description=f"{topic_name}: {role} on {what}",
                    opts=child,
                )
            )
        queued = eventgrid.DeliveryWithResourceIdentityArgs(
            identity=delivery_identity,
            destination=eventgrid.StorageQueueEventSubscriptionDestinationArgs(
                endpoint_type="StorageQueue",
                resource_id=storage_account_id,
                queue_name=queue_name,
                queue_message_time_to_live_in_seconds=QUEUE_MESSAGE_TTL_SECONDS,
            ),
        )
    subscription = eventgrid.SystemTopicEventSubscription(
        f"{name}-subscription",
        event_subscription_name=f"{topic_name}-forward",
        system_topic_name=topic.name,
        resource_group_name=resource_group_name,
        event_delivery_schema="EventGridSchema",
        destination=function,
        delivery_with_resource_identity=queued,
        filter=eventgrid.EventSubscriptionFilterArgs(
            included_event_types=list(event_types),
            subject_begins_with=subject_begins_with,
            advanced_filters=list(advanced_filters) if advanced_filters else None,
        ),
        retry_policy=eventgrid.RetryPolicyArgs(
            max_delivery_attempts=30, event_time_to_live_in_minutes=1440
        ),
        dead_letter_with_resource_identity=eventgrid.DeadLetterWithResourceIdentityArgs(
            identity=delivery_identity,
            dead_letter_destination=eventgrid.StorageBlobDeadLetterDestinationArgs(
                endpoint_type="StorageBlob",
                resource_id=storage_account_id,
                blob_container_name=DEAD_LETTERS,
            ),
        ),
        # Event Grid checks the identity's access when the subscription is written
        opts=ResourceOptions(parent=parent, depends_on=depends_on),
    )
    return topic, subscription
