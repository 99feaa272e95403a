"""Monitoring: Prometheus ServiceMonitors, PrometheusRule alerts (errors, latency, drift,
budget) and the scheduled drift check of captured traffic against the training baseline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.onprem import secrets as sec
from components.onprem.endpoint import metrics_service
from components.onprem.validation import Checks
from components.onprem.workload import container_security, pod_security, resources
from core.config import ROLLBACK_ALARMS, ROLLOUT_DEFAULTS, is_cron

DRIFT_METRIC = "mlops_drift_psi_max"


@dataclass(frozen=True)
class ScrapeTarget:
    """A Service to scrape: namespace, label selector, port name and path."""

    name: str
    namespace: str
    selector: Mapping[str, str]
    port: str
    path: str = "/metrics"


@dataclass(frozen=True)
class MonitoringArgs:
    prefix: str
    """Start of every object name (`<client>-<environment>`)."""
    namespace: str
    """Namespace of the rules and the drift workflow (the pipelines namespace)."""
    targets: Sequence[ScrapeTarget]
    """Services Prometheus scrapes (one ServiceMonitor each)."""
    image: str
    """Image with the `pipelines` package (runs the drift check)."""
    service_account: str
    """ServiceAccount the drift check runs as (Identities.accounts['monitoring'])."""
    drift_cron: str
    """When captured traffic is compared with the baseline (5-field cron, UTC)."""
    drift_threshold: float
    """Population stability index above which the drift alert fires."""
    captures_uri: str
    """`s3://bucket/prefix/` of the captured traffic."""
    baseline_uri: str
    """`s3://bucket/prefix/` of the training baseline statistics."""
    s3_endpoint: str
    """Artifact store endpoint URL."""
    s3_secret: str
    """Secret (in this namespace) with the artifact store key."""
    quota_namespaces: Sequence[str]
    """Namespaces whose ResourceQuota (the budget) is watched."""
    quota_name: str
    """Name of the ResourceQuota in each of them."""
    budget_alert_percents: Sequence[int] = (50, 80, 100)
    """Alert when quota use crosses these percentages."""
    endpoint: str | None = None
    """InferenceService name (errors and latency alerts); None: no endpoint yet."""
    serving_namespace: str = ""
    """Namespace of the InferenceService."""
    rollback_alarms: Sequence[str] = ROLLBACK_ALARMS
    """Endpoint alarms to raise (errors5xx, latency, invocationErrors)."""
    latency_threshold_ms: int = ROLLOUT_DEFAULTS.latency_threshold_ms
    """p99 latency above which the latency alarm fires."""
    prometheus_labels: Mapping[str, str] = field(
        default_factory=lambda: {"release": "kube-prometheus-stack"}
    )
    """Labels the cluster's Prometheus selects ServiceMonitors and rules by."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""


