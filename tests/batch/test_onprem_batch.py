"""On-prem batch scoring: the Argo CronWorkflow in the offline plan, validated against the Argo
schemas the suite keeps (the CronWorkflow CRD subset and Argo's WorkflowSpec definitions), its
restricted pod, the model version and the artifact-store prefixes it reads and writes."""

from __future__ import annotations

import copy
import json
from importlib import resources as ilr
from pathlib import Path

import jsonschema
import pytest

from components.onprem.batch import SCORE_SCRIPT, BatchScoringArgs, validate
from core import controls as controls_mod
from core.errors import ArgsError

TESTS = Path(__file__).parent.parent
CRON = "kubernetes:argoproj.io/v1alpha1:CronWorkflow"
A = "io.argoproj.workflow.v1alpha1."
DIGEST = "@sha256:" + "4a8e0c4b6c1d2f0e9b7a3c5d8e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f"


def _argo_workflow_spec_schema() -> dict:
    """Argo's WorkflowSpec (the suite's subset of api/jsonschema/schema.json, which calls it
    WorkflowTemplateSpec), plus the few definitions a scoring workflow uses that the subset
    leaves out, transcribed from the same published schema: `podMetadata` and template
    `metadata` (Metadata), the output `archive` (ArchiveStrategy) and the artifact key
    secrets (Kubernetes SecretKeySelector, from the kubernetes-validate definitions)."""
    schema = json.loads((TESTS / "pipelines/data/argo_workflowtemplate.schema.json").read_text())
    defs = schema["definitions"]
    string_map = {"type": "object", "additionalProperties": {"type": "string"}}
    defs[A + "Metadata"] = {
        "type": "object",
        "properties": {"annotations": string_map, "labels": string_map},
        "additionalProperties": False,
    }
    defs[A + "ArchiveStrategy"] = {
        "type": "object",
        "properties": {
            "none": {"type": "object", "additionalProperties": False},
            "tar": {"type": "object", "properties": {"compressionLevel": {"type": "integer"}}},
            "zip": {"type": "object", "additionalProperties": False},
        },
        "additionalProperties": False,
    }
    folder = ilr.files("kubernetes_validate") / "kubernetes-json-schema"
    newest = sorted(p.name for p in folder.iterdir() if p.name.endswith("-local-strict"))[-1]
    k8s = json.loads((folder / newest / "_definitions.json").read_text())["$defs"]
    defs["io.k8s.api.core.v1.SecretKeySelector"] = k8s["io.k8s.api.core.v1.SecretKeySelector"]
    spec = copy.deepcopy(defs[A + "WorkflowTemplateSpec"])
    spec["properties"]["podMetadata"] = {"$ref": f"#/definitions/{A}Metadata"}
    defs[A + "WorkflowSpec"] = spec
    return {**schema, "$ref": f"#/definitions/{A}WorkflowSpec"}


def _errors(schema: dict, body: dict) -> list[str]:
    return [
        f"{e.message} at {list(e.path)}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(body)
    ]


def _cron(plan):
    return plan.one(CRON, "batch-schedule")


def _manifest(record) -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", **record.inputs}


def test_cron_workflow_matches_the_argo_schemas(plan_for):
    record = _cron(plan_for("globex-prod"))
    crd = json.loads((TESTS / "onprem/schemas/cronworkflow.json").read_text())
    assert _errors(crd["openAPIV3Schema"], _manifest(record)) == []
    workflow_schema = _argo_workflow_spec_schema()
    spec = record.inputs["spec"]["workflowSpec"]
    assert _errors(workflow_schema, spec) == []
    broken = copy.deepcopy(spec)
    broken["templates"][0]["container"]["resources"]["limit"] = {"cpu": "1"}  # misspelt
    assert _errors(workflow_schema, broken) != []


