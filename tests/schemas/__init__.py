"""Upstream schemas vendored for the suite (`upstream/`, provenance in `upstream/SOURCES.json`
and `upstream/README.md`) and the validators the suite uses with them."""

from __future__ import annotations

import copy
import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

UPSTREAM = Path(__file__).parent / "upstream"


def manifest(record: Any) -> dict[str, Any]:
    """The object a recorded kubernetes resource sends the API server: apiVersion and kind
    from the type token (`kubernetes:apps/v1:Deployment`; core/v1 -> v1), the rest from the
    recorded inputs, secret values replaced by a placeholder."""
    _, version, kind = record.type.split(":")
    body = copy.deepcopy(record.inputs)
    body["apiVersion"] = version.removeprefix("core/")
    body["kind"] = kind
    for field in ("stringData", "data"):
        if body.get(field) == "[secret]":
            body[field] = {"placeholder": "secret"}
    return body


@cache
def upstream(name: str) -> dict[str, Any]:
    """The vendored schema `upstream/<name>.json.gz`, parsed."""
    with gzip.open(UPSTREAM / f"{name}.json.gz", "rt", encoding="utf-8") as f:
        return json.load(f)


def errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Every violation as `path: message` (the validator class the schema declares)."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator = cls(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:300]}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    ]


def sagemaker_definition_errors(definition: dict[str, Any]) -> list[str]:
    """A SageMaker pipeline definition against AWS's published pipeline-definition schema,
    relaxed narrowly where the schema lags the service (see `sagemaker_schema`)."""
    return errors(sagemaker_schema(), definition)


@cache
def sagemaker_schema() -> dict[str, Any]:
    """AWS's schema (aws-sagemaker-mlops/sagemaker-model-building-pipeline-definition-JSON-schema,
    `upstream/SOURCES.json`) with `Version`, `Metadata` (string values <= 1024 chars, keys
    `[A-Za-z0-9-_]{1,128}`) and `Parameters` checked exactly as published.

    Relaxed, because the schema lags botocore and the service in what the SageMaker SDK itself
    writes: `PropertyFiles` on Processing steps and the `Std:JsonGet` condition operand, and
    also `Std:Join` over execution variables in S3 URIs, `StoppingCondition.MaxWaitTimeInSeconds`
    (managed spot training), `S3DataDistributionType`, and the top-level `MlflowConfig` and
    `PipelineExperimentConfig`. So each step is checked here for its `Name` and `Type` only; the
    arguments of every job step are checked against botocore's service models (the request
    shapes the service validates) in tests/pipelines/test_sagemaker.py."""
    schema = json.loads(json.dumps(upstream("sagemaker-pipeline-definition")))
    schema["properties"]["Steps"] = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["Name", "Type"],
            "properties": {"Name": {"$ref": "#/definitions/StepName"}, "Type": {"type": "string"}},
        },
    }
    for key in ("MlflowConfig", "PipelineExperimentConfig"):
        schema["properties"].setdefault(key, {"type": ["object", "null"]})
    return schema


def github_workflow_errors(workflow: dict[str, Any]) -> list[str]:
    """A GitHub Actions workflow (parsed YAML) against SchemaStore's github-workflow schema
    (draft-07), exactly as published. PyYAML reads the key `on` as the boolean True (YAML 1.1);
    GitHub reads it as the string "on", so it is put back before validating."""
    doc = {("on" if key is True else key): value for key, value in workflow.items()}
    return errors(upstream("github-workflow"), doc)


