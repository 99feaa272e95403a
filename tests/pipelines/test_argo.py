"""Argo target: the WorkflowTemplate validates against Argo's published schema (the subset in
data/argo_workflowtemplate.schema.json, see data/make_argo_schema.py), carries restricted
containers, and gates the register task on the quality gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipelines.definition import PIPELINE, PipelineSettings

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "argo_workflowtemplate.schema.json").read_text()
)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    from pipelines.compilers.argo import compile_argo

    return compile_argo(
        PipelineSettings(client="globex", environment="prod"),
        namespace="globex-prod-ml",
        image="registry.local/mlops-pipeline:1",
        mlflow_tracking_uri="http://mlflow.mlflow.svc:5000",
        service_account="globex-prod-pipeline",
        artifact_bucket="globex-art",
    )


def _errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_manifest_validates_against_the_argo_schema(manifest: dict[str, Any]) -> None:
    assert _errors(manifest) == []


def test_schema_rejects_what_argo_rejects(manifest: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(manifest))
    broken["kind"] = "Workflow"
    broken["spec"]["templates"][0]["container"]["securityContext"]["runAsNonRoot"] = "yes"
    del broken["spec"]["templates"][-1]["dag"]["tasks"][0]["name"]
    errors = "\n".join(_errors(broken))
    assert "'WorkflowTemplate' was expected" in errors
    assert "runAsNonRoot" in errors
    assert "'name' is a required property" in errors


def _containers(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in manifest["spec"]["templates"] if "container" in t}


def test_every_container_is_restricted(manifest: dict[str, Any]) -> None:
    templates = _containers(manifest)
    assert set(templates) == {s.name for s in PIPELINE}
    for name, template in templates.items():
        container = template["container"]
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] is True, name
        assert ctx["allowPrivilegeEscalation"] is False, name
        assert ctx["capabilities"]["drop"] == ["ALL"], name
        assert ctx["seccompProfile"]["type"] == "RuntimeDefault", name
        assert ctx["readOnlyRootFilesystem"] is True, name
        assert {"mountPath": "/tmp", "name": "tmp"} in container["volumeMounts"], name
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, name
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}} in manifest["spec"]["volumes"]
    assert manifest["spec"]["securityContext"]["runAsNonRoot"] is True
    assert manifest["spec"]["serviceAccountName"] == "globex-prod-pipeline"


def test_commands_and_dag_come_from_the_one_definition(manifest: dict[str, Any]) -> None:
    templates = _containers(manifest)
    dag = next(t for t in manifest["spec"]["templates"] if "dag" in t)["dag"]["tasks"]
    tasks = {t["name"]: t for t in dag}
    for step in PIPELINE:
        assert templates[step.name]["container"]["command"] == ["python", "-m", step.module]
        depends = set(filter(None, tasks[step.name].get("depends", "").split(" && ")))
        assert depends == set(step.upstream)


def test_register_runs_only_when_the_gate_passed_and_writes_to_mlflow(
    manifest: dict[str, Any],
) -> None:
    tasks = {
        t["name"]: t
        for t in next(t for t in manifest["spec"]["templates"] if "dag" in t)["dag"]["tasks"]
    }
    assert tasks["register"]["when"] == "{{tasks.quality-gate.outputs.parameters.passed}} == true"
    gate = _containers(manifest)["quality-gate"]
    assert gate["outputs"]["parameters"][0]["valueFrom"]["path"] == "/tmp/outputs/gate/passed"
    env = {e["name"]: e["value"] for e in _containers(manifest)["register"]["container"]["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc:5000"
    params = {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]}
    assert params["approval_status"] == "pending"  # prod: manual approval


def test_missing_arguments_are_named() -> None:
    from pipelines.compilers.argo import compile_argo

    with pytest.raises(ValueError, match="mlflow_tracking_uri is empty"):
        compile_argo(
            PipelineSettings(),
            namespace="ns",
            image="img",
            mlflow_tracking_uri="",
            service_account="sa",
            artifact_bucket="b",
        )
