"""Release helpers against the real azure-ai-ml MLClient; HTTP is intercepted by `responses`
and answered by a small in-memory Azure ML workspace (ARM shapes), with a fake credential."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import responses
from azure.core.credentials import AccessToken

from pipelines.release import azure as release

SUB, RG, WS = "00000000-0000-0000-0000-000000000000", "rg-contoso-prod", "mlw-contoso-prod"
WS_ID = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
    f"Microsoft.MachineLearningServices/workspaces/{WS}"
)
ARM = "https://management.azure.com"
MODEL = "contoso-classifier"
ENDPOINT = "ep-contoso-prod"
SCORING = f"https://{ENDPOINT}.westeurope.inference.ml.azure.com/score"


class FakeCredential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken("fake-token", int(time.time()) + 3600)


class FakeWorkspace:
    """Just enough of the Azure ML ARM API: models, online endpoints and deployments."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, dict[str, Any]]] = {}
        self.puts: list[tuple[str, dict[str, Any]]] = []
        self.scored: list[dict[str, Any]] = []

    def add_model(self, version: str, archived: bool = False) -> None:
        self.models[version] = {
            "id": f"{WS_ID}/models/{MODEL}/versions/{version}",
            "name": version,
            "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
            "properties": {
                "modelType": "mlflow_model",
                "isArchived": archived,
                "flavors": {"python_function": {"data": {"loader_module": "mlflow.sklearn"}}},
                "tags": {},
                "properties": {},
                "stage": "Archived" if archived else "Development",
                "modelUri": f"azureml://models/{MODEL}/versions/{version}",
            },
        }

    def add_endpoint(self, traffic: dict[str, int], deployments: list[str]) -> None:
        self.endpoints[ENDPOINT] = {
            "id": f"{WS_ID}/onlineEndpoints/{ENDPOINT}",
            "name": ENDPOINT,
            "location": "westeurope",
            "kind": "Managed",
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "authMode": "AADToken",
                "traffic": traffic,
                "mirrorTraffic": {},
                "scoringUri": SCORING,
                "provisioningState": "Succeeded",
                "publicNetworkAccess": "Disabled",
            },
        }
        for name in deployments:
            self.deployments.setdefault(ENDPOINT, {})[name] = self._deployment(name, {})

    def _deployment(self, name: str, properties: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"{WS_ID}/onlineEndpoints/{ENDPOINT}/deployments/{name}",
            "name": name,
            "location": "westeurope",
            "kind": "Managed",
            "sku": {"name": "Default", "capacity": 2},
            "properties": {
                "endpointComputeType": "Managed",
                "instanceType": "Standard_DS3_v2",
                # defaults Azure fills in on every deployment
                "scaleSettings": {"scaleType": "Default"},
                "requestSettings": {
                    "maxConcurrentRequestsPerInstance": 1,
                    "requestTimeout": "PT5S",
                },
                **properties,
                "provisioningState": "Succeeded",
            },
        }

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        path = request.path_url.split("?")[0]
        body = json.loads(request.body) if request.body else None
        if request.url.startswith(SCORING):
            assert request.headers["Authorization"] == "Bearer fake-token"
            self.scored.append(body)
            return 200, {}, json.dumps([1])
        rel = path.removeprefix(WS_ID)
        if request.method == "PUT":
            self.puts.append((rel, body))
        if rel == "" and request.method == "GET":
            return (
                200,
                {},
                json.dumps({"id": WS_ID, "name": WS, "location": "westeurope", "properties": {}}),
            )
        if m := re.fullmatch(r"/data/([\w-]+)/versions/(\w+)", rel):
            # data collection registers one data asset per collection
            if request.method != "PUT":
                return self._missing()
            asset = {"id": f"{WS_ID}{rel}", "name": m[2], "properties": body["properties"]}
            return 200, {}, json.dumps(asset)
        if m := re.fullmatch(rf"/models/{MODEL}/versions", rel):
            return 200, {}, json.dumps({"value": list(self.models.values())})
        if m := re.fullmatch(rf"/models/{MODEL}/versions/(\w+)", rel):
            model = self.models.get(m[1])
            return (200, {}, json.dumps(model)) if model else self._missing()
        if m := re.fullmatch(r"/onlineEndpoints/([\w-]+)/deployments", rel):
            return 200, {}, json.dumps({"value": list(self.deployments.get(m[1], {}).values())})
        if m := re.fullmatch(r"/onlineEndpoints/([\w-]+)/deployments/([\w-]+)", rel):
            if request.method == "PUT":
                dep = self._deployment(m[2], body["properties"])
                dep["sku"] = body.get("sku", dep["sku"])
                self.deployments.setdefault(m[1], {})[m[2]] = dep
                return 200, {}, json.dumps(dep)
            dep = self.deployments.get(m[1], {}).get(m[2])
            return (200, {}, json.dumps(dep)) if dep else self._missing()
        if m := re.fullmatch(r"/onlineEndpoints/([\w-]+)", rel):
            if request.method == "PUT":
                endpoint = self.endpoints[m[1]]
                endpoint["properties"].update(body["properties"])
                return 200, {}, json.dumps(endpoint)
            endpoint = self.endpoints.get(m[1])
            return (200, {}, json.dumps(endpoint)) if endpoint else self._missing()
        raise AssertionError(f"unexpected call {request.method} {request.url}")

    @staticmethod
    def _missing() -> tuple[int, dict[str, str], str]:
        return 404, {}, json.dumps({"error": {"code": "ResourceNotFound", "message": "gone"}})


@pytest.fixture
def workspace():
    fake = FakeWorkspace()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for method in (responses.GET, responses.PUT, responses.POST, responses.PATCH):
            rsps.add_callback(
                method, re.compile(rf"({re.escape(ARM)}|{re.escape(SCORING)}).*"), callback=fake
            )
        yield fake


@pytest.fixture
def ml():
    return release.client(release.Workspace(SUB, RG, WS), credential=FakeCredential())


def test_smoke_test_scores_through_the_endpoint_with_a_token(workspace, ml) -> None:
    workspace.add_endpoint({"model-v2": 100}, ["model-v2"])
    payload = {"input_data": {"columns": ["a"], "data": [[1.0]]}}
    assert release.smoke_test(ml, ENDPOINT, payload) == [1]
    assert workspace.scored == [payload]
