"""Every object the program registers, validated offline: core Kubernetes objects against the
official schemas shipped by `kubernetes-validate` (strict: unknown fields fail), custom
resources against their published CRD schemas kept in `schemas/` (see each file's `source`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from core.controls import Record
from mlops.plan import Plan
from tests.schemas import manifest

PlanFor = Callable[..., Plan]
SCHEMAS = Path(__file__).parent / "schemas"
K8S_VERSION = "1.30.0"
CUSTOM = {
    "kubernetes:serving.kserve.io/v1beta1:InferenceService": "inferenceservice.json",
    "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate": "workflowtemplate.json",
    "kubernetes:argoproj.io/v1alpha1:CronWorkflow": "cronworkflow.json",
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor": "servicemonitor.json",
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule": "prometheusrule.json",
    "kubernetes:serving.kserve.io/v1alpha1:ClusterStorageContainer": "clusterstoragecontainer.json",
}
# Custom resources without a schema in the test data; their wiring is asserted in test_plan.
UNCHECKED_CUSTOM = {
    "kubernetes:argoproj.io/v1alpha1:EventBus",
    "kubernetes:argoproj.io/v1alpha1:EventSource",
    "kubernetes:argoproj.io/v1alpha1:Sensor",
    "kubernetes:cert-manager.io/v1:Certificate",
    "kubernetes:cert-manager.io/v1:ClusterIssuer",
}
NOT_OBJECTS = {"kubernetes:helm.sh/v3:Release", "pulumi:providers:kubernetes"}
STACKS = [
    ("globex-prod", {}),
    ("globex-dev", {}),
    ("globex-dev", {"model": "1"}),
    ("globex-cluster", {}),
]


def core_records(plan: Plan) -> list[Record]:
    return [
        r
        for r in plan.records
        if r.custom
        and r.type.startswith("kubernetes:")
        and r.type not in NOT_OBJECTS
        and r.type not in CUSTOM
        and r.type not in UNCHECKED_CUSTOM
    ]


@cache
def crd_schema(filename: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / filename).read_text())


@pytest.mark.parametrize(("stack", "overrides"), STACKS)
def test_core_objects_match_the_kubernetes_schemas(
    plan_for: PlanFor, stack: str, overrides: dict
) -> None:
    records = core_records(plan_for(stack, **overrides))
    assert len(records) > 30
    problems = []
    for r in records:
        try:
            kubernetes_validate.validate(manifest(r), K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{r.type} {r.name}: {exc.message} at {list(exc.path)}")
    assert problems == []


@pytest.mark.parametrize(("stack", "overrides"), STACKS)
def test_custom_resources_match_their_crd_schemas(
    plan_for: PlanFor, stack: str, overrides: dict
) -> None:
    plan = plan_for(stack, **overrides)
    checked = 0
    for type_, filename in CUSTOM.items():
        schema = crd_schema(filename)
        for r in plan.by_type(type_):
            body = manifest(r)
            assert body["apiVersion"] == f"{schema['group']}/{schema['version']}", r.name
            errors = sorted(
                jsonschema.Draft7Validator(schema["openAPIV3Schema"]).iter_errors(body),
                key=lambda e: list(e.path),
            )
            assert not errors, f"{r.name}: " + "; ".join(
                f"{e.message} at {list(e.path)}" for e in errors
            )
            checked += 1
    assert checked >= 4
    unknown = {
        r.type
        for r in plan.records
        if r.custom
        and r.type.startswith("kubernetes:")
        and ".io/" in r.type
        and r.type not in CUSTOM
        and r.type not in UNCHECKED_CUSTOM
        and r.type not in NOT_OBJECTS
        and not r.type.startswith(
            (
                "kubernetes:networking.k8s.io/",
                "kubernetes:rbac.authorization.k8s.io/",
                "kubernetes:scheduling.k8s.io/",
            )
        )
    }
    assert unknown == set(), f"custom resources with no schema decision: {unknown}"


def test_schemas_catch_a_misspelt_field(plan_for: PlanFor) -> None:
    """The test data is strict enough to fail: a typo in a field the kit sets is caught."""
    isvc = manifest(
        plan_for("globex-prod").by_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")[0]
    )
    isvc["spec"]["predictor"]["minReplica"] = 2
    schema = crd_schema("inferenceservice.json")["openAPIV3Schema"]
    assert list(jsonschema.Draft7Validator(schema).iter_errors(isvc))
    deployment = manifest(
        plan_for("globex-prod").one("kubernetes:apps/v1:Deployment", "tracking-mlflow")
    )
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_schema_files_record_their_source() -> None:
    for filename in CUSTOM.values():
        doc = crd_schema(filename)
        assert doc["source"] and doc["openAPIV3Schema"]["properties"]["spec"], filename
