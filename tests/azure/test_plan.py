"""The azureml blueprint under the offline plan: controls, capabilities, outputs, wiring."""

from __future__ import annotations

import json
import re

import pytest

from blueprints import azureml
from core.contract import ENDPOINT_CAPABILITIES, OUTPUT_NAMES, Capability
from core.controls import all_controls, validate_table

ML = "azure-native:machinelearningservices"
AZURE_CONTROLS = all_controls("azure")


def test_control_table_is_well_formed() -> None:
    assert AZURE_CONTROLS, "core/controls/azure.py has no rows"
    assert validate_table(AZURE_CONTROLS) == []
    assert all(c.platform == "azure" and c.id.startswith("AZ-") for c in AZURE_CONTROLS)


@pytest.mark.parametrize("control", AZURE_CONTROLS, ids=lambda c: c.id)
def test_prod_passes_every_control(plan_for, control) -> None:
    plan = plan_for("contoso-prod")
    assert not plan.settings.suppressions, "prod must pass without suppressions"
    finding = next(f for f in plan.findings if f.control.id == control.id)
    assert finding.status == "pass", f"{control.id} {finding.status}: {finding.failures}"


@pytest.mark.parametrize(
    "overrides",
    [{}, {"model": "1", "batch": {"enabled": True}}],
    ids=["no-model", "model"],
)
def test_dev_fails_only_documented_exceptions(plan_for, overrides) -> None:
    plan = plan_for("contoso-dev", **overrides)
    for f in plan.findings:
        assert f.status in ("pass", "waived", "n/a"), f"{f.control.id}: {f.status} {f.failures}"
        if f.status == "waived":
            assert f.control.dev_exception, f"{f.control.id} waived without a dev exception"
    if overrides:
        # AZ-CI-* need release.repository and AZ-KV-04 its secret token, which contoso-dev
        # does not set; contoso-prod evaluates them.
        assert all(
            f.status != "n/a"
            for f in plan.findings
            if not f.control.id.startswith("AZ-CI-") and f.control.id != "AZ-KV-04"
        ), "a model (and batch) override should make every other control applicable"


@pytest.mark.parametrize(
    ("stack", "overrides"),
    [("contoso-prod", {}), ("contoso-dev", {"model": "1"}), ("contoso-dev", {})],
    ids=["prod", "dev-model", "dev"],
)
def test_every_capability_has_a_resource(plan_for, stack, overrides) -> None:
    plan = plan_for(stack, **overrides)
    expected = {c for c in Capability if plan.settings.model or c not in ENDPOINT_CAPABILITIES}
    empty = sorted(c.value for c in expected if plan.capabilities[c.value] == 0)
    assert empty == [], f"{stack} {overrides}: no resource for {empty}"
    assert set(azureml.CAPABILITIES) == set(Capability)
    assert {e.capability for e in azureml.EVIDENCE} == set(Capability)


@pytest.mark.parametrize(("stack", "overrides"), [("contoso-prod", {}), ("contoso-dev", {})])
def test_outputs_are_exactly_the_contract(plan_for, stack, overrides) -> None:
    plan = plan_for(stack, **overrides)
    assert tuple(sorted(plan.outputs)) == tuple(sorted(OUTPUT_NAMES))
    if plan.settings.model is None:
        for name in ("endpointName", "endpointUrl", "modelVersion"):
            assert plan.outputs[name] == "", f"{name} should be empty without a model"
    else:
        assert plan.outputs["modelVersion"] == plan.settings.model
        assert plan.outputs["endpointUrl"].startswith("https://")


def test_no_secret_reaches_plain_outputs(plan_for) -> None:
    plan = plan_for("contoso-prod")
    text = json.dumps(plan.outputs)
    assert "cGxhY2Vob2xkZXI" not in text and "[secret]" not in text
    secret = plan.one("azure-native:keyvault:Secret")
    assert secret.inputs["properties"] == "[secret]", "the CI token must be a secret input"


