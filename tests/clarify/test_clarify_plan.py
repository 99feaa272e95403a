"""`explain.clarify` in a stack reaches the SageMaker pipeline the program declares, and the
AWS-CLARIFY controls pass on it (offline plan, from the shared `plan_for` fixture)."""

from __future__ import annotations

import json

PIPELINE = "aws:sagemaker/pipeline:Pipeline"


def test_acme_prod_with_clarify_declares_the_step_and_passes_its_controls(plan_for) -> None:
    plan = plan_for("acme-prod", explain={"clarify": True})
    assert plan.settings.explain.clarify is True
    record = plan.one(PIPELINE, "acme-prod-pipeline-pipeline")
    definition = json.loads(record.inputs["pipelineDefinition"])
    names = [s["Name"] for s in definition["Steps"]]
    assert names.index("Evaluate") < names.index("ClarifyExplainability")
    clarify = next(s for s in definition["Steps"] if s["Name"] == "ClarifyExplainability")
    args = clarify["Arguments"]
    assert "/sagemaker-clarify-processing:" in args["AppSpecification"]["ImageUri"]
    assert f".dkr.ecr.{plan.settings.region}.amazonaws.com/" in args["AppSpecification"]["ImageUri"]
    assert args["NetworkConfig"]["EnableNetworkIsolation"] is False
    assert len(args["NetworkConfig"]["VpcConfig"]["Subnets"]) == 2  # prod: private, two zones
    assert args["ProcessingOutputConfig"]["KmsKeyId"].startswith("arn:aws")
    register = next(s for s in definition["Steps"] if s["Type"] == "Condition")["Arguments"][
        "IfSteps"
    ][-1]["Arguments"]
    assert register["ModelMetrics"]["Explainability"]["Report"]["ContentType"] == (
        "application/json"
    )
    findings = {f.control.id: f for f in plan.findings}
    for control_id in ("AWS-CLARIFY-01", "AWS-CLARIFY-02"):
        assert findings[control_id].status == "pass", findings[control_id].failures
        assert record.name in findings[control_id].resources
    assert plan.failed_controls == []


def test_pipeline_role_may_run_clarify_shadow_endpoints_only_when_on(plan_for) -> None:
    import json

    from pipelines.steps.clarify_config import clarify_endpoint_prefix

    def pipeline_policy(plan) -> str:
        record = plan.one("aws:iam/rolePolicy:RolePolicy", "acme-prod-identities-pipeline-policy")
        return json.dumps(json.loads(record.inputs["policy"]))

    shadow = clarify_endpoint_prefix("acme-prod-training")
    on = pipeline_policy(plan_for("acme-prod", explain={"clarify": True}))
    off = pipeline_policy(plan_for("acme-prod"))
    assert f"endpoint/{shadow}*" in on and "sagemaker:CreateEndpoint" in on
    assert "sagemaker:CreateEndpoint" not in off and shadow not in off
