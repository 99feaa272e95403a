"""The release forwarder in private mode (staging, prod): Event Grid -> storage queue behind the
store's firewall -> a VNet-integrated Elastic Premium function with no public access; dev keeps
the consumption app Event Grid calls. The AZ-FN-* and AZ-EG-02/03 controls fail on the public
forwarder every tier had before (the dev shape, evaluated as prod)."""

from __future__ import annotations

import base64
import json
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest
import responses

from components.azure import forwarder as fwd_component
from core.config import ConfigError
from mlops.plan import run_plan
from pipelines.services import azure_forwarder as fwd
from tests.azure.test_forwarder import CONFIG, DISPATCH, model_registered
from tests.conftest import control_status

WEBAPP = "azure-native:web:WebApp"
SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"
PRIVATE_PATH_CONTROLS = ("AZ-FN-01", "AZ-FN-02", "AZ-FN-03", "AZ-EG-02", "AZ-EG-03")
SENDER = "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a"  # Storage Queue Data Message Sender


def settings_of(app: Any) -> dict[str, Any]:
    return {s["name"]: s["value"] for s in app.inputs["siteConfig"]["appSettings"]}


@pytest.mark.parametrize("control_id", PRIVATE_PATH_CONTROLS)
def test_controls_fail_on_the_public_forwarder(plan_for, control_id) -> None:
    """The dev forwarder is what prod ran before: as prod, each control fails on it."""
    public = plan_for("contoso-dev").records
    assert control_status(public, "azure", control_id, environment="prod") == "fail"
    assert control_status(public, "azure", control_id, environment="dev") == "waived"
    assert control_status(plan_for("contoso-prod").records, "azure", control_id) == "pass"


@pytest.mark.parametrize("stack", ["contoso-prod", "contoso-staging"])
def test_prod_like_tiers_forward_through_a_private_queue(plan_for, stack) -> None:
    plan = plan_for(stack)
    app = plan.one(WEBAPP)
    assert app.inputs["publicNetworkAccess"] == "Disabled"
    assert app.inputs["outboundVnetRouting"] == {"allTraffic": True}
    subnet = next(
        s
        for s in plan.by_type("azure-native:network:Subnet")
        if app.inputs["virtualNetworkSubnetId"].endswith(f"/subnets/{s.inputs['subnetName']}")
    )
    assert subnet.inputs["delegations"][0]["serviceName"] == "Microsoft.Web/serverFarms"
    assert subnet.inputs["defaultOutboundAccess"] is False
    nat = plan.one("azure-native:network:NatGateway")
    assert subnet.inputs["natGateway"]["id"].endswith(
        "/natGateways/" + nat.inputs["natGatewayName"]
    )
    farm = plan.one("azure-native:web:AppServicePlan")
    assert farm.inputs["sku"] == {"name": "EP1", "tier": "ElasticPremium"}
    settings = settings_of(app)
    assert settings["FORWARDER_TRIGGER"] == "queue"
    account = plan.one("azure-native:storage:StorageAccount")
    assert account.inputs["publicNetworkAccess"] == "Disabled"
    assert account.inputs["networkRuleSet"]["bypass"] == "AzureServices"
    assert settings["EVENTS_QUEUE__queueServiceUri"] == (
        f"https://{account.inputs['accountName']}.queue.core.windows.net"
    )
    assert settings["EVENTS_QUEUE__credential"] == "managedidentity"
    assert not any("AccountKey" in str(v) for v in settings.values()), "no storage keys"
    # the queue is reached over a private endpoint resolved in the VNet's private zone
    (queue_pe,) = [
        pe
        for pe in plan.by_type("azure-native:network:PrivateEndpoint")
        if pe.inputs["privateLinkServiceConnections"][0]["groupIds"] == ["queue"]
    ]
    assert queue_pe.inputs["privateLinkServiceConnections"][0]["privateLinkServiceId"].endswith(
        "/storageAccounts/" + account.inputs["accountName"]
    )
    zones = {
        z.inputs["privateZoneName"] for z in plan.by_type("azure-native:privatedns:PrivateZone")
    }
    assert "privatelink.queue.core.windows.net" in zones
    # both triggers write to that queue with their topic's system identity, which may send
    # to that queue only
    queue = plan.one("azure-native:storage:Queue")
    topics = {t.name: t for t in plan.by_type("azure-native:eventgrid:SystemTopic")}
    assignments = plan.by_type("azure-native:authorization:RoleAssignment")
    for sub in plan.by_type(SUBSCRIPTION):
        delivery = sub.inputs["deliveryWithResourceIdentity"]
        assert delivery["identity"] == {"type": "SystemAssigned"}
        assert delivery["destination"]["queueName"] == queue.inputs["queueName"]
        assert sub.inputs["deadLetterWithResourceIdentity"]["identity"] == {
            "type": "SystemAssigned"
        }
        topic = topics[sub.name.replace("-subscription", "-topic")]
        principal = topic.outputs["identity"]["principalId"]
        (sender,) = [
            a
            for a in assignments
            if a.inputs["principalId"] == principal
            and a.inputs["roleDefinitionId"].endswith(SENDER)
        ]
        assert sender.inputs["scope"].endswith("/queueServices/default/queues/events")
        assert sender.urn in " ".join(sub.options["dependsOn"]), "grant before subscription"