# The AWS Toolkit for Azure DevOps (marketplace extension) task that gives a job AWS
# credentials from an AWS service connection (with "Use OIDC": no stored keys). Microsoft's
# service-schema lists only the tasks built into Azure DevOps, so it rejects every marketplace
# task; this is the one alternative added, with the inputs its task.json declares
# (aws/aws-toolkit-azure-devops, src/tasks/AWSShellScript/task.json at commit
# 0a644806c203d4e32edf29770f545793427335ac) and nothing else.
AWS_SHELL_SCRIPT_TASK = {
    "properties": {
        "task": {"pattern": "^AWSShellScript@1$"},
        "displayName": {"type": "string"},
        "name": {"type": "string"},
        "condition": {"type": "string"},
        "continueOnError": {"type": "boolean"},
        "enabled": {"type": "boolean"},
        "timeoutInMinutes": {"type": "integer"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "inputs": {
            "type": "object",
            "properties": {
                "awsCredentials": {"type": "string"},
                "regionName": {"type": "string"},
                "arguments": {"type": "string"},
                "scriptType": {"enum": ["filePath", "inline"]},
                "filePath": {"type": "string"},
                "inlineScript": {"type": "string"},
                "disableAutoCwd": {"type": "boolean"},
                "workingDirectory": {"type": "string"},
                "failOnStandardError": {"type": "boolean"},
            },
            "additionalProperties": False,
            "required": ["scriptType"],
        },
    },
    "additionalProperties": False,
    "required": ["task", "inputs"],
}


@cache
def azure_pipelines_schema() -> dict[str, Any]:
    """Microsoft's Azure Pipelines `service-schema.json` (microsoft/azure-pipelines-vscode,
    `upstream/SOURCES.json`), draft-07, as published, plus the one marketplace task above.

    How it is read: the file marks enums and patterns `"ignoreCase"` (Azure DevOps matches
    task names, keywords and enum values case-insensitively); `jsonschema` ignores that
    keyword, so the suite matches case-sensitively: stricter than Azure DevOps, never looser.
    Scalars are typed as the YAML language server the schema is written for types them (so
    `fetchDepth` must be quoted: the schema declares it a string)."""
    schema = json.loads(json.dumps(upstream("azure-pipelines-service-schema")))
    task = schema["definitions"]["task"]
    task["properties"]["task"]["anyOf"].append({"enum": ["AWSShellScript@1"]})
    task["anyOf"].append(AWS_SHELL_SCRIPT_TASK)
    return schema


def azure_pipelines_errors(pipeline: dict[str, Any]) -> list[str]:
    """An Azure Pipelines YAML file (parsed) against `azure_pipelines_schema`."""
    return errors(azure_pipelines_schema(), pipeline)


# Kubernetes objects and Helm values ------------------------------------------------------------


def strict(node: Any) -> Any:
    """A copy of an OpenAPI / JSON schema in which every object that lists its `properties`
    (and neither `additionalProperties` nor `x-kubernetes-preserve-unknown-fields`) forbids
    other keys: what the API server's strict field validation (`kubectl apply
    --validate=strict`, server-side apply) does, where CRD schemas themselves only prune."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items()}
    if (
        isinstance(out.get("properties"), dict)
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def int_or_string(node: Any, names: tuple[str, ...]) -> Any:
    """Argo's schema declares Kubernetes IntOrString fields (`io.k8s...intstr.IntOrString`)
    as strings only; the API server and Argo accept an integer there too."""
    if isinstance(node, list):
        return [int_or_string(n, names) for n in node]
    if not isinstance(node, dict):
        return node
    return {
        k: {"type": ["string", "integer"]} if k in names else int_or_string(v, names)
        for k, v in node.items()
    }


@cache
def argo_schema(name: str) -> dict[str, Any]:
    """Argo Workflows (`argo-workflows-v3.6`, the line the pinned chart 0.45.4 ships) or Argo
    Events (`argo-events-v1.9`, chart 2.4.8) JSON schema, strict (see `strict`), IntOrString
    widened (see `int_or_string`)."""
    schema = int_or_string(upstream(name), ("io.k8s.apimachinery.pkg.util.intstr.IntOrString",))
    schema["definitions"] = strict(schema["definitions"])
    return schema


def argo_errors(name: str, kind: str, body: dict[str, Any]) -> list[str]:
    """`body` (a Workflow, WorkflowTemplate, CronWorkflow, EventBus, ...) against the
    definition of `kind` in Argo's schema `name`.

    One narrowing: the schema types `templateDefaults` as a full Template, so its `container`
    requires `image`; Argo merges templateDefaults into every template before it validates
    them (docs: "Default Template Configurations"), so a partial container there (the
    securityContext every step shares) is valid and that one error is dropped."""
    schema = argo_schema(name)
    group = "workflow" if name.startswith("argo-workflows") else "events"
    root = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": schema["definitions"],
        "$ref": f"#/definitions/io.argoproj.{group}.v1alpha1.{kind}",
    }
    partial = "spec/templateDefaults/container: 'image' is a required property"
    return [e for e in errors(root, body) if e != partial]


@cache
def crd_schema(name: str, version: str) -> dict[str, Any]:
    """The `openAPIV3Schema` of a CRD file (`kserve-v0.15.0-inferenceservices`, ...) at an
    API version, strict (see `strict`)."""
    crd = upstream(name)
    found = crd["versions"][version]["schema"]
    return {"$schema": "http://json-schema.org/draft-07/schema#", **strict(found)}


def helm_value_paths(values: Any, prefix: str = "") -> list[str]:
    """The dotted paths of the leaves of a Helm `values` mapping (lists are leaves)."""
    if not isinstance(values, dict) or not values:
        return [prefix] if prefix else []
    out: list[str] = []
    for key, value in values.items():
        out += helm_value_paths(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def helm_unknown_values(chart: str, values: dict[str, Any]) -> list[str]:
    """Value paths the pinned chart neither defines in its values.yaml nor reads in its
    templates (`upstream/helm-<chart>.json.gz`): Helm silently ignores such a value. A path
    under a defined leaf or empty map (`podLabels: {}`, `artifactRepository.s3: {}`) or under
    a map a template reads whole (`toYaml .Values.x`) is known."""
    doc = upstream(f"helm-{chart}")
    known = set(doc["refs"]) | set(helm_value_paths(doc["values"]))
    unknown = []
    for path in helm_value_paths(values):
        parts = path.split(".")
        if any(".".join(parts[:i]) in known for i in range(1, len(parts) + 1)):
            continue
        if any(k.startswith(path + ".") for k in known):  # a map the chart goes into
            continue
        unknown.append(path)
    return unknown
