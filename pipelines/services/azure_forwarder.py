"""The Event Grid forwarder behind the Azure release and data-change triggers.

Runs as an Azure Function (`function_app.py` in the package the `EventForwarder` component
deploys wraps `handle`), but is a plain handler so it can be tested by calling it with
real-shaped Event Grid events. Events arrive in one of two forms, by network mode:

- public (dev): Event Grid calls the function's Event Grid trigger (an HTTPS webhook);
- private (staging, prod): Event Grid writes each event to a storage queue, and a queue trigger
  (message encoding `none`) passes the message text to `handle_queue_message`: the Event Grid
  event as base64 of its JSON, as Event Grid writes it today, or as plain JSON, as it did
  before; both are accepted.

What it does with an event:

- `Microsoft.MachineLearningServices.ModelRegistered` for the stack's model starts the CI
  release workflow (GitHub `repository_dispatch` with the model name and version).
- `Microsoft.Storage.BlobCreated` under the raw-data container submits the training pipeline
  job to the workspace (ARM `PUT .../jobs/<name>`), authenticated with the function's managed
  identity.
- Anything else is acknowledged and ignored (Event Grid must not retry it).

Errors from GitHub or ARM raise, so Event Grid retries and finally dead-letters the event.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests

MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
GITHUB_API = "https://api.github.com"
ARM = "https://management.azure.com"
JOBS_API_VERSION = "2024-10-01"
TIMEOUT_SECONDS = 15


class TokenCredential(Protocol):
    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class ForwarderConfig:
    """What the forwarder needs, from the Function's app settings."""

    model_name: str
    """Only ModelRegistered events for this model start a release."""
    stack: str
    """Stack name sent to CI so the workflow knows which stack to release."""
    ci_provider: str = "none"
    """github or none (events are then only logged)."""
    repository: str = ""
    """`owner/repo` of the GitHub repository whose workflow is dispatched."""
    event_type: str = "mlops-release"
    """`repository_dispatch` event type the release workflow listens to."""
    ci_token: str = ""
    """GitHub token (a Key Vault reference in the app settings)."""
    workspace_id: str = ""
    """ARM id of the Azure ML workspace that runs the training job."""
    raw_container: str = "raw"
    """Blob container whose new blobs start training."""
    training_job: str = ""
    """REST `properties` of the training pipeline job (JSON); empty: no data trigger."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ForwarderConfig:
        return cls(
            model_name=env["MODEL_NAME"],
            stack=env["STACK"],
            ci_provider=env.get("CI_PROVIDER", "none"),
            repository=env.get("CI_REPOSITORY", ""),
            event_type=env.get("CI_EVENT_TYPE", "mlops-release"),
            ci_token=env.get("CI_TOKEN", ""),
            workspace_id=env.get("ML_WORKSPACE_ID", ""),
            raw_container=env.get("RAW_CONTAINER", "raw"),
            training_job=env.get("TRAINING_JOB_DEFINITION", ""),
        )


@dataclass(frozen=True)
class Outcome:
    """What the forwarder did with one event."""

    event_id: str
    action: str
    """release-dispatched, training-submitted, validated or ignored."""
    detail: str = ""


def _events(payload: Any) -> list[Mapping[str, Any]]:
    if isinstance(payload, str | bytes):
        payload = json.loads(payload)
    if isinstance(payload, Mapping):
        return [payload]
    return list(payload)


def _field(event: Mapping[str, Any], name: str) -> Any:
    """Event Grid schema (`eventType`) or CloudEvents (`type`) field."""
    aliases = {"eventType": "type", "subject": "subject", "id": "id", "data": "data"}
    return event.get(name, event.get(aliases.get(name, name)))


def dispatch_release(config: ForwarderConfig, data: Mapping[str, Any]) -> str:
    """POST a `repository_dispatch` that starts the release workflow."""
    if config.ci_provider != "github":
        return f"ci provider {config.ci_provider!r}: release not dispatched"
    if not config.repository or not config.ci_token:
        raise RuntimeError("CI_REPOSITORY and CI_TOKEN must be set to dispatch a release")
    response = requests.post(
        f"{GITHUB_API}/repos/{config.repository}/dispatches",
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {config.ci_token}",
            "X-GitHub-Api-Version": "2022-11-28",
        },
        json={
            "event_type": config.event_type,
            "client_payload": {
                "stack": config.stack,
                "model_name": data.get("modelName"),
                "model_version": str(data.get("modelVersion")),
                "model_tags": data.get("modelTags") or {},
            },
        },
        timeout=TIMEOUT_SECONDS,
    )
    if response.status_code != 204:
        raise RuntimeError(
            f"GitHub refused the dispatch to {config.repository}: HTTP {response.status_code} "
            f"{response.text[:200]}"
        )
    return f"{config.repository}:{config.event_type}"


def submit_training(config: ForwarderConfig, credential: TokenCredential, subject: str) -> str:
    """PUT the training pipeline job into the workspace; returns the job name."""
    if not config.training_job or not config.workspace_id:
        return ""
    job_name = f"data-{uuid.uuid4().hex[:12]}"
    properties = dict(json.loads(config.training_job))  # the jobDefinition of the schedule
    properties["tags"] = {**(properties.get("tags") or {}), "trigger": subject[-200:]}
    token = credential.get_token(f"{ARM}/.default").token
    response = requests.put(
        f"{ARM}{config.workspace_id}/jobs/{job_name}?api-version={JOBS_API_VERSION}",
        headers={"Authorization": f"Bearer {token}"},
        json={"properties": properties},
        timeout=TIMEOUT_SECONDS,
    )
    if response.status_code not in (200, 201):
        raise RuntimeError(
            f"workspace refused the training job: HTTP {response.status_code} {response.text[:200]}"
        )
    return job_name


def handle(
    payload: Any, config: ForwarderConfig, credential: TokenCredential | None = None
) -> list[Outcome]:
    """Handle one Event Grid delivery (one event or a batch)."""
    outcomes: list[Outcome] = []
    for event in _events(payload):
        kind, event_id = _field(event, "eventType"), str(_field(event, "id"))
        data = _field(event, "data") or {}
        subject = str(_field(event, "subject") or "")
        if kind == SUBSCRIPTION_VALIDATION:
            outcomes.append(Outcome(event_id, "validated", data.get("validationCode", "")))
        elif kind == MODEL_REGISTERED and data.get("modelName") == config.model_name:
            outcomes.append(Outcome(event_id, "release-dispatched", dispatch_release(config, data)))
        elif kind == BLOB_CREATED and f"/containers/{config.raw_container}/" in subject:
            if credential is None:
                from azure.identity import ManagedIdentityCredential

                credential = ManagedIdentityCredential(client_id=os.environ.get("AZURE_CLIENT_ID"))
            job = submit_training(config, credential, subject)
            outcomes.append(Outcome(event_id, "training-submitted" if job else "ignored", job))
        else:
            outcomes.append(Outcome(event_id, "ignored", f"{kind} {subject}"))
    return outcomes


def decode_queue_message(body: str | bytes) -> Any:
    """The Event Grid event(s) in one queue message: JSON, or base64 of JSON."""
    raw = body.encode() if isinstance(body, str) else body
    text = raw.strip()
    if not text.startswith((b"{", b"[")):
        try:
            text = base64.b64decode(text, validate=True).strip()
        except binascii.Error as exc:
            raise ValueError(
                f"queue message is neither JSON nor base64 of JSON: {raw[:60]!r}"
            ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"queue message is not an Event Grid event: {text[:60]!r}") from exc


def handle_queue_message(
    body: str | bytes, config: ForwarderConfig, credential: TokenCredential | None = None
) -> list[Outcome]:
    """Handle one queue message (private mode). Errors raise, so the queue trigger retries the
    message and finally moves it to the `<queue>-poison` queue."""
    return handle(decode_queue_message(body), config, credential)


FUNCTION_APP = '''\
"""Azure Functions entry point (Python v2 model) -> azure_forwarder: an Event Grid trigger
(public mode), or a queue trigger on the queue Event Grid writes to (FORWARDER_TRIGGER=queue)."""
import logging
import os

import azure.functions as func

from azure_forwarder import ForwarderConfig, handle, handle_queue_message

app = func.FunctionApp()


def _log(outcomes):
    for outcome in outcomes:
        logging.info("event %s: %s %s", outcome.event_id, outcome.action, outcome.detail)


if os.environ.get("FORWARDER_TRIGGER") == "queue":

    @app.function_name(name="forward")
    @app.queue_trigger(arg_name="msg", queue_name="%EVENTS_QUEUE_NAME%", connection="EVENTS_QUEUE")
    def forward(msg: func.QueueMessage) -> None:
        _log(handle_queue_message(msg.get_body(), ForwarderConfig.from_env()))

else:

    @app.function_name(name="forward")
    @app.event_grid_trigger(arg_name="event")
    def forward(event: func.EventGridEvent) -> None:
        payload = {"id": event.id, "eventType": event.event_type, "subject": event.subject,
                   "data": event.get_json()}
        _log(handle(payload, ForwarderConfig.from_env()))
'''
"""The Function's entry module, packaged next to this file by the EventForwarder component."""