def test_prod_plan_scores_the_pinned_version_with_its_controls_passing(plan_for):
    plan = plan_for("globex-prod")
    record = _cron(plan)
    meta = record.inputs["metadata"]
    assert meta["name"] == "globex-prod-batch-scoring"
    assert meta["labels"]["mlops/component"] == "batch-scoring"
    spec = record.inputs["spec"]
    assert spec["schedules"] == ["0 2 * * *"] and spec["concurrencyPolicy"] == "Forbid"
    workflow = spec["workflowSpec"]
    (template,) = workflow["templates"]
    container = template["container"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODEL_URI"] == "models:/globex-classifier/4"
    assert (
        env["MLFLOW_TRACKING_URI"].startswith("http://") and ":5000" in env["MLFLOW_TRACKING_URI"]
    )
    assert container["image"] == plan.settings.image and container["image"].endswith(DIGEST)
    assert container["command"] == ["sh", "-c", SCORE_SCRIPT]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert workflow["serviceAccountName"].endswith("pipeline")
    assert workflow["securityContext"]["runAsNonRoot"] is True
    findings = {f.control.id: f for f in plan.findings}
    for n in range(1, 6):
        cid = f"K8S-BATCH-0{n}"
        assert findings[cid].status == "pass" and findings[cid].resources == ["batch-schedule"], cid
    assert (
        findings["K8S-WF-03"].status == "pass"
        and "batch-schedule" in findings["K8S-WF-03"].resources
    )
    assert plan.failed_controls == []


def test_reads_and_writes_the_artifact_store_prefixes(plan_for):
    plan = plan_for("globex-prod")
    (template,) = _cron(plan).inputs["spec"]["workflowSpec"]["templates"]
    (source,) = template["inputs"]["artifacts"]
    (sink,) = template["outputs"]["artifacts"]
    store_uri = plan.outputs["artifactStoreUri"]
    bucket = store_uri.removeprefix("s3://").split("/")[0]
    for artifact in (source, sink):
        s3 = artifact["s3"]
        assert s3["bucket"] == bucket
        assert s3["accessKeySecret"]["key"] == "AWS_ACCESS_KEY_ID"
        assert s3["secretKeySecret"]["name"] == s3["accessKeySecret"]["name"]
    assert source["s3"]["key"] == "batch/input/" and source["path"] == "/work/input"
    assert sink["s3"]["key"] == "batch/output/{{workflow.name}}/"  # one folder per run
    assert sink["path"] == "/work/output" and sink["archive"] == {"none": {}}


def test_batch_off_declares_no_cron_workflow(plan_for):
    plan = plan_for("globex-dev")
    assert plan.settings.batch.enabled is False
    assert [r.name for r in plan.by_type(CRON) if "batch" in r.name] == []
    assert {f.control.id: f.status for f in plan.findings}["K8S-BATCH-01"] == "n/a"


def test_digest_control_bites_outside_dev(plan_for):
    plan = plan_for("globex-prod")
    records = copy.deepcopy(plan.records)
    for r in records:
        if r.type == CRON and r.name == "batch-schedule":
            r.inputs["spec"]["workflowSpec"]["templates"][0]["container"]["image"] = "kit:1.0"
            r.inputs["spec"]["workflowSpec"]["securityContext"]["runAsNonRoot"] = False
    statuses = {
        f.control.id: f.status
        for f in controls_mod.evaluate(records, platform="kubernetes", environment="prod")
    }
    assert statuses["K8S-BATCH-05"] == "fail" and statuses["K8S-BATCH-01"] == "fail"
    dev = {
        f.control.id: f.status
        for f in controls_mod.evaluate(records, platform="kubernetes", environment="dev")
    }
    assert dev["K8S-BATCH-05"] == "waived" and dev["K8S-BATCH-01"] == "fail"


_GOOD = dict(
    prefix="globex-prod",
    namespace="mlops-globex-prod-pipelines",
    image="ghcr.io/globex/mlops-kit:0.1.0" + DIGEST,
    service_account="globex-prod-pipeline",
    tracking_uri="http://mlflow:5000",
    model_name="globex-classifier",
    model_version="4",
    s3_endpoint="http://minio:9000",
    bucket="globex-prod-artifacts",
    s3_secret="s3",
    require_digest=True,
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image": "ghcr.io/globex/mlops-kit:0.1.0"}, "is not pinned by digest"),
        ({"model_version": "champion"}, "model_version='champion' is not a registered version"),
        ({"cron": "@daily"}, "cron='@daily' is not a 5-field cron expression"),
        ({"input_prefix": "/in/"}, "input_prefix='/in/' is not a key prefix ending in '/'"),
        ({"output_prefix": "batch/input/"}, "is not apart from input_prefix"),
    ],
)
def test_component_args_are_checked_with_the_fix(change, message):
    with pytest.raises(ArgsError, match=message):
        validate(BatchScoringArgs(**{**_GOOD, **change}))
    validate(BatchScoringArgs(**_GOOD))
    validate(BatchScoringArgs(**{**_GOOD, "image": "kit:1", "require_digest": False}))
