"""Monitoring: an action group, metric alerts on the endpoint and the training runs, and an
Azure ML model-monitoring schedule that compares production data with the training data.

The action group notifies everyone holding Monitoring Contributor on the resource group (no
addresses in code). Endpoint alerts exist only with an endpoint; they are the rollback alarms
the release workflow watches during a canary's bake time. The drift monitor runs on serverless
Spark on the drift cron, with population stability index thresholds per feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import monitor

from components.azure._common import ROLES, check, raise_if
from core.config import ROLLBACK_ALARMS, ROLLOUT_DEFAULTS

# alarm -> (metric, aggregation, dimension filter on statusCodeClass, description)
_ALARM_METRICS: dict[str, tuple[str, str, str | None, str]] = {
    "errors5xx": ("RequestsPerMinute", "Total", "5xx", "server errors from the endpoint"),
    "invocationErrors": ("RequestsPerMinute", "Total", "4xx", "rejected invocations"),
    "latency": ("RequestLatency_P99", "Average", None, "p99 latency above the threshold"),
}


@dataclass(frozen=True)
class MonitoringArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    location: str
    """Azure location of the workspace."""
    resource_group_name: pulumi.Input[str]
    """Resource group of the stack."""
    workspace_name: pulumi.Input[str]
    """Workspace that runs the drift monitor."""
    workspace_id: pulumi.Input[str]
    """Workspace resource id (scope of the training-failure alert)."""
    identity_id: pulumi.Input[str]
    """User-assigned identity the drift monitor runs as (the monitoring identity)."""
    reference_data_uri: pulumi.Input[str]
    """Training data the production data is compared with (azureml:// or abfss:// URI)."""
    production_data_uri: pulumi.Input[str]
    """Collected model inputs (data collection output folder)."""
    drift_threshold: float = 0.2
    """Population stability index per feature above which drift is raised."""
    drift_cron: str = "0 * * * *"
    """When the drift monitor runs (5-field cron, UTC)."""
    endpoint_id: pulumi.Input[str] | None = None
    """Endpoint the rollback alarms watch; None: no endpoint yet."""
    deployment_id: pulumi.Input[str] | None = None
    """Deployment the drift monitor targets; None: the monitor compares data assets only."""
    alarms: tuple[str, ...] = ROLLBACK_ALARMS
    """Endpoint alarms to create: errors5xx, latency, invocationErrors."""
    latency_threshold_ms: int = ROLLOUT_DEFAULTS.latency_threshold_ms
    """p99 latency (ms) above which the latency alarm fires."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def validate_monitoring_args(args: MonitoringArgs) -> None:
    problems: list[str] = []
    bad = [a for a in args.alarms if a not in ROLLBACK_ALARMS]
    check(
        problems,
        not bad,
        "alarms",
        bad,
        f"a subset of {', '.join(ROLLBACK_ALARMS)}",
        "set rollout.alarms in Pulumi.<stack>.yaml",
    )
    check(
        problems,
        0 < args.drift_threshold <= 10,
        "drift_threshold",
        args.drift_threshold,
        "above 0 and at most 10",
        "set drift.threshold in Pulumi.<stack>.yaml",
    )
    check(
        problems,
        len(args.drift_cron.split()) == 5,
        "drift_cron",
        args.drift_cron,
        "a 5-field cron expression",
        "set drift.checkCron in Pulumi.<stack>.yaml",
    )
    check(
        problems,
        1 <= args.latency_threshold_ms <= 60_000,
        "latency_threshold_ms",
        args.latency_threshold_ms,
        "between 1 and 60000",
        "set rollout.latencyThresholdMs in Pulumi.<stack>.yaml",
    )
    check(
        problems,
        args.deployment_id is None or args.endpoint_id is not None,
        "deployment_id",
        "<set>",
        "allowed without endpoint_id",
        "pass the endpoint id too",
    )
    raise_if("Monitoring", problems)


class Monitoring(pulumi.ComponentResource):
    """Action group, metric alerts and the drift-monitoring schedule."""

    action_group_id: pulumi.Output[str]
    drift_schedule_name: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: ResourceOptions | None = None):
        validate_monitoring_args(args)
        super().__init__("mlops:azure:Monitoring", name, None, opts)
        child = ResourceOptions(parent=self)
        group = monitor.ActionGroup(
            f"{name}-actions",
            action_group_name=f"ag-{args.prefix}",
            resource_group_name=args.resource_group_name,
            location="global",
            group_short_name=args.prefix.replace("-", "")[:12],
            enabled=True,
            arm_role_receivers=[
                monitor.ArmRoleReceiverArgs(
                    name="monitoring-contributors",
                    role_id=ROLES["Monitoring Contributor"],
                    use_common_alert_schema=True,
                )
            ],
            tags=args.tags,
            opts=child,
        )
        actions = [monitor.MetricAlertActionArgs(action_group_id=group.id)]

        def alert(
            suffix: str,
            scope: pulumi.Input[str],
            metric: str,
            aggregation: str,
            threshold: float,
            description: str,
            severity: int,
            dimension: tuple[str, str] | None = None,
        ) -> None:
            monitor.MetricAlert(
                f"{name}-{suffix}",
                rule_name=f"{args.prefix}-{suffix}",
                resource_group_name=args.resource_group_name,
                location="global",
                description=description,
                severity=severity,
                enabled=True,
                scopes=[scope],
                evaluation_frequency="PT1M",
                window_size="PT5M",
                auto_mitigate=True,
                criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                    odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                    all_of=[
                        monitor.MetricCriteriaArgs(
                            criterion_type="StaticThresholdCriterion",
                            name=suffix,
                            metric_name=metric,
                            operator="GreaterThan",
                            threshold=threshold,
                            time_aggregation=aggregation,
                            dimensions=[
                                monitor.MetricDimensionArgs(
                                    name=dimension[0], operator="Include", values=[dimension[1]]
                                )
                            ]
                            if dimension
                            else None,
                        )
                    ],
                ),
                actions=actions,
                tags=args.tags,
                opts=child,
            )

        alert(
            "training-failed",
            args.workspace_id,
            "Failed Runs",
            "Total",
            0,
            "a training pipeline run failed",
            2,
        )
        if args.endpoint_id is not None:
            for alarm in args.alarms:
                metric, aggregation, status, text = _ALARM_METRICS[alarm]
                threshold = args.latency_threshold_ms if alarm == "latency" else 0
                alert(
                    f"endpoint-{alarm.lower()}",
                    args.endpoint_id,
                    metric,
                    aggregation,
                    threshold,
                    f"endpoint: {text} (rollback alarm)",
                    1,
                    ("statusCodeClass", status) if status else None,
                )

        target = None
        if args.deployment_id is not None:
            target = ml.MonitoringTargetArgs(
                task_type="Classification", deployment_id=args.deployment_id
            )
        schedule = ml.Schedule(
            f"{name}-drift",
            name=f"{args.prefix}-drift",
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            properties=ml.SchedulePropertiesArgs(
                display_name=f"{args.prefix} data drift",
                description="Production inputs compared with the training data (PSI)",
                is_enabled=True,
                trigger=ml.CronTriggerArgs(
                    trigger_type="Cron", expression=args.drift_cron, time_zone="UTC"
                ),
                action=ml.CreateMonitorActionArgs(
                    action_type="CreateMonitor",
                    monitor_definition=ml.MonitorDefinitionArgs(
                        monitoring_target=target,
                        compute_configuration=ml.MonitorServerlessSparkComputeArgs(
                            compute_type="ServerlessSpark",
                            instance_type="Standard_E4s_v3",
                            runtime_version="3.3",
                            compute_identity=ml.ManagedComputeIdentityArgs(
                                compute_identity_type="ManagedIdentity",
                                identity=ml.ManagedServiceIdentityArgs(
                                    type="UserAssigned",
                                    user_assigned_identities=[args.identity_id],
                                ),
                            ),
                        ),
                        signals={
                            "data-drift": ml.DataDriftMonitoringSignalArgs(
                                signal_type="DataDrift",
                                production_data=ml.RollingInputDataArgs(
                                    input_data_type="Rolling",
                                    job_input_type="uri_folder",
                                    uri=args.production_data_uri,
                                    window_offset="P0D",
                                    window_size="P7D",
                                ),
                                reference_data=ml.FixedInputDataArgs(
                                    input_data_type="Fixed",
                                    job_input_type="uri_folder",
                                    uri=args.reference_data_uri,
                                ),
                                features=ml.AllFeaturesArgs(filter_type="AllFeatures"),
                                metric_thresholds=[
                                    ml.NumericalDataDriftMetricThresholdArgs(
                                        data_type="Numerical",
                                        metric="PopulationStabilityIndex",
                                        threshold=ml.MonitoringThresholdArgs(
                                            value=args.drift_threshold
                                        ),
                                    )
                                ],
                                notification_types=["AmlNotification"],
                            )
                        },
                    ),
                ),
            ),
            opts=child,
        )
        self.action_group_id = group.id
        self.drift_schedule_name = schedule.name
        self.register_outputs({"actionGroupId": group.id, "driftSchedule": schedule.name})
