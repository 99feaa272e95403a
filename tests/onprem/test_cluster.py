"""Several clients on one cluster: the cluster stack (globex-cluster) installs every shared
operator and cluster-scoped object once; the client stacks (globex-dev, and the same config as
client initech with its own domain) read it through a StackReference and declare only objects
in their own namespaces, and nothing of one client reaches another's namespaces."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from blueprints import cluster as cluster_blueprint
from components.onprem.cluster_ref import NEEDED, cluster_info
from core.config import ConfigError, validate_settings
from core.contract import CLUSTER_OUTPUT_NAMES, OUTPUT_NAMES
from core.controls import Record
from core.errors import ArgsError
from mlops.mocks.kubernetes import cluster_outputs
from mlops.plan import Plan

PlanFor = Callable[..., Plan]
HELM = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
# Plans of the union: the cluster stack and two clients on it (initech with a model pinned,
# so the endpoint, its policies and its ingress host are in the union too).
INITECH = {
    "client": "initech",
    "model": "1",
    "kubernetes": {
        "context": "globex",
        "clusterStack": "globex-cluster",
        "ingressDomain": "ml.dev.initech.internal",
    },
}
SHARED_NAMESPACES = {"kube-system", "ingress-nginx", "monitoring"}
"""Namespaces of the cluster's shared services a client's policies may name."""


def _clients(plan_for: PlanFor) -> list[Plan]:
    return [plan_for("globex-dev"), plan_for("globex-dev", **INITECH)]


def _objects(plan: Plan) -> list[Record]:
    return [r for r in plan.records if r.custom and r.type.startswith("kubernetes:")]


def _meta(r: Record) -> dict[str, Any]:
    meta = r.inputs.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _identity(r: Record) -> tuple[str, str, str]:
    """What the API server (or Helm) knows an object by: kind, namespace and name."""
    if r.type == HELM:
        return (r.type, r.inputs.get("namespace", ""), r.inputs["name"])
    return (r.type, _meta(r).get("namespace", ""), _meta(r).get("name", r.name))


def _cluster_scoped(r: Record) -> bool:
    return r.type == HELM or (r.type != NAMESPACE and not _meta(r).get("namespace"))


def _own_namespaces(plan: Plan) -> set[str]:
    return {_meta(r)["name"] for r in plan.by_type(NAMESPACE)}


def test_every_object_is_declared_once_and_cluster_wide_ones_by_the_cluster_stack(
    plan_for: PlanFor,
) -> None:
    cluster = plan_for("globex-cluster")
    plans = [cluster, *_clients(plan_for)]
    seen = Counter(
        _identity(r) for p in plans for r in _objects(p) if r.type != "pulumi:providers:kubernetes"
    )
    assert [k for k, n in seen.items() if n > 1] == []
    for client in plans[1:]:
        scoped = [r.name for r in _objects(client) if _cluster_scoped(r)]
        assert scoped == [], f"{client.stack} declares cluster-scoped objects: {scoped}"
    # the cluster stack holds every chart (CRDs included) and the shared objects
    releases = {r.inputs["name"] for r in cluster.by_type(HELM)}
    assert releases == {
        "cert-manager",
        "prometheus-operator-crds",
        "argo-workflows",
        "argo-events",
        "kserve-crd",
        "kserve",
    }
    assert all(r.inputs["version"] for r in cluster.by_type(HELM))
    kinds = Counter(r.type.rsplit(":", 1)[1] for r in _objects(cluster) if _cluster_scoped(r))
    assert kinds["ClusterIssuer"] == 1
    # one storage container, PriorityClass and CI ClusterRole per listed client stack
    clients = cluster.settings.cluster.clients
    assert {k: kinds[k] for k in ("ClusterStorageContainer", "PriorityClass", "ClusterRole")} == {
        "ClusterStorageContainer": len(clients),
        "PriorityClass": len(clients),
        "ClusterRole": len(clients),
    }


def test_kserve_runs_in_raw_deployment_mode_without_knative(plan_for: PlanFor) -> None:
    cluster = plan_for("globex-cluster")
    kserve = cluster.one(HELM, "operators-kserve").inputs
    assert kserve["values"]["kserve"]["controller"]["deploymentMode"] == "RawDeployment"
    client = plan_for("globex-dev", **INITECH)
    isvc = client.by_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")[0].inputs
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    namespaces = {
        _meta(r).get("namespace")
        for p in (cluster, client)
        for r in _objects(p)
        if _meta(r).get("namespace")
    }
    assert not {"knative-serving", "kourier-system"} & namespaces


def test_a_client_without_a_model_declares_no_release_no_crd_and_nothing_cluster_wide(
    plan_for: PlanFor,
) -> None:
    plan = plan_for("globex-dev")
    assert plan.settings.model is None
    assert plan.by_type(HELM) == []
    assert [r for r in plan.records if "CustomResourceDefinition" in r.type] == []
    assert [r.name for r in _objects(plan) if _cluster_scoped(r)] == []


def test_unpinning_a_model_touches_only_the_clients_namespaces(plan_for: PlanFor) -> None:
    pinned, unpinned = plan_for("globex-dev", model="1"), plan_for("globex-dev")
    before = {_identity(r) for r in _objects(pinned)}
    after = {_identity(r) for r in _objects(unpinned)}
    removed = before - after
    assert removed, "pinning a model adds the endpoint"
    own = _own_namespaces(pinned)
    assert {ns for _, ns, _ in removed} <= own, sorted(removed)


@pytest.mark.parametrize("which", [0, 1])
def test_no_policy_binding_or_ingress_of_a_client_reaches_another_client(
    plan_for: PlanFor, which: int
) -> None:
    clients = _clients(plan_for)
    me, other = clients[which], clients[1 - which]
    own, theirs = _own_namespaces(me), _own_namespaces(other)
    assert own and theirs and not own & theirs
    for r in _objects(me):
        ns = _meta(r).get("namespace")
        if ns:
            assert ns in own, f"{me.stack}: {r.name} lives in {ns}"
    for r in me.by_type(NETPOL):
        spec = r.inputs["spec"]
        for rule in [*spec.get("ingress", []), *spec.get("egress", [])]:
            for peer in [*rule.get("from", []), *rule.get("to", [])]:
                selector = (peer.get("namespaceSelector") or {}).get("matchLabels", {})
                named = selector.get("kubernetes.io/metadata.name")
                if peer.get("namespaceSelector") is not None:
                    assert named in own | SHARED_NAMESPACES, f"{r.name} admits {selector}"
    for r in me.by_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"):
        for subject in r.inputs["subjects"]:
            assert subject.get("namespace", _meta(r)["namespace"]) in own, r.name
    ingress = "kubernetes:networking.k8s.io/v1:Ingress"
    hosts = [
        {rule["host"] for r in p.by_type(ingress) for rule in r.inputs["spec"]["rules"]}
        for p in (me, other)
    ]
    assert hosts[0] and not hosts[0] & hosts[1]


def test_the_plan_answers_the_stack_reference_with_the_cluster_stacks_outputs(
    plan_for: PlanFor,
) -> None:
    cluster = plan_for("globex-cluster")
    assert set(cluster.outputs) == set(CLUSTER_OUTPUT_NAMES)
    assert cluster_outputs("globex-cluster") == cluster.outputs
    assert cluster_outputs("acme/mlops/globex-cluster") == cluster.outputs
    assert set(NEEDED) <= set(CLUSTER_OUTPUT_NAMES)
    # what the client used comes from there: issuer, ingress class, priority class, storage
    client = plan_for("globex-dev", **INITECH)
    tenant = cluster.outputs["clients"]["initech-dev"]
    certs = client.by_type("kubernetes:networking.k8s.io/v1:Ingress")
    assert {r.inputs["spec"]["ingressClassName"] for r in certs} == {"nginx"}
    template = client.one("kubernetes:argoproj.io/v1alpha1:WorkflowTemplate").inputs
    assert template["spec"]["podPriorityClassName"] == tenant["priorityClass"]
    isvc = client.by_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")[0].inputs
    assert isvc["spec"]["predictor"]["model"]["storageUri"].startswith(tenant["storageUriPrefix"])
    # client stacks keep the contract; the cluster stack has its own outputs
    assert set(client.outputs) == set(OUTPUT_NAMES)
    assert cluster.missing_capabilities == []


def _outputs(**changes: Any) -> dict[str, Any]:
    settings = validate_settings(
        {
            "blueprint": "cluster",
            "client": "globex",
            "environment": "dev",
            "cluster": {
                "clients": {"globex-dev": "ml.dev.globex.internal"},
                "controlPlaneCidr": "10.0.0.0/24",
            },
        },
        stack="globex-cluster",
    )
    return {**cluster_blueprint.declared_outputs(settings), **changes}


NS = ["mlops-globex-dev-platform", "mlops-globex-dev-pipelines", "mlops-globex-dev-serving"]


@pytest.mark.parametrize(
    ("outputs", "prefix", "namespaces", "message"),
    [
        (_outputs(clusterIssuer=None), "globex-dev", NS, "has no output(s) clusterIssuer"),
        ({}, "globex-dev", NS, "has no output(s) blueprint, kserveDeploymentMode"),
        ({"blueprint": "onprem"}, "globex-dev", NS, "is a stack of blueprint 'onprem'"),
        (_outputs(), "initech-dev", NS, "does not list 'initech-dev' in cluster.clients"),
        (_outputs(), "globex-dev", ["other-ns"], "use the same kubernetes.namespacePrefix"),
    ],
)
def test_cluster_reference_errors_name_the_output_and_the_fix(
    outputs: dict, prefix: str, namespaces: list[str], message: str
) -> None:
    with pytest.raises(ArgsError) as err:
        cluster_info("globex-cluster", outputs, prefix, namespaces, "ml.dev.globex.internal")
    assert message in str(err.value), str(err.value)
    assert "nothing was created" in str(err.value)


def test_a_client_on_another_clients_domain_is_stopped() -> None:
    """Two clients on one ingress domain would share hosts: one's host could route into the
    other's namespaces. The cluster stack registers one domain per client and holds it."""
    with pytest.raises(ArgsError, match="is not the domain cluster stack 'globex-cluster'"):
        cluster_info("globex-cluster", _outputs(), "globex-dev", NS, "ml.globex.internal")


