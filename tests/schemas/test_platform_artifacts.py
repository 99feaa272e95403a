"""Every Kubernetes object and Helm release in every stack's offline plan, against the
upstream schemas at the versions the kit pins (tests/schemas/upstream, SOURCES.json):

- Argo Workflows objects against Argo's JSON schema of v3.6.19 (chart argo-workflows 0.45.4
  ships v3.6), Argo Events objects against v1.9.11's (chart argo-events 2.4.8 ships v1.9);
- KServe InferenceService and ClusterStorageContainer against the v0.15.0 CRDs (the pinned
  kserve / kserve-crd charts), the ClusterIssuer against cert-manager v1.17.2's CRD (the
  pinned chart), Certificate, ServiceMonitor and PrometheusRule against those projects' CRDs
  at main;
  all strict: a field the schema does not list fails, as with the API server's strict field
  validation (CRDs alone would prune it silently);
- every other object against the Kubernetes OpenAPI schemas (kubernetes-validate, strict);
- every Helm release's `values` against what the pinned chart defines or reads (a value it
  does neither is silently ignored by Helm) and, where the chart ships one (cert-manager),
  its `values.schema.json`; its chart and version pinned.

The checks go over whatever the plans hold (all stacks of `list_stacks()`), by type, so they
keep working when resources move between stacks or blueprints."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from components.onprem.operators import CHARTS as CLUSTER_CHARTS
from core.config import list_stacks
from core.controls import Record
from tests.conftest import get_plan
from tests.schemas import (
    argo_errors,
    crd_schema,
    errors,
    helm_unknown_values,
    manifest,
    upstream,
)

K8S_VERSION = "1.30.0"
ARGO = {
    "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate": "argo-workflows-v3.6",
    "kubernetes:argoproj.io/v1alpha1:CronWorkflow": "argo-workflows-v3.6",
    "kubernetes:argoproj.io/v1alpha1:Workflow": "argo-workflows-v3.6",
    "kubernetes:argoproj.io/v1alpha1:EventBus": "argo-events-v1.9",
    "kubernetes:argoproj.io/v1alpha1:EventSource": "argo-events-v1.9",
    "kubernetes:argoproj.io/v1alpha1:Sensor": "argo-events-v1.9",
}
CRDS = {
    "kubernetes:serving.kserve.io/v1beta1:InferenceService": "kserve-v0.15.0-inferenceservices",
    "kubernetes:serving.kserve.io/v1alpha1:ClusterStorageContainer": (
        "kserve-v0.15.0-clusterstoragecontainers"
    ),
    "kubernetes:cert-manager.io/v1:Certificate": "cert-manager-certificates",
    "kubernetes:cert-manager.io/v1:ClusterIssuer": "cert-manager-v1.17.2-clusterissuers",
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor": "prometheus-operator-servicemonitors",
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule": "prometheus-operator-prometheusrules",
}
HELM = "kubernetes:helm.sh/v3:Release"
CHARTS = {  # chart name -> the upstream values file of the version the kit pins
    "argo-workflows": ("0.45.4", "argo-workflows-0.45.4"),
    "argo-events": ("2.4.8", "argo-events-2.4.8"),
    "kserve": ("v0.15.0", "kserve-v0.15.0"),
    "kserve-crd": ("v0.15.0", "kserve-crd-v0.15.0"),
    "cert-manager": ("v1.17.2", "cert-manager-v1.17.2"),
    "prometheus-operator-crds": ("20.0.0", "prometheus-operator-crds-20.0.0"),
}
STACKS = list_stacks()


def kubernetes_records(stack: str) -> list[Record]:
    return [
        r
        for r in get_plan(stack).records
        if r.custom and r.type.startswith("kubernetes:") and r.type != HELM
    ]


def object_errors(record: Record) -> list[str]:
    body = manifest(record)
    if record.type in ARGO:
        return argo_errors(ARGO[record.type], body["kind"], body)
    if record.type in CRDS:
        return errors(crd_schema(CRDS[record.type], body["apiVersion"].split("/")[1]), body)
    try:
        kubernetes_validate.validate(body, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {record.type}: add its upstream schema to tests/schemas"]
    return []


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_object_matches_its_upstream_schema_strictly(stack):
    problems = {
        f"{r.type} {r.name}": found
        for r in kubernetes_records(stack)
        if (found := object_errors(r))
    }
    assert problems == {}


def test_the_plans_hold_what_the_schemas_check():
    """The parametrised checks above saw the objects they are for (a plan that stopped
    declaring them would pass vacuously)."""
    seen = {r.type for s in STACKS for r in kubernetes_records(s)}
    assert set(ARGO) - {"kubernetes:argoproj.io/v1alpha1:Workflow"} <= seen
    assert set(CRDS) <= seen
    assert "kubernetes:apps/v1:Deployment" in seen


@pytest.mark.parametrize("stack", STACKS)
def test_every_helm_release_is_pinned_and_sets_only_values_its_chart_knows(stack):
    for release in get_plan(stack).by_type(HELM):
        chart = release.inputs["chart"].rsplit("/", 1)[-1]
        assert chart in CHARTS, f"{release.name}: chart {chart} has no upstream values here"
        version, values_file = CHARTS[chart]
        assert release.inputs["version"] == version, release.name
        assert helm_unknown_values(values_file, release.inputs.get("values") or {}) == [], (
            release.name
        )
        schema = upstream(f"helm-{values_file}").get("schema")
        if schema:  # the chart ships values.schema.json (cert-manager): Helm enforces it too
            assert errors(schema, release.inputs.get("values") or {}) == [], release.name


def test_the_charts_app_versions_are_the_ones_the_kit_names():
    """The controller version the kit writes down for each chart (docs, schema choice) is the
    chart's own appVersion at the pinned version."""
    for chart in CLUSTER_CHARTS.values():
        version, values_file = CHARTS[chart.chart]
        assert chart.version == version
        assert upstream(f"helm-{values_file}")["appVersion"] in (chart.app_version, None), chart


