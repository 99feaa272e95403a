"""Azure ML batch scoring: batch endpoint and deployment on the training cluster, the default
deployment set after it exists, and a schedule whose invocation body is what the real
`azure-ai-ml` client posts to a batch endpoint (HTTP intercepted with `responses`)."""

from __future__ import annotations

import json
import re

import pytest
import responses
from azure.ai.ml import Input, MLClient, Output
from azure.core.credentials import AccessToken

from components.azure.batch import BatchScoringArgs, invocation_body, validate_batch_scoring_args
from mlops.mocks import MOCK_SUBSCRIPTION

ML = "azure-native:machinelearningservices"


class _Token:
    """A credential that hands out a fixed token (no Entra ID call)."""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken("test-token", 4_102_444_800)


def _sdk_invoke_body(input_prefix: str, output_prefix: str) -> dict:
    """The JSON body azure-ai-ml's `batch_endpoints.invoke` posts for these folders."""
    client = MLClient(_Token(), MOCK_SUBSCRIPTION, "rg", "ws")
    endpoint_id = (
        f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/rg/providers/"
        "Microsoft.MachineLearningServices/workspaces/ws/batchEndpoints/bep"
    )
    scoring = "https://bep.westeurope.inference.ml.azure.com/jobs"
    with responses.RequestsMock() as mock:
        mock.add(
            responses.GET,
            re.compile(r"https://management\.azure\.com/.*/batchEndpoints/bep\?.*"),
            json={
                "id": endpoint_id,
                "name": "bep",
                "location": "westeurope",
                "properties": {"authMode": "AADToken", "scoringUri": scoring},
            },
        )
        mock.add(responses.POST, scoring, json={"id": "j", "name": "job-1", "properties": {}})
        client.batch_endpoints.invoke(
            "bep",
            inputs={
                "input": Input(
                    type="uri_folder",
                    path=f"azureml://datastores/workspaceblobstore/paths/{input_prefix}",
                )
            },
            outputs={
                "score": Output(
                    type="uri_folder",
                    path=f"azureml://datastores/workspaceblobstore/paths/{output_prefix}",
                )
            },
        )
        post = next(c for c in mock.calls if c.request.method == "POST")
        assert post.request.headers["Authorization"] == "Bearer test-token"
        return json.loads(post.request.body)


def test_prod_plan_has_the_batch_resources_and_their_controls_pass(plan_for):
    plan = plan_for("contoso-prod")
    kinds = {r.type for r in plan.records if r.name.startswith("contoso-prod-batch")}
    assert kinds == {
        "mlops:azure:BatchScoring",
        f"{ML}:BatchEndpoint",
        f"{ML}:BatchDeployment",
        "azure-native:resources:Deployment",
        f"{ML}:Schedule",
    }
    findings = {f.control.id: f for f in plan.findings}
    for cid in ("AZ-BATCH-01", "AZ-BATCH-02", "AZ-BATCH-03", "AZ-BATCH-04"):
        assert findings[cid].status == "pass", (cid, findings[cid].failures)
    assert plan.failed_controls == []


def test_deployment_serves_the_configured_version_on_the_training_cluster(plan_for):
    plan = plan_for("contoso-prod")
    endpoint = plan.one(f"{ML}:BatchEndpoint")
    assert endpoint.inputs["properties"]["authMode"] == "AADToken"
    deployment = plan.one(f"{ML}:BatchDeployment")
    props = deployment.inputs["properties"]
    workspace = plan.one(f"{ML}:Workspace").inputs["workspaceName"]
    assert props["model"]["referenceType"] == "Id"
    assert props["model"]["assetId"].endswith(
        f"/workspaces/{workspace}/models/contoso-classifier/versions/2"
    )
    compute = plan.one(f"{ML}:Compute")
    assert props["compute"].endswith(f"/computes/{compute.inputs['computeName']}")
    assert deployment.inputs["deploymentName"] == "model-v2"
    assert deployment.inputs["endpointName"] == endpoint.outputs["name"]
    assert (props["errorThreshold"], props["outputAction"]) == (0, "AppendRow")


def test_default_deployment_is_set_after_the_deployment_exists(plan_for):
    plan = plan_for("contoso-prod")
    default = plan.one("azure-native:resources:Deployment", "contoso-prod-batch-default")
    deployment = plan.one(f"{ML}:BatchDeployment")
    assert deployment.urn in default.options["dependsOn"]
    (arm,) = default.inputs["properties"]["template"]["resources"]
    assert arm["type"] == "Microsoft.MachineLearningServices/workspaces/batchEndpoints"
    assert arm["properties"]["defaults"] == {"deploymentName": "model-v2"}
    assert arm["name"].endswith("/" + plan.one(f"{ML}:BatchEndpoint").outputs["name"])
    endpoint = plan.one(f"{ML}:BatchEndpoint")
    assert "properties.defaults" in endpoint.options["ignoreChanges"]


def test_schedule_invokes_the_endpoint_with_the_sdk_body(plan_for):
    plan = plan_for("contoso-prod")
    schedule = plan.one(f"{ML}:Schedule", "contoso-prod-batch-schedule")
    props = schedule.inputs["properties"]
    assert props["trigger"] == {"triggerType": "Cron", "expression": "0 2 * * *", "timeZone": "UTC"}
    action = props["action"]
    assert action["actionType"] == "InvokeBatchEndpoint"
    definition = dict(action["endpointInvocationDefinition"])
    endpoint_id = definition.pop("endpointId")
    assert endpoint_id.endswith("/" + plan.one(f"{ML}:BatchEndpoint").outputs["name"])
    assert definition == _sdk_invoke_body("batch/input/", "batch/output/")
    default = plan.one("azure-native:resources:Deployment", "contoso-prod-batch-default")
    assert default.urn in schedule.options["dependsOn"]


def test_invocation_body_follows_the_configured_prefixes():
    body = invocation_body("scoring/in/", "scoring/out/")
    assert body == _sdk_invoke_body("scoring/in/", "scoring/out/")
    assert body != _sdk_invoke_body("batch/input/", "batch/output/")


def test_batch_off_declares_no_batch_resources(plan_for):
    plan = plan_for("contoso-prod", batch={"enabled": False})
    assert plan.by_type(f"{ML}:BatchEndpoint") == []
    assert [r.name for r in plan.records if "-batch" in r.name] == []
    assert {f.control.id: f.status for f in plan.findings}["AZ-BATCH-01"] == "n/a"


_GOOD = dict(
    prefix="contoso-prod",
    location="westeurope",
    resource_group_name="rg",
    workspace_name="ws",
    workspace_id="/ws",
    compute_id="/c",
    model_name="contoso-classifier",
    model_version="2",
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cron": "daily"}, "cron='daily' is not a 5-field cron expression"),
        ({"model_version": "latest"}, "model_version='latest' is not a registered version"),
        ({"instance_count": 50}, "instance_count=50 is not between 1 and 20"),
        ({"output_prefix": "out"}, "output_prefix='out' is not a folder ending in '/'"),
        ({"output_prefix": "batch/"}, "output_prefix='batch/' is not apart from input_prefix"),
    ],
)
def test_component_args_are_checked_with_the_fix(change, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_batch_scoring_args(BatchScoringArgs(**{**_GOOD, **change}))
    validate_batch_scoring_args(BatchScoringArgs(**_GOOD))
