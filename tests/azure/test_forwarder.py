"""The Event Grid forwarder, called directly with real-shaped Event Grid events; GitHub and ARM
are intercepted with `responses`."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import responses
from azure.core.credentials import AccessToken

from pipelines.services import azure_forwarder as fwd

WS_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-contoso-prod/"
    "providers/Microsoft.MachineLearningServices/workspaces/mlw-contoso-prod"
)
JOB = {
    "jobType": "Pipeline",
    "experimentName": "contoso-prod-training",
    "tags": {"a": "b"},
    "jobs": {"train": {"componentId": f"{WS_ID}/components/mlops_train/versions/1"}},
}
CONFIG = fwd.ForwarderConfig(
    model_name="contoso-classifier",
    stack="contoso-prod",
    ci_provider="github",
    repository="contoso/ml-platform",
    event_type="mlops-release",
    ci_token="ghp_test",
    workspace_id=WS_ID,
    training_job=json.dumps(JOB),
)
DISPATCH = "https://api.github.com/repos/contoso/ml-platform/dispatches"


def model_registered(name: str = "contoso-classifier", version: str = "3") -> dict[str, Any]:
    """An Event Grid schema event as Azure ML publishes it."""
    return {
        "topic": WS_ID,
        "subject": f"models/{name}:{version}",
        "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
        "eventTime": "2025-05-01T10:00:00.0000000Z",
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "data": {
            "modelName": name,
            "modelVersion": version,
            "modelTags": {"gate": "passed"},
            "modelProperties": {},
        },
        "dataVersion": "2",
        "metadataVersion": "1",
    }


def blob_created(container: str = "raw") -> dict[str, Any]:
    return {
        "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/"
        "storageAccounts/stcontosoprod",
        "subject": f"/blobServices/default/containers/{container}/blobs/2025/05/batch.csv",
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": "2025-05-01T10:00:00.0000000Z",
        "id": "b1f2e1f8-201e-0035-73ab-eeb76e06a1b2",
        "data": {
            "api": "PutBlob",
            "contentType": "text/csv",
            "contentLength": 524288,
            "blobType": "BlockBlob",
            "url": f"https://stcontosoprod.blob.core.windows.net/{container}/2025/05/batch.csv",
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


class Credential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken("arm-token", int(time.time()) + 3600)


@responses.activate
def test_model_registered_dispatches_the_release_workflow() -> None:
    call = responses.add(responses.POST, DISPATCH, status=204)
    (outcome,) = fwd.handle([model_registered()], CONFIG)
    assert outcome.action == "release-dispatched"
    assert call.call_count == 1
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Bearer ghp_test"
    assert json.loads(request.body) == {
        "event_type": "mlops-release",
        "client_payload": {
            "stack": "contoso-prod",
            "model_name": "contoso-classifier",
            "model_version": "3",
            "model_tags": {"gate": "passed"},
        },
    }


@responses.activate
def test_other_models_and_unknown_events_are_ignored() -> None:
    outcomes = fwd.handle(
        [
            model_registered(name="someone-else"),
            {
                "id": "1",
                "eventType": "Microsoft.MachineLearningServices.RunCompleted",
                "subject": "experiments/x",
                "data": {},
            },
        ],
        CONFIG,
    )
    assert [o.action for o in outcomes] == ["ignored", "ignored"]
    assert len(responses.calls) == 0


@responses.activate
def test_github_refusal_raises_so_event_grid_retries() -> None:
    responses.add(responses.POST, DISPATCH, status=401, json={"message": "Bad credentials"})
    with pytest.raises(RuntimeError, match="HTTP 401"):
        fwd.handle(model_registered(), CONFIG)


def test_without_ci_provider_nothing_is_sent() -> None:
    config = fwd.ForwarderConfig(model_name="contoso-classifier", stack="contoso-dev")
    with responses.RequestsMock() as rsps:  # any HTTP call would fail this test
        (outcome,) = fwd.handle(json.dumps([model_registered()]), config)
        assert len(rsps.calls) == 0
    assert outcome.action == "release-dispatched" and "not dispatched" in outcome.detail


@responses.activate
def test_new_raw_data_submits_the_training_job() -> None:
    put = responses.add(
        responses.PUT,
        re.compile(
            rf"https://management\.azure\.com{WS_ID}/jobs/data-[0-9a-f]{{12}}\?api-version=.*"
        ),
        status=201,
        json={},
    )
    credential = Credential()
    (outcome,) = fwd.handle([blob_created()], CONFIG, credential=credential)
    assert outcome.action == "training-submitted" and outcome.detail.startswith("data-")
    assert put.call_count == 1
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Bearer arm-token"
    assert credential.scopes == ["https://management.azure.com/.default"]
    body = json.loads(request.body)
    assert body["properties"]["jobs"] == JOB["jobs"]
    assert body["properties"]["tags"]["trigger"].endswith("/containers/raw/blobs/2025/05/batch.csv")
    assert body["properties"]["tags"]["a"] == "b"


@responses.activate
def test_blobs_outside_the_raw_container_do_not_train() -> None:
    (outcome,) = fwd.handle([blob_created(container="captures")], CONFIG, credential=Credential())
    assert outcome.action == "ignored"
    assert len(responses.calls) == 0


def test_subscription_validation_is_answered() -> None:
    event = {
        "id": "v1",
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "subject": "",
        "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"},
    }
    (outcome,) = fwd.handle(event, CONFIG)
    assert outcome == fwd.Outcome("v1", "validated", "512d38b6-c7b8-40c8-89fe-f46f9e9622b6")


def test_config_from_app_settings() -> None:
    env = {
        "MODEL_NAME": "m",
        "STACK": "s",
        "CI_PROVIDER": "github",
        "CI_REPOSITORY": "o/r",
        "CI_TOKEN": "t",
        "TRAINING_JOB_DEFINITION": "{}",
    }
    config = fwd.ForwarderConfig.from_env(env)
    assert (config.model_name, config.ci_provider, config.repository, config.training_job) == (
        "m",
        "github",
        "o/r",
        "{}",
    )
    with pytest.raises(KeyError):
        fwd.ForwarderConfig.from_env({"STACK": "s"})
