"""Endpoint: the SageMaker endpoint serving one approved version of the model package group,
owned by Pulumi so its state never drifts from the stack.

The model is created from the model package ARN, so it serves the exact image and artifacts
the version was registered with (the MLflow pyfunc serving image the register step names).
It runs network-isolated, in the stack's VPC. The endpoint configuration encrypts the ML
storage volume and the captured requests/responses with the stack key. A new version rolls out
blue/green: canary or linear traffic shifting, watched by CloudWatch alarms on 5xx errors,
model latency and invocation errors defined here, and rolled back automatically when one
fires. Realtime variants scale with invocations per instance.

Serverless mode (the dev default) scales with concurrency and costs nothing when idle, but
AWS does not support network isolation, VPC configuration, data capture or Model Monitor on
serverless endpoints, and deployment guardrails (traffic shifting, auto-rollback) apply only
to realtime and asynchronous endpoints: those args must be off, and a serverless endpoint is
updated all at once (its alarms still alert)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.aws.common import bad, child
from core.config import ENDPOINT_DEFAULTS, ROLLBACK_ALARMS, ROLLOUT_DEFAULTS
from core.errors import raise_problems

MODES = ("realtime", "serverless")
# SageMaker's name of each rollout strategy (core.config.STRATEGIES).
ROUTING = {"all-at-once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}
SERVERLESS_MEMORY = (1024, 2048, 3072, 4096, 5120, 6144)
VARIANT = "AllTraffic"
# Instance families with local NVMe storage: SageMaker rejects a KMS key for their volumes.
_LOCAL_STORAGE = re.compile(r"^ml\.[a-z]+\d+[a-z]*d[a-z]*\.")


@dataclass(frozen=True)
class ModelEndpointArgs:
    endpoint_name: str
    """Name of the endpoint (alarms and autoscaling refer to it)."""
    model_package_arn: pulumi.Input[str]
    """Approved model package version to serve."""
    model_version: str
    """Version number of that package (shown in tags and outputs)."""
    execution_role_arn: pulumi.Input[str]
    """Role the model container runs as."""
    kms_key_arn: pulumi.Input[str]
    """Stack key for the ML storage volume and the captured data."""
    alarm_topic_arn: pulumi.Input[str]
    """SNS topic the endpoint alarms notify."""
    region: str
    """Region of the endpoint (builds the invocation URL)."""
    mode: str = "realtime"
    """realtime (instances) or serverless (scales to zero)."""
    instance_type: str = "ml.m5.large"
    """Instance type of a realtime variant."""
    min_instances: int = ENDPOINT_DEFAULTS.min_instances
    """Instances a realtime variant starts with and scales in to."""
    max_instances: int = ENDPOINT_DEFAULTS.max_instances
    """Instances a realtime variant may scale out to."""
    target_invocations_per_instance: int = 100
    """Autoscaling target (invocations per instance per minute)."""
    serverless_memory_mb: int = 2048
    """Memory of a serverless variant."""
    serverless_max_concurrency: int = 5
    """Concurrent invocations of a serverless variant."""
    network_isolation: bool = True
    """Run the model container with no network access (not supported for serverless)."""
    subnet_ids: list[pulumi.Input[str]] = field(default_factory=list)
    """Private subnets of the model (empty: SageMaker's own network; not for serverless)."""
    security_group_ids: list[pulumi.Input[str]] = field(default_factory=list)
    """Security groups of the model, with `subnet_ids`."""
    data_capture: bool = True
    """Capture requests and responses to `capture_uri` (not supported for serverless)."""
    capture_uri: pulumi.Input[str] = ""
    """`s3://<bucket>/capture` where captured traffic is written."""
    capture_percent: int = ENDPOINT_DEFAULTS.capture_percent
    """Share of requests captured."""
    strategy: str = ROLLOUT_DEFAULTS.strategy
    """Traffic shifting of a new version: all-at-once, canary or linear."""
    traffic_step_percent: int = ROLLOUT_DEFAULTS.traffic_step_percent
    """Canary share or linear step, in percent of capacity."""
    bake_minutes: int = ROLLOUT_DEFAULTS.bake_minutes
    """Minutes each step is watched before traffic moves on."""
    auto_rollback: bool = ROLLOUT_DEFAULTS.auto_rollback
    """Roll back when one of `rollback_alarms` fires during a rollout."""
    rollback_alarms: tuple[str, ...] = ROLLBACK_ALARMS
    """Alarms that roll a release back: errors5xx, latency, invocationErrors."""
    latency_threshold_ms: int = ROLLOUT_DEFAULTS.latency_threshold_ms
    """p99 model latency (ms) above which the latency alarm fires."""


def validate_model_endpoint_args(args: ModelEndpointArgs) -> None:
    p: list[str] = []
    fix_mode = "set endpoint.mode realtime in Pulumi.<stack>.yaml"
    if args.mode not in MODES:
        p.append(bad("mode", args.mode, "one of " + ", ".join(MODES), "set endpoint.mode"))
    if args.strategy not in ROUTING:
        p.append(
            bad("strategy", args.strategy, "one of " + ", ".join(ROUTING), "set rollout.strategy")
        )
    for alarm in args.rollback_alarms:
        if alarm not in ROLLBACK_ALARMS:
            p.append(
                bad(
                    "rollback_alarms",
                    alarm,
                    "one of " + ", ".join(ROLLBACK_ALARMS),
                    "set rollout.alarms",
                )
            )
    if args.auto_rollback and not args.rollback_alarms:
        p.append(
            bad(
                "rollback_alarms",
                (),
                "non-empty when auto_rollback is on",
                "name at least one alarm in rollout.alarms",
            )
        )
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", args.endpoint_name):
        p.append(
            bad(
                "endpoint_name",
                args.endpoint_name,
                "1-63 letters, digits and hyphens",
                "use a shorter client name",
            )
        )
    if args.mode == "realtime":
        if not args.instance_type.startswith("ml."):
            p.append(
                bad(
                    "instance_type",
                    args.instance_type,
                    "a SageMaker instance type (ml.*)",
                    "set endpoint.instanceType",
                )
            )
        elif _LOCAL_STORAGE.match(args.instance_type):
            p.append(
                bad(
                    "instance_type",
                    args.instance_type,
                    "an instance type without local NVMe storage (SageMaker refuses a KMS "
                    "key for those volumes)",
                    "pick e.g. ml.m5.xlarge",
                )
            )
        if args.min_instances < 1:
            p.append(
                bad(
                    "min_instances",
                    args.min_instances,
                    ">= 1 for a realtime endpoint",
                    "set endpoint.minInstances or use endpoint.mode serverless",
                )
            )
        if args.max_instances < args.min_instances:
            p.append(
                bad(
                    "max_instances",
                    args.max_instances,
                    f">= min_instances ({args.min_instances})",
                    "set endpoint.maxInstances",
                )
            )
        if args.strategy in ("canary", "linear") and args.min_instances < 2:
            p.append(
                bad(
                    "min_instances",
                    args.min_instances,
                    ">= 2 for canary or linear traffic shifting",
                    "set endpoint.minInstances to 2",
                )
            )
        if bool(args.subnet_ids) != bool(args.security_group_ids):
            p.append(
                bad(
                    "security_group_ids",
                    args.security_group_ids,
                    "given together with subnet_ids",
                    "pass both or neither",
                )
            )
    if args.mode == "serverless":
        for flag in ("network_isolation", "data_capture"):
            if getattr(args, flag):
                p.append(
                    bad(
                        flag,
                        True,
                        "supported by serverless endpoints",
                        f"pass {flag}=False or {fix_mode}",
                    )
                )
        if args.subnet_ids:
            p.append(
                bad(
                    "subnet_ids",
                    args.subnet_ids,
                    "supported by serverless endpoints",
                    f"pass no subnets or {fix_mode}",
                )
            )
        if args.strategy != "all-at-once":
            p.append(
                bad(
                    "strategy",
                    args.strategy,
                    "supported by serverless endpoints (all-at-once only)",
                    f"set rollout.strategy all-at-once or {fix_mode}",
                )
            )
        if args.auto_rollback:
            p.append(
                bad(
                    "auto_rollback",
                    True,
                    "supported by serverless endpoints (no deployment guardrails)",
                    f"pass auto_rollback=False or {fix_mode}",
                )
            )
        if args.serverless_memory_mb not in SERVERLESS_MEMORY:
            p.append(
                bad(
                    "serverless_memory_mb",
                    args.serverless_memory_mb,
                    "one of " + ", ".join(map(str, SERVERLESS_MEMORY)),
                    "set endpoint.serverlessMemoryMb",
                )
            )
        if not 1 <= args.serverless_max_concurrency <= 200:
            p.append(
                bad(
                    "serverless_max_concurrency",
                    args.serverless_max_concurrency,
                    "between 1 and 200",
                    "set endpoint.serverlessMaxConcurrency",
                )
            )
    if args.data_capture and isinstance(args.capture_uri, str) and not args.capture_uri:
        p.append(
            bad(
                "capture_uri",
                "",
                "an s3:// URI when data_capture is on",
                "pass the artifact store's capture prefix",
            )
        )
    if not 0 <= args.capture_percent <= 100:
        p.append(
            bad(
                "capture_percent",
                args.capture_percent,
                "between 0 and 100",
                "set endpoint.capturePercent",
            )
        )
    if not 1 <= args.traffic_step_percent <= 50:
        p.append(
            bad(
                "traffic_step_percent",
                args.traffic_step_percent,
                "between 1 and 50",
                "set rollout.trafficStepPercent",
            )
        )
    if not 0 <= args.bake_minutes <= 60:
        p.append(
            bad(
                "bake_minutes",
                args.bake_minutes,
                "between 0 and 60 (SageMaker waits at most 3600 s per step)",
                "set rollout.bakeMinutes",
            )
        )
    raise_problems("ModelEndpoint", p)


def _alarm_specs(args: ModelEndpointArgs) -> dict[str, dict]:
    dims = {"EndpointName": args.endpoint_name, "VariantName": VARIANT}
    common = {
        "namespace": "AWS/SageMaker",
        "dimensions": dims,
        "period": 60,
        "evaluation_periods": 3,
        "datapoints_to_alarm": 2,
        "treat_missing_data": "notBreaching",
    }
    return {
        "errors5xx": dict(
            common,
            metric_name="Invocation5XXErrors",
            statistic="Sum",
            comparison_operator="GreaterThanThreshold",
            threshold=0,
            alarm_description="The endpoint returned 5xx errors",
        ),
        "latency": dict(
            common,
            metric_name="ModelLatency",
            extended_statistic="p99",
            comparison_operator="GreaterThanThreshold",
            threshold=args.latency_threshold_ms * 1000,  # ModelLatency is in µs
            alarm_description=f"p99 model latency above {args.latency_threshold_ms} ms",
        ),
        "invocationErrors": dict(
            common,
            metric_name="InvocationModelErrors",
            statistic="Sum",
            comparison_operator="GreaterThanThreshold",
            threshold=0,
            alarm_description="Invocations the model failed to answer",
        ),
    }


ALARM_SUFFIX = {
    "errors5xx": "5xx-errors",
    "latency": "model-latency",
    "invocationErrors": "invocation-errors",
}


def alarm_name(endpoint_name: str, alarm: str) -> str:
    """CloudWatch name of one of the endpoint's alarms."""
    return f"{endpoint_name}-{ALARM_SUFFIX[alarm]}"


class ModelEndpoint(pulumi.ComponentResource):
    """SageMaker model, endpoint configuration, endpoint, alarms and autoscaling."""

    endpoint_name: pulumi.Output[str]
    endpoint_url: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]

    def __init__(
        self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_model_endpoint_args(args)
        super().__init__("mlops:aws:ModelEndpoint", name, None, opts)
        realtime = args.mode == "realtime"

        model = aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=args.execution_role_arn,
            primary_container={"model_package_name": args.model_package_arn},
            enable_network_isolation=args.network_isolation,
            vpc_config={"subnets": args.subnet_ids, "security_group_ids": args.security_group_ids}
            if args.subnet_ids
            else None,
            tags={"mlops:model-version": args.model_version},
            opts=child(self),
        )
        variant: dict = {"variant_name": VARIANT, "model_name": model.name}
        if realtime:
            variant.update(
                instance_type=args.instance_type,
                initial_instance_count=args.min_instances,
                initial_variant_weight=1,
            )
        else:
            variant["serverless_config"] = {
                "memory_size_in_mb": args.serverless_memory_mb,
                "max_concurrency": args.serverless_max_concurrency,
            }
        config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=[variant],
            kms_key_arn=args.kms_key_arn,
            data_capture_config={
                "enable_capture": True,
                "initial_sampling_percentage": args.capture_percent,
                "destination_s3_uri": args.capture_uri,
                "kms_key_id": args.kms_key_arn,
                "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
                "capture_content_type_header": {
                    "csv_content_types": ["text/csv"],
                    "json_content_types": ["application/json"],
                },
            }
            if args.data_capture
            else None,
            opts=child(self),
        )

        alarms = []
        specs = _alarm_specs(args)
        for key in ROLLBACK_ALARMS:
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{ALARM_SUFFIX[key]}",
                    name=alarm_name(args.endpoint_name, key),
                    alarm_actions=[args.alarm_topic_arn],
                    ok_actions=[args.alarm_topic_arn],
                    **specs[key],
                    opts=child(self),
                )
            )
        by_key = dict(zip(ROLLBACK_ALARMS, alarms, strict=True))

        wait = args.bake_minutes * 60
        routing: dict = {"type": ROUTING[args.strategy], "wait_interval_in_seconds": wait}
        step = {"type": "CAPACITY_PERCENT", "value": args.traffic_step_percent}
        if args.strategy == "canary":
            routing["canary_size"] = step
        elif args.strategy == "linear":
            routing["linear_step_size"] = step
        steps = (
            2
            if args.strategy == "canary"
            else (-(-100 // args.traffic_step_percent) if args.strategy == "linear" else 1)
        )
        deployment: dict = {
            "blue_green_update_policy": {
                "traffic_routing_configuration": routing,
                "termination_wait_in_seconds": min(wait, 3600),
                "maximum_execution_timeout_in_seconds": max(600, min(14400, steps * wait + 1800)),
            }
        }
        if args.auto_rollback:
            deployment["auto_rollback_configuration"] = {
                "alarms": [{"alarm_name": by_key[a].name} for a in args.rollback_alarms]
            }
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=args.endpoint_name,
            endpoint_config_name=config.name,
            deployment_config=deployment if realtime else None,
            tags={"mlops:model-version": args.model_version},
            opts=child(self, depends_on=alarms),
        )
        if realtime:
            target = aws.appautoscaling.Target(
                f"{name}-scaling-target",
                service_namespace="sagemaker",
                resource_id=pulumi.Output.concat("endpoint/", endpoint.name, f"/variant/{VARIANT}"),
                scalable_dimension="sagemaker:variant:DesiredInstanceCount",
                min_capacity=args.min_instances,
                max_capacity=args.max_instances,
                opts=child(self),
            )
            aws.appautoscaling.Policy(
                f"{name}-scaling-policy",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                resource_id=target.resource_id,
                scalable_dimension=target.scalable_dimension,
                target_tracking_scaling_policy_configuration={
                    "target_value": args.target_invocations_per_instance,
                    "predefined_metric_specification": {
                        "predefined_metric_type": "SageMakerVariantInvocationsPerInstance"
                    },
                    "scale_in_cooldown": 300,
                    "scale_out_cooldown": 60,
                },
                opts=child(self),
            )
        self.endpoint_name = endpoint.name
        self.endpoint_url = pulumi.Output.concat(
            f"https://runtime.sagemaker.{args.region}.amazonaws.com/endpoints/",
            endpoint.name,
            "/invocations",
        )
        self.alarm_names = [a.name for a in alarms]
        self.register_outputs(
            {"endpointName": self.endpoint_name, "endpointUrl": self.endpoint_url}
        )
