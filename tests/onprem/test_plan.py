"""The onprem blueprint under recording mocks: controls, capabilities, outputs and wiring for
globex-dev and globex-prod (examples in the repo root)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from blueprints import onprem
from core.contract import ENDPOINT_CAPABILITIES, OUTPUT_NAMES, Capability
from core.controls import Record, all_controls
from mlops.plan import Plan

PlanFor = Callable[..., Plan]
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
WORKLOADS = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:batch/v1:Job",
)
# The kit's own image is `mlops:image`; prod config requires it pinned by digest, so these
# rows pass in prod and are the dev exceptions that dev (image by tag) waives.
KIT_IMAGE_ROWS = {
    "K8S-DEP-10": {"tracking-mlflow", "release-bridge"},
    "K8S-JOB-10": {"release-register-webhook"},
}


def _failing(plan: Plan) -> dict[str, list[str]]:
    return {f.control.id: f.failures for f in plan.findings if f.status == "fail"}


# Rows about cluster-scoped objects (chart releases, ClusterRoles): only the cluster stack
# declares those, so a client stack has nothing for them to check.
CLUSTER_ONLY_ROWS = {"K8S-HELM-01", "K8S-CI-03", *(f"K8S-CSC-0{i}" for i in range(1, 5))}


def test_prod_passes_every_control(plan_for: PlanFor) -> None:
    plan = plan_for("globex-prod")
    assert _failing(plan) == {}
    not_applied = {f.control.id for f in plan.findings if f.status == "n/a"}
    assert not_applied == CLUSTER_ONLY_ROWS, (
        f"controls with nothing to check in prod: {not_applied}"
    )
    assert not [f for f in plan.findings if f.status in ("waived", "suppressed")]


def test_cluster_stack_passes_its_controls(plan_for: PlanFor) -> None:
    plan = plan_for("globex-cluster")
    assert _failing(plan) == {}
    status = {f.control.id: f.status for f in plan.findings}
    assert {status[c] for c in CLUSTER_ONLY_ROWS} == {"pass"}
    # restricted PSS, default deny, quota and limits in every operator namespace
    assert {status[c] for c in ("K8S-NS-01", "K8S-NS-02", "K8S-NS-03", "K8S-NS-04")} == {"pass"}
    # the one waiver is the webhook ingress from the control plane, with its justification
    assert {c for c, s in status.items() if s in ("waived", "suppressed")} == {"K8S-NET-05"}


def test_kit_image_workloads_run_the_configured_digest(plan_for: PlanFor) -> None:
    plan = plan_for("globex-prod")
    image = plan.settings.image
    assert image and "@sha256:" in image
    for control, workloads in KIT_IMAGE_ROWS.items():
        finding = next(f for f in plan.findings if f.control.id == control)
        assert workloads <= set(finding.resources), (control, finding.resources)
    for r in plan.records:
        if r.name in {"tracking-mlflow", "release-bridge", "release-register-webhook"}:
            spec = r.inputs["spec"]["template"]["spec"]
            assert [c["image"] for c in spec["containers"]] == [image], r.name


def test_unpinned_kit_image_fails_exactly_its_workloads(plan_for: PlanFor) -> None:
    dev = plan_for("globex-dev", model="1")
    for control, workloads in KIT_IMAGE_ROWS.items():
        finding = next(f for f in dev.findings if f.control.id == control)
        assert finding.status == "waived", (control, finding.status)
        assert {line.split(":")[0] for line in finding.failures} >= workloads


@pytest.mark.parametrize("overrides", [{}, {"model": "1"}])
def test_dev_fails_nothing_and_waives_only_documented_exceptions(
    plan_for: PlanFor, overrides: dict
) -> None:
    plan = plan_for("globex-dev", **overrides)
    assert _failing(plan) == {}
    for f in plan.findings:
        if f.status == "waived":
            assert f.control.dev_exception, f.control.id
        assert f.status in ("pass", "waived", "n/a"), (f.control.id, f.status)
    waived = {f.control.id for f in plan.findings if f.status == "waived"}
    assert {"K8S-MLF-01", "K8S-PV-01", "K8S-DEP-10"} <= waived


def test_every_control_is_evaluated_in_one_of_the_examples(plan_for: PlanFor) -> None:
    evaluated = {
        f.control.id
        for p in (
            plan_for("globex-prod"),
            plan_for("globex-dev", model="1"),
            plan_for("globex-cluster"),
        )
        for f in p.findings
        if f.status != "n/a"
    }
    assert evaluated == {c.id for c in all_controls("kubernetes")}


@pytest.mark.parametrize(
    ("stack", "overrides"), [("globex-prod", {}), ("globex-dev", {"model": "1"})]
)
def test_every_capability_has_a_resource(plan_for: PlanFor, stack: str, overrides: dict) -> None:
    plan = plan_for(stack, **overrides)
    assert {c: n for c, n in plan.capabilities.items() if n < 1} == {}
    assert set(onprem.CAPABILITIES) == set(Capability)
    assert {e.capability for e in onprem.EVIDENCE} == set(Capability)


def test_dev_without_model_lacks_only_the_endpoint_capabilities(plan_for: PlanFor) -> None:
    plan = plan_for("globex-dev")
    zero = {Capability(c) for c, n in plan.capabilities.items() if n == 0}
    assert zero == set(ENDPOINT_CAPABILITIES)
    assert plan.missing_capabilities == []
    assert not plan.by_type(ISVC)


@pytest.mark.parametrize(
    ("stack", "overrides"),
    [("globex-prod", {}), ("globex-dev", {}), ("globex-dev", {"model": "1"})],
)
def test_outputs_are_exactly_the_contract(plan_for: PlanFor, stack: str, overrides: dict) -> None:
    outputs = plan_for(stack, **overrides).outputs
    assert tuple(outputs) == OUTPUT_NAMES
    assert all(isinstance(v, str) for v in outputs.values()), outputs


def test_outputs_without_a_model_are_empty_for_the_endpoint(plan_for: PlanFor) -> None:
    outputs = plan_for("globex-dev").outputs
    assert (outputs["endpointName"], outputs["endpointUrl"], outputs["modelVersion"]) == ("",) * 3
    assert outputs["blueprint"] == "onprem" and outputs["environment"] == "dev"


def _one(plan: Plan, type_: str, name: str) -> Record:
    return plan.one(type_, name)


def test_webhook_names_the_bridge_service(plan_for: PlanFor) -> None:
    plan = plan_for("globex-prod")
    job = _one(plan, "kubernetes:batch/v1:Job", "release-register-webhook")
    command = job.inputs["spec"]["template"]["spec"]["containers"][0]["command"]
    url = command[command.index("--url") + 1]
    service = _one(plan, "kubernetes:core/v1:Service", "release-bridge-service").inputs
    meta = service["metadata"]
    assert url == f"http://{meta['name']}.{meta['namespace']}.svc.cluster.local:8080/webhook"
    assert command[command.index("--event") + 1] == "model_version_alias.created"
    bridge = _one(plan, "kubernetes:apps/v1:Deployment", "release-bridge").inputs
    assert (
        service["spec"]["selector"]["app"]
        == bridge["spec"]["template"]["metadata"]["labels"]["app"]
    )
    assert service["spec"]["ports"][0]["port"] == 8080
    assert plan.outputs["releaseTrigger"] == command[command.index("--name") + 1]


def test_bridge_gets_the_release_settings_and_the_token_from_a_secret(plan_for: PlanFor) -> None:
    plan = plan_for("globex-prod")
    config = _one(plan, "kubernetes:core/v1:ConfigMap", "release-config").inputs["data"]
    assert config["RELEASE_PROVIDER"] == "github"
    assert config["RELEASE_REPOSITORY"] == "globex/ml-platform"
    assert config["RELEASE_MODEL_NAME"] == "globex-classifier"
    bridge = _one(plan, "kubernetes:apps/v1:Deployment", "release-bridge").inputs
    pod = bridge["spec"]["template"]["spec"]
    token = _one(plan, "kubernetes:core/v1:Secret", "secrets-release-token").inputs
    # the token is a file of the mounted Secret, at the path the ConfigMap names
    path = config["RELEASE_TOKEN_FILE"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if path.startswith(m["mountPath"]))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == token["metadata"]["name"]
    assert path.rsplit("/", 1)[1] in [i["path"] for i in volume["secret"]["items"]]
    assert token["stringData"] == "[secret]"
    assert plan_for("globex-dev").by_type("kubernetes:core/v1:Secret") != []
    dev_secrets = [r.name for r in plan_for("globex-dev").by_type("kubernetes:core/v1:Secret")]
    assert "secrets-release-token" not in dev_secrets


def test_inference_service_serves_the_configured_version(plan_for: PlanFor) -> None:
    for stack, overrides, version in (
        ("globex-prod", {}, "4"),
        ("globex-dev", {"model": "2"}, "2"),
    ):
        plan = plan_for(stack, **overrides)
        isvc = _one(plan, ISVC, "endpoint-inference-service").inputs
        predictor = isvc["spec"]["predictor"]
        assert predictor["model"]["storageUri"] == (
            f"{stack}-models:/globex-classifier/{version}"
        ), stack
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == (
            "RawDeployment"
        )
        assert predictor["model"]["modelFormat"]["name"] == "mlflow"
        assert isvc["metadata"]["labels"]["mlops/model-version"] == version
        assert plan.outputs["modelVersion"] == version
        assert plan.outputs["endpointName"] == isvc["metadata"]["name"]


def test_inference_service_scaling_and_rollout_follow_the_tier(plan_for: PlanFor) -> None:
    prod = _one(plan_for("globex-prod"), ISVC, "endpoint-inference-service").inputs
    dev = _one(plan_for("globex-dev", model="1"), ISVC, "endpoint-inference-service").inputs
    assert (prod["spec"]["predictor"]["minReplicas"], prod["spec"]["predictor"]["maxReplicas"]) == (
        2,
        8,
    )
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "10%", "maxUnavailable": 0}}
    assert prod["spec"]["predictor"]["deploymentStrategy"] == rolling
    # RawDeployment cannot scale to zero: dev's minInstances 0 runs one replica
    assert dev["spec"]["predictor"]["minReplicas"] == 1
    assert dev["spec"]["predictor"]["deploymentStrategy"]["rollingUpdate"]["maxSurge"] == "100%"
    assert prod["spec"]["predictor"]["scaleMetric"] == "cpu"
    assert prod["spec"]["predictor"]["model"]["resources"]["requests"] == {
        "cpu": "1",
        "memory": "2Gi",
    }


def test_storage_initializer_resolves_each_clients_uris_from_its_own_mlflow(
    plan_for: PlanFor,
) -> None:
    """The cluster stack's storage container for a client matches only that client's URI
    prefix and downloads from that client's MLflow (the tracking URI its stack exports)."""
    cluster = plan_for("globex-cluster")
    initech = {
        "client": "initech",
        "kubernetes": {
            "clusterStack": "globex-cluster",
            "ingressDomain": "ml.dev.initech.internal",
        },
    }
    for stack, overrides in (("globex-prod", {}), ("globex-dev", initech)):
        client = plan_for(stack, **overrides)
        prefix = client.settings.prefix
        csc = _one(
            cluster,
            "kubernetes:serving.kserve.io/v1alpha1:ClusterStorageContainer",
            f"tenants-{prefix}-storage",
        ).inputs["spec"]
        assert csc["supportedUriFormats"] == [{"prefix": f"{prefix}-models:/"}]
        env = {e["name"]: e["value"] for e in csc["container"]["env"]}
        assert env["MLFLOW_TRACKING_URI"] == client.outputs["trackingUri"]
        assert csc["container"]["image"] == cluster.settings.image