def test_cluster_reference_reads_a_good_cluster_stack() -> None:
    info = cluster_info("globex-cluster", _outputs(), "globex-dev", NS, "ml.dev.globex.internal")
    assert (info.storage_uri_prefix, info.priority_class) == (
        "globex-dev-models:/",
        "globex-dev-training",
    )


def test_plan_of_a_client_on_a_missing_or_wrong_cluster_stack_fails_clearly(
    plan_for: PlanFor,
) -> None:
    kube = {"context": "globex-dev"}
    with pytest.raises(FileNotFoundError, match="no stack 'nope-cluster'") as missing:
        plan_for("globex-dev", kubernetes={**kube, "clusterStack": "nope-cluster"})
    assert "kubernetes.clusterStack='nope-cluster' of globex-dev" in str(missing.value)
    assert "mlops new globex --blueprint cluster" in str(missing.value)
    with pytest.raises(ArgsError, match="blueprint 'onprem', not cluster"):
        plan_for("globex-dev", kubernetes={**kube, "clusterStack": "globex-prod"})
    with pytest.raises(ArgsError, match="does not list 'umbrella-dev' in cluster.clients"):
        plan_for("globex-dev", client="umbrella")
    # the same config as client initech, still on globex's domain: its hosts would collide
    with pytest.raises(ArgsError, match="registers for 'initech-dev'"):
        plan_for("globex-dev", client="initech")