def validate(args: MonitoringArgs) -> None:
    c = Checks("Monitoring")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    c.dns_label("namespace", args.namespace, "pass Namespaces.names['pipelines']")
    c.expect(
        is_cron(args.drift_cron),
        "drift_cron",
        args.drift_cron,
        "a 5-field cron expression",
        "set drift.checkCron in Pulumi.<stack>.yaml",
    )
    c.expect(
        0 < args.drift_threshold <= 10,
        "drift_threshold",
        args.drift_threshold,
        "above 0 and at most 10",
        "set drift.threshold in Pulumi.<stack>.yaml",
    )
    for f in ("captures_uri", "baseline_uri"):
        v = getattr(args, f)
        c.expect(
            v.startswith("s3://") and v.endswith("/"),
            f,
            v,
            "an s3://bucket/prefix/ URI",
            "pass a prefix ending in '/'",
        )
    bad = [a for a in args.rollback_alarms if a not in ROLLBACK_ALARMS]
    c.expect(
        not bad,
        "rollback_alarms",
        list(args.rollback_alarms),
        f"a subset of {', '.join(ROLLBACK_ALARMS)}",
        "set rollout.alarms",
    )
    c.expect(
        all(1 <= p <= 200 for p in args.budget_alert_percents),
        "budget_alert_percents",
        list(args.budget_alert_percents),
        "percentages from 1 to 200",
        "set budget.alertPercents in Pulumi.<stack>.yaml",
    )
    c.expect(
        args.endpoint is None or bool(args.serving_namespace),
        "serving_namespace",
        args.serving_namespace,
        "set when endpoint is set",
        "pass Namespaces.names['serving']",
    )
    c.done()


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def alert_groups(args: MonitoringArgs) -> list[dict[str, Any]]:
    """The alerting rules, one group per concern."""

    def alert(
        name: str, expr: str, summary: str, *, for_: str = "5m", severity: str = "warning"
    ) -> dict[str, Any]:
        return {
            "alert": name,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity, "stack": args.prefix},
            "annotations": {"summary": summary},
        }

    namespaces = "|".join(args.quota_namespaces)
    budget = []
    for percent in args.budget_alert_percents:
        for resource in ("requests.cpu", "requests.memory"):
            sel = (
                f'namespace=~"{namespaces}",resource="{resource}",resourcequota="{args.quota_name}"'
            )
            budget.append(
                alert(
                    f"BudgetQuota{percent}Percent{resource.split('.')[1].capitalize()}",
                    f'kube_resourcequota{{{sel},type="used"}} / ignoring(type) '
                    f'kube_resourcequota{{{sel},type="hard"}} * 100 >= {percent}',
                    f"{args.prefix}: {resource} use is at {percent}% of the budget quota",
                    severity="critical" if percent >= 100 else "warning",
                )
            )
    groups = [
        {
            "name": f"{args.prefix}-drift",
            "rules": [
                alert(
                    "ModelDriftDetected",
                    f'max(argo_workflows_{DRIFT_METRIC}{{namespace="{args.namespace}"}}) > '
                    f"{args.drift_threshold}",
                    f"{args.prefix}: captured traffic drifted from the training baseline "
                    f"(PSI above {args.drift_threshold})",
                    for_="0m",
                )
            ],
        },
        {"name": f"{args.prefix}-budget", "rules": budget},
    ]
    if args.endpoint:
        # MLServer's own metrics (RawDeployment has no Knative queue-proxy), scraped through
        # the endpoint's metrics Service
        sel = f'namespace="{args.serving_namespace}",service="{metrics_service(args.endpoint)}"'
        rules = []
        if "errors5xx" in args.rollback_alarms:
            rules.append(
                alert(
                    "EndpointErrors5xx",
                    f'sum(rate(rest_server_requests_total{{{sel},status_code=~"5.."}}[5m]))'
                    f" / sum(rate(rest_server_requests_total{{{sel}}}[5m])) > 0.01",
                    f"{args.endpoint}: more than 1% of requests fail with 5xx",
                    severity="critical",
                )
            )
        if "latency" in args.rollback_alarms:
            rules.append(
                alert(
                    "EndpointLatencyHigh",
                    "1000 * histogram_quantile(0.99, sum by (le) (rate("
                    f"rest_server_request_duration_seconds_bucket{{{sel}}}[5m]))) > "
                    f"{args.latency_threshold_ms}",
                    f"{args.endpoint}: p99 latency above {args.latency_threshold_ms} ms",
                )
            )
        if "invocationErrors" in args.rollback_alarms:
            rules.append(
                alert(
                    "EndpointModelRestarts",
                    f"increase(kube_pod_container_status_restarts_total{{namespace="
                    f'"{args.serving_namespace}",pod=~"{args.endpoint}-predictor.*"}}[15m]) > 0',
                    f"{args.endpoint}: the model server restarted",
                )
            )
        groups.append({"name": f"{args.prefix}-endpoint", "rules": rules})
    return groups