def test_the_upstream_checks_catch_mistakes():
    prod = get_plan("globex-prod")
    isvc = manifest(prod.by_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")[0])
    isvc["spec"]["predictor"]["minReplica"] = 2  # minReplicas
    assert errors(
        crd_schema(CRDS["kubernetes:serving.kserve.io/v1beta1:InferenceService"], "v1beta1"), isvc
    )
    template = manifest(prod.by_type("kubernetes:argoproj.io/v1alpha1:WorkflowTemplate")[0])
    template["spec"]["templates"][0]["retryStategy"] = {}
    assert argo_errors("argo-workflows-v3.6", "WorkflowTemplate", template)
    template = manifest(prod.by_type("kubernetes:argoproj.io/v1alpha1:WorkflowTemplate")[0])
    template["spec"]["templateDefaults"]["container"]["imagePullPolicy"] = 3
    assert argo_errors("argo-workflows-v3.6", "WorkflowTemplate", template)
    sensor = manifest(prod.by_type("kubernetes:argoproj.io/v1alpha1:Sensor")[0])
    sensor["spec"]["dependency"] = sensor["spec"].pop("dependencies")
    assert argo_errors("argo-events-v1.9", "Sensor", sensor)
    cluster = get_plan("globex-cluster")
    workflows = next(r for r in cluster.by_type(HELM) if r.inputs["chart"] == "argo-workflows")
    values = copy.deepcopy(workflows.inputs["values"])
    values["controller"]["workflowNamespace"] = ["x"]  # workflowNamespaces
    assert helm_unknown_values("argo-workflows-0.45.4", values) == ["controller.workflowNamespace"]
    assert upstream("helm-argo-workflows-0.45.4")["appVersion"].startswith("v3.6")
    manager = next(r for r in cluster.by_type(HELM) if r.inputs["chart"] == "cert-manager")
    values = copy.deepcopy(manager.inputs["values"])
    values["crds"]["keep"] = "yes"  # a boolean in cert-manager's values.schema.json
    assert errors(upstream("helm-cert-manager-v1.17.2")["schema"], values)
    issuer = manifest(cluster.by_type("kubernetes:cert-manager.io/v1:ClusterIssuer")[0])
    issuer["spec"]["ca"]["secret"] = issuer["spec"]["ca"].pop("secretName")
    assert errors(crd_schema(CRDS["kubernetes:cert-manager.io/v1:ClusterIssuer"], "v1"), issuer)