def test_release_trigger_filters_model_registered_for_this_model(plan_for) -> None:
    plan = plan_for("contoso-prod")
    sub = plan.one(
        "azure-native:eventgrid:SystemTopicEventSubscription",
        f"{plan.settings.prefix}-release-subscription",
    )
    assert sub.inputs["filter"]["includedEventTypes"] == [
        "Microsoft.MachineLearningServices.ModelRegistered"
    ]
    (flt,) = sub.inputs["filter"]["advancedFilters"]
    assert flt == {
        "operatorType": "StringIn",
        "key": "data.modelName",
        "values": ["contoso-classifier"],
    }, f"release-subscription filter: {flt}"
    topic = plan.one("azure-native:eventgrid:SystemTopic", f"{plan.settings.prefix}-release-topic")
    workspace = plan.one(f"{ML}:Workspace")
    assert topic.inputs["topicType"] == "Microsoft.MachineLearningServices.Workspaces"
    assert topic.inputs["source"].endswith("/workspaces/" + workspace.inputs["workspaceName"])
    app = plan.one("azure-native:web:WebApp")
    # private mode: to the forwarder's queue in the artifact store, never the function's URL
    assert "destination" not in sub.inputs, "prod must not deliver to the function's webhook"
    delivery = sub.inputs["deliveryWithResourceIdentity"]
    account = plan.one("azure-native:storage:StorageAccount")
    assert delivery["destination"]["resourceId"].endswith(
        "/storageAccounts/" + account.inputs["accountName"]
    ), "release-subscription destination"
    settings = {s["name"]: s["value"] for s in app.inputs["siteConfig"]["appSettings"]}
    assert delivery["destination"]["queueName"] == settings["EVENTS_QUEUE_NAME"] == "events"
    assert settings["FORWARDER_TRIGGER"] == "queue"
    assert settings["CI_PROVIDER"] == "github"
    assert settings["CI_REPOSITORY"] == "contoso/ml-platform"
    assert settings["CI_TOKEN"].startswith("@Microsoft.KeyVault(SecretUri=https://"), (
        "forwarder-app must read the token through a Key Vault reference"
    )
    assert settings["MODEL_NAME"] == "contoso-classifier"


def test_data_trigger_watches_the_raw_container(plan_for) -> None:
    plan = plan_for("contoso-prod")
    sub = plan.one(
        "azure-native:eventgrid:SystemTopicEventSubscription",
        f"{plan.settings.prefix}-data-trigger-subscription",
    )
    assert sub.inputs["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert (
        sub.inputs["filter"]["subjectBeginsWith"] == "/blobServices/default/containers/raw/blobs/"
    )
    topic = plan.one(
        "azure-native:eventgrid:SystemTopic", f"{plan.settings.prefix}-data-trigger-topic"
    )
    account = plan.one("azure-native:storage:StorageAccount")
    assert topic.inputs["source"].endswith("/storageAccounts/" + account.inputs["accountName"])


def test_deployment_serves_the_configured_version(plan_for) -> None:
    plan = plan_for("contoso-prod")
    (dep,) = plan.by_type(f"{ML}:OnlineDeployment")
    workspace = plan.one(f"{ML}:Workspace")
    assert dep.inputs["deploymentName"] == "model-v2"
    assert dep.inputs["properties"]["model"].endswith(
        f"/workspaces/{workspace.inputs['workspaceName']}/models/contoso-classifier/versions/2"
    ), f"{dep.name} model: {dep.inputs['properties']['model']}"
    assert dep.inputs["sku"]["capacity"] == plan.settings.endpoint.min_instances
    assert dep.inputs["properties"]["dataCollector"]["collections"]["model_inputs"] == {
        "dataCollectionMode": "Enabled",
        "samplingRate": 1,
    }


def test_traffic_names_existing_deployments_and_sums_to_100(plan_for) -> None:
    plan = plan_for("contoso-prod")
    traffic = plan.one(
        "azure-native:resources:Deployment", f"{plan.settings.prefix}-endpoint-traffic"
    )
    (resource,) = traffic.inputs["properties"]["template"]["resources"]
    deployments = {d.inputs["deploymentName"]: d for d in plan.by_type(f"{ML}:OnlineDeployment")}
    assert resource["properties"]["traffic"] == {"model-v2": 100}
    assert set(resource["properties"]["traffic"]) <= set(deployments)
    endpoint = plan.one(f"{ML}:OnlineEndpoint")
    assert resource["name"].endswith("/" + endpoint.inputs["endpointName"])
    assert resource["properties"]["authMode"] == endpoint.inputs["properties"]["authMode"]
    assert all(d.urn in traffic.options["dependsOn"] for d in deployments.values()), (
        "endpoint-traffic must wait for the deployments it routes to"
    )


def test_autoscale_targets_the_deployment(plan_for) -> None:
    plan = plan_for("contoso-prod")
    (scale,) = plan.by_type("azure-native:monitor:AutoscaleSetting")
    (dep,) = plan.by_type(f"{ML}:OnlineDeployment")
    assert scale.inputs["targetResourceUri"].endswith("/deployments/model-v2")
    capacity = scale.inputs["profiles"][0]["capacity"]
    assert capacity == {"minimum": "2", "maximum": "5", "default": "2"}, capacity
    assert dep.inputs["sku"]["capacity"] == 2


