"""Blue/green traffic of the Azure endpoint: the pure traffic split and the component's
deployments and traffic resource when a version replaces another."""

from __future__ import annotations

import pytest

from components.azure.endpoint import (
    ModelEndpoint,
    ModelEndpointArgs,
    deployment_name,
    traffic_split,
)
from tests.azure._harness import of_type, record

ML = "azure-native:machinelearningservices"


@pytest.mark.parametrize(
    ("new", "old", "strategy", "canary", "mirror", "traffic", "mirrored"),
    [
        ("2", None, "canary", 10, 0, {"model-v2": 100}, {}),
        ("2", "2", "canary", 10, 0, {"model-v2": 100}, {}),
        ("3", "2", "canary", 10, 0, {"model-v2": 90, "model-v3": 10}, {}),
        ("3", "2", "linear", 25, 0, {"model-v2": 75, "model-v3": 25}, {}),
        ("3", "2", "all-at-once", 10, 0, {"model-v2": 0, "model-v3": 100}, {}),
        ("3", "2", "canary", 10, 20, {"model-v2": 100, "model-v3": 0}, {"model-v3": 20}),
    ],
)
def test_traffic_split(new, old, strategy, canary, mirror, traffic, mirrored) -> None:
    live, shadow = traffic_split(new, old, strategy, canary, mirror)
    assert live == traffic and shadow == mirrored
    assert sum(live.values()) == 100


def test_deployment_names_are_valid_azure_names() -> None:
    for version in ("1", "42", "999999"):
        name = deployment_name(version)
        assert 3 <= len(name) <= 32 and name[0].isalpha(), name


def _endpoint(previous: str | None, mirror: int = 0) -> list:
    def build() -> None:
        ModelEndpoint(
            "ep",
            ModelEndpointArgs(
                prefix="contoso-prod",
                location="westeurope",
                resource_group_name="rg",
                workspace_name="mlw",
                workspace_id="/subscriptions/s/resourceGroups/rg/providers/"
                "Microsoft.MachineLearningServices/workspaces/mlw",
                identity_id="/id/serving",
                model_name="contoso-classifier",
                model_version="3",
                previous_model_version=previous,
                strategy="canary",
                canary_percent=10,
                mirror_percent=mirror,
            ),
        )

    return record(build)


def test_canary_keeps_the_old_deployment_and_splits_traffic() -> None:
    records = _endpoint("2")
    deployments = {
        d.inputs["deploymentName"]: d for d in of_type(records, f"{ML}:OnlineDeployment")
    }
    assert sorted(deployments) == ["model-v2", "model-v3"]
    assert deployments["model-v2"].inputs["properties"]["model"].endswith("/versions/2")
    assert deployments["model-v3"].inputs["properties"]["model"].endswith("/versions/3")
    (traffic,) = of_type(records, "azure-native:resources:Deployment")
    props = traffic.inputs["properties"]["template"]["resources"][0]["properties"]
    assert props["traffic"] == {"model-v2": 90, "model-v3": 10}
    assert props["mirrorTraffic"] == {}
    assert len(of_type(records, "azure-native:monitor:AutoscaleSetting")) == 2


def test_mirror_first_sends_no_live_traffic_to_the_new_version() -> None:
    records = _endpoint("2", mirror=20)
    (traffic,) = of_type(records, "azure-native:resources:Deployment")
    props = traffic.inputs["properties"]["template"]["resources"][0]["properties"]
    assert props["traffic"] == {"model-v2": 100, "model-v3": 0}
    assert props["mirrorTraffic"] == {"model-v3": 20}


def test_endpoint_ignores_traffic_drift_and_uses_token_auth() -> None:
    records = _endpoint(None)
    (endpoint,) = of_type(records, f"{ML}:OnlineEndpoint")
    assert endpoint.inputs["properties"]["authMode"] == "AADToken"
    assert "traffic" not in endpoint.inputs["properties"], (
        "traffic must be applied after the deployments exist, not on the endpoint"
    )