def test_logger_sends_captures_to_the_sink_service(plan_for: PlanFor) -> None:
    plan = plan_for("globex-prod")
    logger = _one(plan, ISVC, "endpoint-inference-service").inputs["spec"]["predictor"]["logger"]
    sink = _one(plan, "kubernetes:core/v1:Service", "capture-service").inputs
    meta = sink["metadata"]
    assert logger == {
        "mode": "all",
        "url": f"http://{meta['name']}.{meta['namespace']}.svc.cluster.local:8080",
    }


def test_pdbs_select_the_mlflow_and_endpoint_pods(plan_for: PlanFor) -> None:
    plan = plan_for("globex-prod")
    pdbs = {
        r.inputs["spec"]["selector"]["matchLabels"]["app"]
        for r in plan.by_type("kubernetes:policy/v1:PodDisruptionBudget")
    }
    mlflow = _one(plan, "kubernetes:apps/v1:Deployment", "tracking-mlflow").inputs
    isvc = _one(plan, ISVC, "endpoint-inference-service").inputs
    assert pdbs == {
        mlflow["spec"]["template"]["metadata"]["labels"]["app"],
        isvc["spec"]["predictor"]["labels"]["app"],
    }
    assert mlflow["spec"]["replicas"] == 2


def test_schedule_and_data_trigger_run_the_compiled_template(plan_for: PlanFor) -> None:
    plan = plan_for("globex-prod")
    template = _one(plan, "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate", "pipeline-template")
    name = template.inputs["metadata"]["name"]
    assert name == plan.outputs["pipelineName"] == "globex-prod-training"
    assert template.inputs["spec"]["serviceAccountName"] == "globex-prod-pipeline"
    assert template.inputs["metadata"]["namespace"] == "mlops-globex-prod-pipelines"
    cron = _one(plan, "kubernetes:argoproj.io/v1alpha1:CronWorkflow", "pipeline-schedule").inputs
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == name
    assert cron["spec"]["schedules"] == [plan.settings.schedule.cron]
    source = _one(
        plan, "kubernetes:argoproj.io/v1alpha1:EventSource", "pipeline-raw-data-source"
    ).inputs["spec"]["minio"]["raw-data"]
    assert source["bucket"]["name"] == plan.outputs["artifactStoreUri"].removeprefix("s3://")
    assert source["filter"]["prefix"] == "data/"
    sensor = _one(plan, "kubernetes:argoproj.io/v1alpha1:Sensor", "pipeline-data-trigger").inputs
    trigger = sensor["spec"]["triggers"][0]["template"]["argoWorkflow"]["source"]["resource"]
    assert trigger["spec"]["workflowTemplateRef"]["name"] == name
    assert sensor["metadata"]["name"] == plan.outputs["dataChangeTrigger"]