def test_role_assignments_name_stack_resources(plan_for) -> None:
    plan = plan_for("contoso-prod")
    ids = {r.outputs.get("id") for r in plan.records}  # mock ids are not in outputs
    assignments = plan.by_type("azure-native:authorization:RoleAssignment")
    # The CI deploy identity applies the whole stack, so it is scoped to the stack's resource
    # group by design (never the subscription); every duty identity names single resources.
    rg = plan.one("azure-native:resources:ResourceGroup").inputs["resourceGroupName"]
    for r in assignments:
        if "-ci-" in r.name:
            assert r.inputs["scope"].endswith(f"/resourceGroups/{rg}"), (r.name, r.inputs["scope"])
    scopes = {r.inputs["scope"] for r in assignments if "-ci-" not in r.name}
    assert scopes
    names = {
        *(
            f"/storageAccounts/{r.inputs['accountName']}"
            for r in plan.by_type("azure-native:storage:StorageAccount")
        ),
        *(f"/vaults/{r.inputs['vaultName']}" for r in plan.by_type("azure-native:keyvault:Vault")),
        *(
            f"/registries/{r.inputs['registryName']}"
            for r in plan.by_type("azure-native:containerregistry:Registry")
        ),
        *(
            f"/components/{r.inputs['resourceName']}"
            for r in plan.by_type("azure-native:applicationinsights:Component")
        ),
        *(f"/workspaces/{r.inputs['workspaceName']}" for r in plan.by_type(f"{ML}:Workspace")),
    }
    assert ids is not None
    # Event Grid's system identities are granted one queue and one container of the store
    child = re.compile(r"/(queueServices|blobServices)/default/(queues|containers)/[^/]+$")
    for scope in scopes:
        assert any(child.sub("", scope).endswith(n) for n in names), f"role assignment on {scope}"


def test_prod_stores_are_protected(plan_for) -> None:
    plan = plan_for("contoso-prod")
    for type_ in (
        "azure-native:storage:StorageAccount",
        "azure-native:keyvault:Vault",
        "azure-native:keyvault:Key",
        "azure-native:containerregistry:Registry",
        "azure-native:storage:BlobContainer",
    ):
        for r in plan.by_type(type_):
            assert r.options["protect"] and r.options["retainOnDelete"], f"{r.name} unprotected"


def test_schedule_runs_the_compiled_pipeline(plan_for) -> None:
    plan = plan_for("contoso-prod")
    schedule = plan.one(f"{ML}:Schedule", f"{plan.settings.prefix}-pipeline-schedule")
    job = schedule.inputs["properties"]["action"]["jobDefinition"]
    assert schedule.inputs["properties"]["trigger"]["expression"] == plan.settings.schedule.cron
    assert job["jobType"] == "Pipeline"
    components = {c.inputs["name"]: c for c in plan.by_type(f"{ML}:ComponentVersion")}
    assert len(components) == 6
    for node in job["jobs"].values():
        name = node["componentId"].split("/components/")[1].split("/")[0]
        assert name in components, f"pipeline node {node['name']} uses unknown component {name}"
    compute = plan.one(f"{ML}:Compute")
    assert job["settings"]["default_compute"].endswith(
        "/computes/" + compute.inputs["computeName"]
    ), job["settings"]
    assert job["inputs"]["data_uri"]["uri"].endswith(".blob.core.windows.net/raw/")
    release = plan.one(
        "azure-native:eventgrid:SystemTopicEventSubscription",
        f"{plan.settings.prefix}-release-subscription",
    )
    assert release.inputs["filter"]["advancedFilters"][0]["values"] == [
        job["inputs"]["model_name"]["value"]
    ], "the release trigger must watch the model the pipeline registers"
    app = plan.one("azure-native:web:WebApp")
    settings = {s["name"]: s["value"] for s in app.inputs["siteConfig"]["appSettings"]}
    assert json.loads(settings["TRAINING_JOB_DEFINITION"]) == job, (
        "the data trigger must submit the same job the schedule runs"
    )


def test_dev_trains_on_low_priority_and_prod_on_dedicated(plan_for) -> None:
    dev = plan_for("contoso-dev").one(f"{ML}:Compute")
    prod = plan_for("contoso-prod").one(f"{ML}:Compute")
    assert dev.inputs["properties"]["properties"]["vmPriority"] == "LowPriority"
    assert prod.inputs["properties"]["properties"]["vmPriority"] == "Dedicated"


def test_dev_without_model_has_no_endpoint(plan_for) -> None:
    plan = plan_for("contoso-dev")
    assert plan.by_type(f"{ML}:OnlineEndpoint") == []
    assert plan.by_type("azure-native:network:PrivateEndpoint") == []


def test_private_endpoints_cover_the_stores(plan_for) -> None:
    plan = plan_for("contoso-prod")
    groups = sorted(
        pe.inputs["privateLinkServiceConnections"][0]["groupIds"][0]
        for pe in plan.by_type("azure-native:network:PrivateEndpoint")
    )
    assert groups == ["amlworkspace", "blob", "dfs", "queue", "registry", "vault"]


def test_pipeline_runs_the_pinned_kit_image_from_the_stack_registry(plan_for) -> None:
    plan = plan_for("contoso-prod")
    registry = plan.one("azure-native:containerregistry:Registry")
    assert plan.settings.image is not None
    assert plan.settings.image.startswith(registry.inputs["registryName"] + ".azurecr.io/"), (
        f"mlops:image {plan.settings.image} is not in the stack's registry "
        f"{registry.inputs['registryName']}"
    )
    for component in plan.by_type(f"{ML}:ComponentVersion"):
        env = component.inputs["properties"]["componentSpec"]["environment"]
        assert env["image"] == plan.settings.image, f"{component.name} image {env}"
