"""Every component checks its arguments before creating anything; the message names the
field, the bad value, what is allowed and the fix. Table-driven: one good args object per
component, one bad field per row."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from components.onprem import (
    artifact_store,
    capture,
    endpoint,
    identities,
    monitoring,
    namespaces,
    network,
    operators,
    pipeline,
    registry,
    release,
    secrets,
    tenants,
    tracking,
)
from components.onprem.images import KIT_IMAGE, PINNED, image, is_pinned
from components.onprem.workload import Peer, labels_from_tags
from core.errors import ArgsError

PEER = Peer(namespace="mlops-a-dev-platform", app="x")
NS = "mlops-a-dev-platform"

GOOD: dict[str, tuple[Any, Any]] = {
    "namespaces": (
        namespaces.validate,
        namespaces.NamespacesArgs(prefix="mlops-a-dev", monthly_budget_usd=200),
    ),
    "identities": (
        identities.validate,
        identities.IdentitiesArgs(
            prefix="a-dev", pipelines_namespace=NS, serving_namespace=NS, platform_namespace=NS
        ),
    ),
    "secrets": (
        secrets.validate,
        secrets.SecretsArgs(prefix="a-dev", platform_namespace=NS, s3_namespaces=[NS]),
    ),
    "artifact_store": (
        artifact_store.validate,
        artifact_store.ArtifactStoreArgs(
            prefix="a-dev",
            namespace=NS,
            bucket="a-dev-artifacts",
            image="minio",
            root_secret="r",
            s3_secret="s",
            clients=[PEER],
        ),
    ),
    "registry": (
        registry.validate,
        registry.ContainerRegistryArgs(
            prefix="a-dev",
            namespace=NS,
            host="registry.a.internal",
            image="registry",
            clients=[PEER],
        ),
    ),
    "tracking": (
        tracking.validate,
        tracking.TrackingArgs(
            prefix="a-dev",
            namespace=NS,
            mlflow_image="kit",
            postgres_image="pg",
            postgres_secret="p",
            s3_secret="s",
            s3_endpoint="http://minio:9000",
            bucket="b",
            artifact_store=PEER,
            clients=[PEER],
        ),
    ),
    "pipeline": (
        pipeline.validate,
        pipeline.TrainingPipelineArgs(
            prefix="a-dev",
            namespace=NS,
            service_account="sa",
            schedule_cron="0 3 * * 1",
            workflow_template={"kind": "WorkflowTemplate", "metadata": {"name": "a-dev-training"}},
            s3_endpoint="http://minio:9000",
            bucket="b",
            s3_secret="s",
            artifact_store=PEER,
            tracking=PEER,
            priority_class="a-dev-training",
        ),
    ),
    "release": (
        release.validate,
        release.ReleaseTriggerArgs(
            prefix="a-dev",
            namespace=NS,
            image="kit",
            service_account="sa",
            tracking_uri="http://mlflow:5000",
            tracking_app="mlflow",
            webhook_secret="w",
            model_name="a-classifier",
            stack="a-dev",
        ),
    ),
    "endpoint": (
        endpoint.validate,
        endpoint.ModelEndpointArgs(
            prefix="a-dev",
            namespace=NS,
            model_name="a-classifier",
            model_version="3",
            service_account="sa",
            storage_uri_prefix="a-dev-models:/",
            tracking=PEER,
            capture_url="http://capture:8080",
            capture=PEER,
        ),
    ),
    "capture": (
        capture.validate,
        capture.DataCaptureArgs(
            prefix="a-dev",
            namespace=NS,
            image="vector",
            s3_endpoint="http://minio:9000",
            bucket="b",
            key_prefix="captures/m/",
            s3_secret="s",
            senders=PEER,
            artifact_store=PEER,
        ),
    ),
    "monitoring": (
        monitoring.validate,
        monitoring.MonitoringArgs(
            prefix="a-dev",
            namespace=NS,
            targets=[],
            image="kit",
            service_account="sa",
            drift_cron="0 * * * *",
            drift_threshold=0.2,
            captures_uri="s3://b/captures/",
            baseline_uri="s3://b/baseline/",
            s3_endpoint="http://minio:9000",
            s3_secret="s",
            quota_namespaces=[NS],
            quota_name="q",
        ),
    ),
    "network": (
        network.validate,
        network.TlsIngressArgs(
            prefix="a-dev",
            cluster_issuer="internal-ca",
            routes=[network.Route("mlflow", NS, "mlflow.a.internal", "mlflow", 5000)],
        ),
    ),
    "operators": (
        operators.validate,
        operators.ClusterOperatorsArgs(
            cluster="globex",
            cluster_issuer="internal-ca",
            issuer_secret="internal-ca",
            control_plane_cidr="10.20.0.0/24",
        ),
    ),
    "tenants": (
        tenants.validate,
        tenants.ClusterTenantsArgs(
            clients={"a-dev": "dev.a.internal", "b-prod": "b.internal"},
            namespace_prefix="mlops",
            storage_image="kit",
        ),
    ),
}

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("namespaces", {"prefix": "Mlops_A"}, "prefix='Mlops_A' is not a DNS label"),
    ("namespaces", {"prefix": "x" * 60}, "at most 53 chars"),
    ("namespaces", {"monthly_budget_usd": 0}, "monthly_budget_usd=0 is not a positive amount"),
    ("namespaces", {"pod_security": "privileged"}, "is not one of restricted, baseline"),
    ("identities", {"serving_namespace": "Serving"}, "serving_namespace='Serving'"),
    ("secrets", {"s3_namespaces": []}, "s3_namespaces=[] is not a non-empty list"),
    ("secrets", {"external_store": "Vault Store"}, "external_store='Vault Store'"),
    ("artifact_store", {"bucket": "ab"}, "bucket='ab' is not at least 3 characters"),
    ("artifact_store", {"size": "50GB"}, "size='50GB' is not a storage quantity"),
    ("artifact_store", {"noncurrent_days": 0}, "set stores.noncurrentDays"),
    ("artifact_store", {"external_endpoint": "s3.example.com"}, "an http(s):// URL or None"),
    ("artifact_store", {"clients": []}, "clients=[] is not a non-empty list"),
    ("registry", {"host": "registry"}, "host='registry' is not a host name"),
    ("registry", {"external_url": "https://harbor/ml"}, "without a scheme"),
    ("tracking", {"replicas": 0}, "replicas=0 is not between 1 and 10"),
    ("tracking", {"s3_endpoint": "minio:9000"}, "pass ArtifactStore.endpoint"),
    ("tracking", {"db_size": "twenty"}, "db_size='twenty'"),
    ("pipeline", {"schedule_cron": "daily"}, "schedule_cron='daily' is not a 5-field cron"),
    (
        "pipeline",
        {"workflow_template": {"kind": "Workflow"}},
        "workflow_template.kind='Workflow' is not WorkflowTemplate",
    ),
    ("pipeline", {"max_parallel": 0}, "set training.maxNodes"),
    ("pipeline", {"raw_prefix": "/data"}, "raw_prefix='/data'"),
    ("release", {"provider": "jenkins"}, "provider='jenkins' is not one of none, github"),
    ("release", {"provider": "github"}, "repository=None is not owner/repo"),
    (
        "release",
        {"provider": "github", "repository": "o/r"},
        "run `pulumi config set --secret mlops:releaseToken",
    ),
    ("release", {"alias": "not an alias"}, "alias='not an alias'"),
    ("endpoint", {"model_version": "latest"}, "model_version='latest' is not a registered"),
    ("endpoint", {"min_replicas": 3, "max_replicas": 2}, "min_replicas=3 is not between 0"),
    ("endpoint", {"rollout_strategy": "blue-green"}, "is not one of all-at-once, canary"),
    ("endpoint", {"traffic_step_percent": 80}, "traffic_step_percent=80"),
    ("endpoint", {"capture_percent": 50}, "capture_percent=50 is not 0 or 100"),
    ("endpoint", {"memory": "1GB"}, "memory='1GB'"),
    ("endpoint", {"storage_uri_prefix": "models/"}, "storage_uri_prefix='models/'"),
    ("endpoint", {"deployment_mode": "Serverless"}, "deployment_mode='Serverless' is not Raw"),
    ("pipeline", {"priority_class": "Training"}, "priority_class='Training'"),
    ("operators", {"control_plane_cidr": "0.0.0.0/0"}, "set cluster.controlPlaneCidr"),
    ("operators", {"cluster_issuer": "CA"}, "set kubernetes.clusterIssuer"),
    ("tenants", {"clients": {}}, "clients=[] is not at least one"),
    ("tenants", {"clients": {"a-dev": "x.in", "b-dev": "x.in"}}, "one ingress domain per client"),
    ("tenants", {"clients": {"A_dev": "a.internal"}}, "clients[]='A_dev'"),
    ("capture", {"key_prefix": "captures"}, "key_prefix='captures'"),
    ("monitoring", {"drift_cron": "hourly"}, "drift_cron='hourly'"),
    ("monitoring", {"captures_uri": "s3://b/captures"}, "captures_uri='s3://b/captures'"),
    ("monitoring", {"rollback_alarms": ("cpu",)}, "rollback_alarms=['cpu']"),
    ("monitoring", {"budget_alert_percents": (0,)}, "budget_alert_percents=[0]"),
    ("monitoring", {"endpoint": "m"}, "serving_namespace='' is not set when endpoint is set"),
    ("network", {"routes": []}, "routes=[] is not a non-empty list"),
    ("network", {"allowed_cidrs": ["10.0.0.0/33"]}, "allowed_cidrs[]='10.0.0.0/33'"),
    (
        "network",
        {"routes": [network.Route("mlflow", NS, "MLflow", "mlflow", 5000)]},
        "routes[].host='MLflow'",
    ),
]


@pytest.mark.parametrize("component", sorted(GOOD))
def test_good_args_pass(component: str) -> None:
    check, args = GOOD[component]
    check(args)


@pytest.mark.parametrize(
    ("component", "changes", "message"), BAD, ids=[f"{c}-{'-'.join(ch)}" for c, ch, _ in BAD]
)
def test_bad_args_name_field_value_and_fix(component: str, changes: dict, message: str) -> None:
    check, args = GOOD[component]
    with pytest.raises(ArgsError) as err:
        check(replace(args, **changes))
    text = str(err.value)
    assert message in text, text
    assert "nothing was created" in text and "; " in text, text


def test_every_problem_is_reported_at_once() -> None:
    check, args = GOOD["endpoint"]
    with pytest.raises(ArgsError) as err:
        check(replace(args, model_version="x", rollout_strategy="y", capture_percent=5))
    assert "3 invalid argument(s)" in str(err.value)


def test_component_validates_before_creating_children() -> None:
    """The constructor raises before it registers itself or any child."""
    _, args = GOOD["namespaces"]
    with pytest.raises(ArgsError):
        namespaces.Namespaces("ns", replace(args, prefix="BAD"))


def test_pinned_images_carry_digests_and_the_kit_image_does_not_yet() -> None:
    for name in PINNED:
        assert is_pinned(image(name, pin=True)), name
        assert not is_pinned(image(name, pin=False)), name
    assert KIT_IMAGE.digest is None
    assert not is_pinned(KIT_IMAGE.ref(pin=True))
    with pytest.raises(KeyError, match="add it with a digest"):
        image("nginx", pin=True)


def test_tags_become_valid_labels() -> None:
    assert labels_from_tags({"mlops:client": "globex", "team": "data science"}) == {
        "mlops/client": "globex",
        "team": "data-science",
    }


def test_budget_sizes_the_quota() -> None:
    assert namespaces.quota_cores(200, 0.4, 30, 4) == namespaces.MIN_CORES
    assert namespaces.quota_cores(5000, 0.4, 30, 4) == 43