BASE_ONPREM = {"blueprint": "onprem", "client": "globex", "environment": "dev"}
BASE_CLUSTER = {"blueprint": "cluster", "client": "globex", "environment": "dev"}


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        (BASE_ONPREM, "kubernetes.clusterStack", "is required: an on-prem stack runs on"),
        (
            {**BASE_ONPREM, "kubernetes": {"clusterStack": "g-cluster", "clusterIssuer": "ca"}},
            "kubernetes.clusterIssuer",
            "the cluster stack owns the ClusterIssuer",
        ),
        (
            {
                **BASE_ONPREM,
                "kubernetes": {"clusterStack": "g-cluster"},
                "cluster": {"clients": {"a1-dev": "a.internal"}},
            },
            "cluster",
            "applies only to blueprint cluster",
        ),
        (
            {**BASE_CLUSTER, "cluster": {"controlPlaneCidr": "10.0.0.0/24"}},
            "cluster.clients",
            "is empty",
        ),
        (
            {**BASE_CLUSTER, "cluster": {"clients": {"globex-dev": "dev.globex.internal"}}},
            "cluster.controlPlaneCidr",
            "is required",
        ),
        (
            {
                **BASE_CLUSTER,
                "cluster": {
                    "clients": {"globex-qa": "qa.g.internal", "globex-dev": "dev.g.internal"},
                    "controlPlaneCidr": "10.0.0.0/24",
                },
            },
            "cluster.clients",
            "not `<client>-<environment>` stacks: ['globex-qa']",
        ),
        (
            {
                **BASE_CLUSTER,
                "cluster": {
                    "clients": {"a1-dev": "ml.a1.internal", "b1-dev": "ml.a1.internal"},
                    "controlPlaneCidr": "10.0.0.0/24",
                },
            },
            "cluster.clients",
            "gives two client stacks one ingress domain (a1-dev and b1-dev share ml.a1.internal)",
        ),
        (
            {
                **BASE_CLUSTER,
                "kubernetes": {"clusterStack": "x-cluster"},
                "cluster": {"clients": {"a1-dev": "a.internal"}, "controlPlaneCidr": "10.0.0.0/24"},
            },
            "kubernetes.clusterStack",
            "applies only to blueprint onprem",
        ),
    ],
)
def test_config_errors_name_the_key_and_the_fix(config: dict, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_settings(config, stack="globex-x")
    found = [p for p in err.value.problems if p.key == key]
    assert found, [str(p) for p in err.value.problems]
    assert message in found[0].message, found[0].message
    assert "Pulumi.globex-x.yaml" in found[0].fix or "cluster stack" in found[0].fix


def test_storage_container_controls_bite(plan_for: PlanFor) -> None:
    import copy

    from tests.conftest import control_status

    records = copy.deepcopy(plan_for("globex-cluster").records)
    csc = "kubernetes:serving.kserve.io/v1alpha1:ClusterStorageContainer"
    for cid in ("K8S-CSC-01", "K8S-CSC-02", "K8S-CSC-03", "K8S-CSC-04"):
        assert control_status(records, "kubernetes", cid) == "pass", cid
    spec = next(r for r in records if r.type == csc).inputs["spec"]
    spec["supportedUriFormats"] = [{"prefix": "models:/"}]
    spec["container"]["image"] = "ghcr.io/globex/mlops-kit:0.1.0"
    del spec["container"]["resources"]["limits"]
    spec["container"]["securityContext"]["runAsNonRoot"] = False
    for cid in ("K8S-CSC-01", "K8S-CSC-02", "K8S-CSC-03", "K8S-CSC-04"):
        assert control_status(records, "kubernetes", cid) == "fail", cid
    assert control_status(records, "kubernetes", "K8S-CSC-01", environment="dev") == "waived"


def _paths(values: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += _paths(value, f"{path}.")
        else:
            out.append(path)
    return out


def test_chart_values_are_keys_the_pinned_charts_define_or_read(plan_for: PlanFor) -> None:
    """Helm ignores a value the chart neither defines nor reads: a misspelt key (say
    `deploymentMod`) would leave KServe in Serverless mode without a word. Each value set on a
    chart with vendored keys (tests/onprem/schemas/helm-values.json) must be one of them."""
    import json
    from pathlib import Path

    known = json.loads((Path(__file__).parent / "schemas" / "helm-values.json").read_text())
    checked = 0
    for release in plan_for("globex-cluster").by_type(HELM):
        chart = release.inputs["chart"].rsplit("/", 1)[-1]
        if chart not in known["charts"]:
            continue  # cert-manager (also against its values.schema.json), prometheus-
            # operator-crds: tests/schemas/test_platform_artifacts.py checks every release
        keys = known["charts"][chart]
        assert release.inputs["version"] == keys["version"], chart
        exact = set(keys["values"]) | set(keys["refs"])
        free = set(keys["leaves"]) | set(keys["refs"])
        for path in _paths(release.inputs.get("values") or {}):
            parts = path.split(".")
            ancestors = {".".join(parts[:i]) for i in range(1, len(parts))}
            assert path in exact or ancestors & free, f"{chart}: {path} is not a chart value"
            checked += 1
    assert checked > 20
    bad = {"kserve": {"controller": {"deploymentMod": "RawDeployment"}}}
    assert "kserve.controller.deploymentMod" not in set(known["charts"]["kserve"]["values"])
    assert _paths(bad) == ["kserve.controller.deploymentMod"]
