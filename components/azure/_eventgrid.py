"""An Event Grid system topic and one filtered subscription delivering to the forwarder, with
retries and dead letters kept in the artifact store. Used by the release and data triggers."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import eventgrid


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
    tags: dict[str, str] | None = None,
) -> tuple[eventgrid.SystemTopic, eventgrid.SystemTopicEventSubscription]:
    child = ResourceOptions(parent=parent)
    user_identity = eventgrid.EventSubscriptionIdentityArgs(
        type="UserAssigned", user_assigned_identity=identity_id
    )
    topic = eventgrid.SystemTopic(
        f"{name}-topic",
        system_topic_name=topic_name,
        resource_group_name=resource_group_name,
        location=location,
        source=source_id,
        topic_type=topic_type,
        identity=eventgrid.IdentityInfoArgs(
            type="UserAssigned",
            user_assigned_identities=pulumi.Output.from_input(identity_id).apply(lambda i: {i: {}}),
        ),
        tags=tags,
        opts=child,
    )
    subscription = eventgrid.SystemTopicEventSubscription(
        f"{name}-subscription",
        event_subscription_name=f"{topic_name}-forward",
        system_topic_name=topic.name,
        resource_group_name=resource_group_name,
        event_delivery_schema="EventGridSchema",
        destination=eventgrid.AzureFunctionEventSubscriptionDestinationArgs(
            endpoint_type="AzureFunction",
            resource_id=function_id,
            max_events_per_batch=1,
            preferred_batch_size_in_kilobytes=64,
        ),
        filter=eventgrid.EventSubscriptionFilterArgs(
            included_event_types=list(event_types),
            subject_begins_with=subject_begins_with,
            advanced_filters=list(advanced_filters) if advanced_filters else None,
        ),
        retry_policy=eventgrid.RetryPolicyArgs(
            max_delivery_attempts=30, event_time_to_live_in_minutes=1440
        ),
        dead_letter_with_resource_identity=eventgrid.DeadLetterWithResourceIdentityArgs(
            identity=user_identity,
            dead_letter_destination=eventgrid.StorageBlobDeadLetterDestinationArgs(
                endpoint_type="StorageBlob",
                resource_id=storage_account_id,
                blob_container_name="deadletters",
            ),
        ),
        opts=child,
    )
    return topic, subscription