def test_namespaces_enforce_restricted_pod_security(plan_for: PlanFor) -> None:
    plan = plan_for("globex-prod")
    namespaces = plan.by_type("kubernetes:core/v1:Namespace")
    assert len(namespaces) == 3
    for ns in namespaces:
        labels = ns.inputs["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", ns.name


def test_stateful_stores_are_protected_in_prod_only(plan_for: PlanFor) -> None:
    for stack, expected in (("globex-prod", True), ("globex-dev", False)):
        plan = plan_for(stack)
        for r in plan.by_type("kubernetes:apps/v1:StatefulSet"):
            assert r.options["protect"] is expected, (stack, r.name)
            assert r.options["retainOnDelete"] is expected, (stack, r.name)
            claim = r.inputs["spec"]["volumeClaimTemplates"][0]["spec"]
            if stack == "globex-prod":
                assert claim["storageClassName"] == "fast-retain", r.name


def test_prod_third_party_images_are_pinned_dev_images_follow_tags(plan_for: PlanFor) -> None:
    def images(plan: Plan) -> list[str]:
        return [
            c["image"]
            for t in WORKLOADS
            for r in plan.by_type(t)
            for c in r.inputs["spec"]["template"]["spec"]["containers"]
        ]

    prod = [i for i in images(plan_for("globex-prod")) if "mlops-pipeline" not in i]
    assert prod and all("@sha256:" in i for i in prod), prod
    assert not any("@sha256:" in i for i in images(plan_for("globex-dev")))


def test_no_credential_in_a_configmap(plan_for: PlanFor) -> None:
    plan = plan_for("globex-prod")
    for r in plan.by_type("kubernetes:core/v1:ConfigMap"):
        for key, value in r.inputs.get("data", {}).items():
            if key.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                continue  # the path of a mounted Secret (an image's `*_FILE` convention)
            assert not any(w in key for w in ("PASSWORD", "SECRET", "TOKEN", "KEY_ID")), (
                r.name,
                key,
            )


def _peer(p: dict[str, Any]) -> tuple:
    if "ipBlock" in p:
        return ("cidr", p["ipBlock"]["cidr"], tuple(p["ipBlock"].get("except", [])))
    ns = (
        (p.get("namespaceSelector") or {})
        .get("matchLabels", {})
        .get("kubernetes.io/metadata.name", "<same>")
    )
    pods = (p.get("podSelector") or {}).get("matchLabels", {})
    return (ns, ",".join(f"{k}={v}" for k, v in sorted(pods.items())) or "*")


def _flows(plan: Plan) -> set[tuple]:
    flows = set()
    for r in plan.by_type(NETPOL):
        ns = r.inputs["metadata"]["namespace"]
        selected = r.inputs["spec"]["podSelector"].get("matchLabels", {}).get("app", "*")
        for direction, rules_key, peers_key in (("in", "ingress", "from"), ("out", "egress", "to")):
            for rule in r.inputs["spec"].get(rules_key, []):
                ports = tuple(sorted({p["port"] for p in rule.get("ports", [])})) or "any"
                for peer in rule.get(peers_key, []):
                    flows.add((ns, selected, direction, _peer(peer), ports))
    return flows


def _expected_flows(p: str, api_server: str = "0.0.0.0/0") -> set[tuple]:
    plat, pipe, serv = (f"mlops-{p}-{role}" for role in ("platform", "pipelines", "serving"))
    dns = ("kube-system", "k8s-app=kube-dns")
    minio, mlflow = (plat, f"app={p}-minio"), (plat, f"app={p}-mlflow")
    model, capture = (serv, f"app={p}-model"), (serv, f"app={p}-capture")
    return {
        # default deny: DNS only
        (plat, "*", "out", dns, (53,)),
        (pipe, "*", "out", dns, (53,)),
        (serv, "*", "out", dns, (53,)),
        # pipelines namespace: Argo, events and runs
        (pipe, "*", "in", (pipe, "*"), "any"),
        (pipe, "*", "out", (pipe, "*"), "any"),
        (pipe, "*", "out", ("cidr", api_server, ()), (443, 6443)),
        (pipe, "*", "out", minio, (9000,)),
        (pipe, "*", "out", mlflow, (5000,)),
        # artifact store
        (plat, f"{p}-minio", "in", (pipe, "*"), (9000,)),
        (plat, f"{p}-minio", "in", mlflow, (9000,)),
        (plat, f"{p}-minio", "in", capture, (9000,)),
        (plat, f"{p}-minio", "in", ("monitoring", "*"), (9000,)),
        (plat, f"{p}-minio", "in", (plat, f"app={p}-minio-setup"), (9000,)),
        (plat, f"{p}-minio-setup", "out", minio, (9000,)),
        # tracking
        (plat, f"{p}-mlflow", "in", ("ingress-nginx", "*"), (5000,)),
        (plat, f"{p}-mlflow", "in", (pipe, "*"), (5000,)),
        (plat, f"{p}-mlflow", "in", model, (5000,)),
        (plat, f"{p}-mlflow", "in", ("monitoring", "*"), (5000,)),
        (plat, f"{p}-mlflow", "in", (plat, f"app={p}-release-webhook"), (5000,)),
        (plat, f"{p}-mlflow", "out", minio, (9000,)),
        (plat, f"{p}-mlflow", "out", (plat, f"app={p}-postgres"), (5432,)),
        (plat, f"{p}-mlflow", "out", (plat, f"app={p}-release-bridge"), (8080,)),
        (plat, f"{p}-postgres", "in", mlflow, (5432,)),
        # registry
        (plat, f"{p}-registry", "in", ("ingress-nginx", "*"), (5000,)),
        # release trigger
        (plat, f"{p}-release-bridge", "in", mlflow, (8080,)),
        (
            plat,
            f"{p}-release-bridge",
            "out",
            ("cidr", "0.0.0.0/0", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
            (443,),
        ),
        (plat, f"{p}-release-webhook", "out", mlflow, (5000,)),
        # endpoint and capture
        (serv, f"{p}-model", "in", ("ingress-nginx", "*"), (8080,)),
        (serv, f"{p}-model", "in", ("monitoring", "*"), (8082,)),
        (serv, f"{p}-model", "out", mlflow, (5000,)),
        (serv, f"{p}-model", "out", capture, (8080,)),
        (serv, f"{p}-capture", "in", model, (8080,)),
        (serv, f"{p}-capture", "out", minio, (9000,)),
    }


def test_network_policies_allow_exactly_the_flows_the_stack_needs(plan_for: PlanFor) -> None:
    flows = _flows(plan_for("globex-prod"))
    expected = _expected_flows("globex-prod", api_server="10.96.0.1/32")
    assert flows - expected == set(), f"unexpected flows: {sorted(flows - expected, key=str)}"
    assert expected - flows == set(), f"missing flows: {sorted(expected - flows, key=str)}"


def test_dev_without_model_has_no_endpoint_flows(plan_for: PlanFor) -> None:
    flows = _flows(plan_for("globex-dev"))
    expected = {f for f in _expected_flows("globex-dev") if "serving" not in f[0] or f[1] == "*"}
    expected = {
        f
        for f in expected
        if f[3]
        not in (
            ("mlops-globex-dev-serving", "app=globex-dev-model"),
            ("mlops-globex-dev-serving", "app=globex-dev-capture"),
        )
    }
    assert flows == expected, sorted(flows ^ expected, key=str)


def test_every_cross_namespace_flow_is_allowed_on_both_sides(plan_for: PlanFor) -> None:
    """An egress rule to a pod of this stack is useless without the matching ingress rule."""
    flows = _flows(plan_for("globex-prod"))
    for ns, app, direction, peer, ports in flows:
        if direction != "out" or peer[0] in ("cidr", "kube-system") or peer[1] == "*":
            continue
        target_ns, target_app = peer[0], peer[1].removeprefix("app=")
        ingress = [
            f
            for f in flows
            if f[0] == target_ns
            and f[1] in (target_app, "*")
            and f[2] == "in"
            and f[3][0] == ns
            and f[3][1] in ("*", f"app={app}")
            and (f[4] == "any" or set(ports) <= set(f[4]))
        ]
        assert ingress, f"{ns}/{app} -> {target_ns}/{target_app}:{ports} has no ingress rule"


def test_alerts_cover_errors_latency_drift_and_budget(plan_for: PlanFor) -> None:
    plan = plan_for("globex-prod")
    rule = _one(plan, "kubernetes:monitoring.coreos.com/v1:PrometheusRule", "monitoring-alerts")
    alerts = {r["alert"]: r for g in rule.inputs["spec"]["groups"] for r in g["rules"]}
    assert {
        "EndpointErrors5xx",
        "EndpointLatencyHigh",
        "EndpointModelRestarts",
        "ModelDriftDetected",
    } <= set(alerts)
    assert alerts["EndpointLatencyHigh"]["expr"].endswith("> 500")
    # RawDeployment: MLServer's metrics through the endpoint's metrics Service, no Knative
    service = _one(plan, "kubernetes:core/v1:Service", "endpoint-metrics").inputs["metadata"]
    for name in ("EndpointErrors5xx", "EndpointLatencyHigh"):
        assert f'service="{service["name"]}"' in alerts[name]["expr"], name
        assert "revision_app" not in alerts[name]["expr"], name
    assert alerts["ModelDriftDetected"]["expr"].endswith("> 0.2")
    budget = [a for a in alerts if a.startswith("BudgetQuota")]
    assert len(budget) == 2 * len(plan.settings.budget.alert_percents)
    assert plan.outputs["alertsTarget"].endswith(rule.inputs["metadata"]["name"])
    dev_rule = _one(
        plan_for("globex-dev"),
        "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
        "monitoring-alerts",
    )
    assert not any(g["name"].endswith("-endpoint") for g in dev_rule.inputs["spec"]["groups"])


def test_ingresses_use_tls_and_private_ranges_in_prod(plan_for: PlanFor) -> None:
    plan = plan_for("globex-prod")
    ingresses = plan.by_type("kubernetes:networking.k8s.io/v1:Ingress")
    assert {r.name for r in ingresses} == {"ingress-mlflow", "ingress-registry", "ingress-endpoint"}
    for r in ingresses:
        annotations = r.inputs["metadata"]["annotations"]
        assert (
            annotations["nginx.ingress.kubernetes.io/whitelist-source-range"]
            == plan.settings.network.cidr
        ), r.name
        host = r.inputs["spec"]["rules"][0]["host"]
        assert r.inputs["spec"]["tls"] == [
            {"hosts": [host], "secretName": r.inputs["spec"]["tls"][0]["secretName"]}
        ]
        assert host.endswith("ml.globex.internal")
    dev = plan_for("globex-dev").by_type("kubernetes:networking.k8s.io/v1:Ingress")
    assert all(
        "nginx.ingress.kubernetes.io/whitelist-source-range"
        not in r.inputs["metadata"]["annotations"]
        for r in dev
    )


def test_budget_quota_follows_the_monthly_budget(plan_for: PlanFor) -> None:
    def cores(stack: str) -> int:
        quotas = plan_for(stack).by_type("kubernetes:core/v1:ResourceQuota")
        return sum(int(q.inputs["spec"]["hard"]["requests.cpu"]) for q in quotas)

    assert cores("globex-prod") > cores("globex-dev")
    quota = plan_for("globex-prod").by_type("kubernetes:core/v1:ResourceQuota")[0]
    assert quota.inputs["spec"]["hard"]["services.nodeports"] == "0"