class Monitoring(pulumi.ComponentResource):
    """ServiceMonitors for MLflow, MinIO, Argo and the endpoint; a PrometheusRule with the
    endpoint (5xx, p99 latency, restarts), drift and budget alerts; and a CronWorkflow that
    compares the captured traffic with the training baseline and exports the largest PSI as
    a Prometheus gauge the drift alert watches."""

    alerts_target: str
    drift_schedule: str

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        validate(args)
        super().__init__("mlops:onprem:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {**args.labels, **args.prometheus_labels}
        for target in args.targets:
            k8s.apiextensions.CustomResource(
                f"{name}-{target.name}",
                api_version="monitoring.coreos.com/v1",
                kind="ServiceMonitor",
                metadata={
                    "name": f"{args.prefix}-{target.name}",
                    "namespace": target.namespace,
                    "labels": labels,
                },
                spec={
                    "selector": {"matchLabels": dict(target.selector)},
                    "namespaceSelector": {"matchNames": [target.namespace]},
                    "endpoints": [
                        {
                            "port": target.port,
                            "path": target.path,
                            "interval": "30s",
                            "scheme": "http",
                        }
                    ],
                },
                opts=child,
            )
        rule = f"{args.prefix}-alerts"
        self.alerts_target = f"{args.namespace}/{rule}"
        k8s.apiextensions.CustomResource(
            f"{name}-alerts",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={"name": rule, "namespace": args.namespace, "labels": labels},
            spec={"groups": alert_groups(args)},
            opts=child,
        )
        self.drift_schedule = f"{args.prefix}-drift-check"
        bucket, captures = _split(args.captures_uri)
        _, baseline = _split(args.baseline_uri)
        s3 = {
            "bucket": bucket,
            "endpoint": args.s3_endpoint.split("://", 1)[1],
            "insecure": args.s3_endpoint.startswith("http://"),
            "accessKeySecret": {"name": args.s3_secret, "key": sec.S3_ACCESS_KEY},
            "secretKeySecret": {"name": args.s3_secret, "key": sec.S3_SECRET_KEY},
        }
        k8s.apiextensions.CustomResource(
            f"{name}-drift-check",
            api_version="argoproj.io/v1alpha1",
            kind="CronWorkflow",
            metadata={
                "name": self.drift_schedule,
                "namespace": args.namespace,
                "labels": args.labels,
            },
            spec={
                "schedules": [args.drift_cron],
                "timezone": "UTC",
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "workflowSpec": {
                    "entrypoint": "drift",
                    "serviceAccountName": args.service_account,
                    "securityContext": pod_security(),
                    "podGC": {"strategy": "OnPodSuccess"},
                    "templates": [
                        {
                            "name": "drift",
                            "inputs": {
                                "artifacts": [
                                    {
                                        "name": "captures",
                                        "path": "/tmp/captures",
                                        "optional": True,
                                        "s3": {**s3, "key": captures},
                                    },
                                    {
                                        "name": "baseline",
                                        "path": "/tmp/baseline",
                                        "s3": {**s3, "key": baseline},
                                    },
                                ]
                            },
                            "container": {
                                "image": args.image,
                                "command": ["python", "-m", "pipelines.steps.drift"],
                                "args": [
                                    "--captures",
                                    "/tmp/captures",
                                    "--baseline",
                                    "/tmp/baseline",
                                    "--threshold",
                                    str(args.drift_threshold),
                                    "--report-dir",
                                    "/tmp/drift",
                                ],
                                "resources": resources(
                                    "250m", "512Mi", cpu_limit="1", memory_limit="1Gi"
                                ),
                                "securityContext": container_security(),
                            },
                            "outputs": {
                                "parameters": [
                                    {
                                        "name": "max_psi",
                                        "valueFrom": {"path": "/tmp/drift/max_psi", "default": "0"},
                                    }
                                ]
                            },
                            "metrics": {
                                "prometheus": [
                                    {
                                        "name": DRIFT_METRIC,
                                        "help": "Largest PSI of the last drift check",
                                        "labels": [{"key": "stack", "value": args.prefix}],
                                        "gauge": {
                                            "value": "{{outputs.parameters.max_psi}}",
                                            "realtime": False,
                                        },
                                    }
                                ]
                            },
                        }
                    ],
                },
            },
            opts=child,
        )
        self.register_outputs(
            {"alertsTarget": self.alerts_target, "driftSchedule": self.drift_schedule}
        )