def test_dev_keeps_the_cheap_public_forwarder(plan_for) -> None:
    plan = plan_for("contoso-dev")
    farm = plan.one("azure-native:web:AppServicePlan")
    assert farm.inputs["sku"] == {"name": "Y1", "tier": "Dynamic"}
    assert plan.by_type("azure-native:storage:Queue") == []
    assert plan.by_type("azure-native:network:NatGateway") == []
    app = plan.one(WEBAPP)
    assert settings_of(app)["FORWARDER_TRIGGER"] == "eventgrid"
    for sub in plan.by_type(SUBSCRIPTION):
        assert sub.inputs["destination"]["endpointType"] == "AzureFunction"


def test_a_private_azure_network_needs_room_for_two_subnets() -> None:
    with pytest.raises(ConfigError) as exc:
        run_plan("contoso-prod", overrides={"network": {"cidr": "10.1.2.0/24"}})
    (problem,) = exc.value.problems
    assert problem.key == "network.cidr" and "/16 to /23" in str(exc.value)


# --- the forwarder code with a queue message ------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda e: base64.b64encode(json.dumps(e).encode()),
        lambda e: base64.b64encode(json.dumps(e).encode()).decode(),
        lambda e: json.dumps(e).encode(),
    ],
    ids=["base64-bytes", "base64-text", "json"],
)
@responses.activate
def test_queue_message_dispatches_the_release(encode: Callable[[Any], Any]) -> None:
    call = responses.add(responses.POST, DISPATCH, status=204)
    (outcome,) = fwd.handle_queue_message(encode(model_registered(version="7")), CONFIG)
    assert outcome.action == "release-dispatched"
    assert call.call_count == 1
    payload = json.loads(responses.calls[0].request.body)["client_payload"]
    assert (payload["model_name"], payload["model_version"]) == ("contoso-classifier", "7")


@responses.activate
def test_queue_message_for_another_model_is_ignored() -> None:
    message = base64.b64encode(json.dumps(model_registered(name="other")).encode())
    (outcome,) = fwd.handle_queue_message(message, CONFIG)
    assert outcome.action == "ignored"
    assert len(responses.calls) == 0


@responses.activate
def test_queue_message_failure_raises_so_the_queue_retries() -> None:
    responses.add(responses.POST, DISPATCH, status=502)
    message = base64.b64encode(json.dumps(model_registered()).encode())
    with pytest.raises(RuntimeError, match="HTTP 502"):
        fwd.handle_queue_message(message, CONFIG)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [(b"not an event", "neither JSON nor base64"), (base64.b64encode(b"[1, 2"), "not an Event")],
)
def test_queue_message_that_is_not_an_event_is_refused(body: bytes, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        fwd.handle_queue_message(body, CONFIG)


class _FakeFunctions(types.ModuleType):
    """The few `azure.functions` names the entry module uses, recording the bindings."""

    def __init__(self) -> None:
        super().__init__("azure.functions")
        self.bindings: list[tuple[str, dict[str, Any]]] = []
        self.functions: dict[str, Callable[..., Any]] = {}
        fake = self

        class FunctionApp:
            def function_name(self, name: str) -> Callable[[Any], Any]:
                def wrap(fn: Any) -> Any:
                    fake.functions[name] = fn
                    return fn

                return wrap

            def queue_trigger(self, **kwargs: Any) -> Callable[[Any], Any]:
                fake.bindings.append(("queue", kwargs))
                return lambda fn: fn

            def event_grid_trigger(self, **kwargs: Any) -> Callable[[Any], Any]:
                fake.bindings.append(("eventgrid", kwargs))
                return lambda fn: fn

        self.FunctionApp = FunctionApp
        self.QueueMessage = object
        self.EventGridEvent = object


def test_package_passes_queue_messages_through_undecoded() -> None:
    host = json.loads(fwd_component.package().assets["host.json"].text)
    assert host["extensions"]["queues"]["messageEncoding"] == "none"


@responses.activate
def test_entry_module_binds_the_queue_trigger_in_private_mode(monkeypatch) -> None:
    functions = _FakeFunctions()
    azure_pkg = sys.modules.get("azure") or types.ModuleType("azure")
    monkeypatch.setitem(sys.modules, "azure", azure_pkg)
    monkeypatch.setitem(sys.modules, "azure.functions", functions)
    monkeypatch.setitem(sys.modules, "azure_forwarder", fwd)
    monkeypatch.setenv("FORWARDER_TRIGGER", "queue")
    for key, value in {
        "MODEL_NAME": CONFIG.model_name,
        "STACK": CONFIG.stack,
        "CI_PROVIDER": "github",
        "CI_REPOSITORY": CONFIG.repository,
        "CI_TOKEN": CONFIG.ci_token,
    }.items():
        monkeypatch.setenv(key, value)
    exec(compile(fwd.FUNCTION_APP, "function_app.py", "exec"), {"__name__": "function_app"})
    assert functions.bindings == [
        (
            "queue",
            {"arg_name": "msg", "queue_name": "%EVENTS_QUEUE_NAME%", "connection": "EVENTS_QUEUE"},
        )
    ]
    call = responses.add(responses.POST, DISPATCH, status=204)
    # messageEncoding none: the function gets the message as Event Grid wrote it
    body = base64.b64encode(json.dumps(model_registered()).encode())
    functions.functions["forward"](types.SimpleNamespace(get_body=lambda: body))
    assert call.call_count == 1
