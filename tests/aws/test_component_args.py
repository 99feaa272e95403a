"""Table-driven tests of the AWS components' argument validators: each bad value is reported
with the field, the value and a fix, and before any resource is created."""

from __future__ import annotations

from dataclasses import replace

import pytest

from components.aws.alerts import AlertsArgs, validate_alerts_args
from components.aws.artifact_store import ArtifactStoreArgs, validate_artifact_store_args
from components.aws.budget import StackBudgetArgs, validate_stack_budget_args
from components.aws.common import aws_cron
from components.aws.data_drift import DataDriftAlertsArgs, validate_data_drift_alerts_args
from components.aws.endpoint import (
    ModelEndpoint,
    ModelEndpointArgs,
    alarm_name,
    validate_model_endpoint_args,
)
from components.aws.identities import IdentitiesArgs, validate_identities_args
from components.aws.keys import StackKeyArgs, validate_stack_key_args
from components.aws.model_registry import ModelRegistryArgs, validate_model_registry_args
from components.aws.monitoring import DriftMonitoringArgs, validate_drift_monitoring_args
from components.aws.network import PrivateNetworkArgs, subnet_cidrs, validate_private_network_args
from components.aws.pipeline import TrainingPipelineArgs, validate_training_pipeline_args
from components.aws.registry import ContainerRegistryArgs, validate_container_registry_args
from components.aws.release import ReleaseTriggerArgs, validate_release_trigger_args
from components.aws.tracking import ExperimentTrackingArgs, validate_experiment_tracking_args
from components.aws.triggers import ContinuousTrainingArgs, validate_continuous_training_args
from core.errors import ArgsError

ARN = "arn:aws:kms:eu-west-1:123456789012:key/k"
REALTIME = ModelEndpointArgs(
    endpoint_name="acme-prod-endpoint",
    model_package_arn="arn:pkg",
    model_version="3",
    execution_role_arn="arn:role",
    kms_key_arn=ARN,
    alarm_topic_arn="arn:topic",
    region="eu-west-1",
    capture_uri="s3://b/capture",
    subnet_ids=["subnet-1"],
    security_group_ids=["sg-1"],
    min_instances=2,
    max_instances=4,
    strategy="canary",
    bake_minutes=10,
)
SERVERLESS = replace(
    REALTIME,
    auto_rollback=False,
    mode="serverless",
    network_isolation=False,
    data_capture=False,
    subnet_ids=[],
    security_group_ids=[],
    strategy="all-at-once",
)
RELEASE = ReleaseTriggerArgs(
    stack="acme-prod",
    rule_name="r",
    model_package_group="g",
    dlq_name="q",
    kms_key_arn=ARN,
    provider="github",
    repository="acme/ml",
    token="t",
    role_arn="arn:role",
)
NETWORK = PrivateNetworkArgs(
    cidr="10.40.0.0/16",
    region="r",
    prefix="a-prod",
    account_id="111122223333",
    kms_key_arn="arn:aws:kms:r:111122223333:key/k",
    boundary_arn="arn:aws:iam::111122223333:policy/a-prod-boundary",
)
MONITOR = DriftMonitoringArgs(
    schedule_name="s",
    endpoint_name="e",
    model_version="3",
    bucket_name="b",
    role_arn="arn:role",
    kms_key_arn=ARN,
    alarm_topic_arn="arn:topic",
    region="eu-west-1",
    dlq_name="q",
)
TRAINING = ContinuousTrainingArgs(
    schedule_name="s",
    cron="0 3 * * 1",
    pipeline_arn="arn:p",
    role_arn="arn:r",
    bucket_name="b",
    kms_key_arn=ARN,
    dlq_name="q",
    rule_name="r",
)

CASES = [
    (
        validate_data_drift_alerts_args,
        DataDriftAlertsArgs(
            rule_name="r",
            pipeline_arn="arn:p",
            alarm_topic_arn="arn:t",
            kms_key_arn=ARN,
            dlq_name="q",
            step_name="validate-data",
        ),
        ["step_name='validate-data'", "ValidateData"],
    ),
    # (validator, args, substrings the message must contain)
    (validate_model_endpoint_args, replace(REALTIME, mode="gpu"), ["mode='gpu'", "realtime"]),
    (
        validate_model_endpoint_args,
        replace(REALTIME, strategy="big-bang"),
        ["strategy='big-bang'", "canary", "rollout.strategy"],
    ),
    (
        validate_model_endpoint_args,
        replace(REALTIME, rollback_alarms=("cpu",)),
        ["rollback_alarms='cpu'", "errors5xx"],
    ),
    (
        validate_model_endpoint_args,
        replace(REALTIME, min_instances=1),
        ["min_instances=1", ">= 2 for canary"],
    ),
    (
        validate_model_endpoint_args,
        replace(REALTIME, min_instances=0, strategy="all-at-once"),
        ["min_instances=0", "endpoint.minInstances"],
    ),
    (
        validate_model_endpoint_args,
        replace(REALTIME, max_instances=1),
        ["max_instances=1", "endpoint.maxInstances"],
    ),
    (
        validate_model_endpoint_args,
        replace(REALTIME, instance_type="m5.large"),
        ["instance_type='m5.large'", "ml.*"],
    ),
    (
        validate_model_endpoint_args,
        replace(REALTIME, instance_type="ml.m5d.xlarge"),
        ["ml.m5d.xlarge", "local NVMe"],
    ),
    (
        validate_model_endpoint_args,
        replace(REALTIME, security_group_ids=[]),
        ["security_group_ids", "together with subnet_ids"],
    ),
    (
        validate_model_endpoint_args,
        replace(SERVERLESS, network_isolation=True),
        ["network_isolation=True", "serverless", "endpoint.mode realtime"],
    ),
    (
        validate_model_endpoint_args,
        replace(SERVERLESS, data_capture=True),
        ["data_capture=True", "serverless"],
    ),
    (
        validate_model_endpoint_args,
        replace(SERVERLESS, auto_rollback=True),
        ["auto_rollback=True", "no deployment guardrails"],
    ),
    (
        validate_model_endpoint_args,
        replace(SERVERLESS, strategy="canary"),
        ["strategy='canary'", "all-at-once"],
    ),
    (
        validate_model_endpoint_args,
        replace(SERVERLESS, subnet_ids=["subnet-1"]),
        ["subnet_ids", "serverless"],
    ),
    (
        validate_model_endpoint_args,
        replace(SERVERLESS, serverless_memory_mb=1000),
        ["serverless_memory_mb=1000", "1024"],
    ),
    (validate_model_endpoint_args, replace(REALTIME, capture_uri=""), ["capture_uri", "s3://"]),
    (
        validate_model_endpoint_args,
        replace(REALTIME, bake_minutes=90),
        ["bake_minutes=90", "rollout.bakeMinutes"],
    ),
    (
        validate_model_endpoint_args,
        replace(REALTIME, endpoint_name="bad_name!"),
        ["endpoint_name='bad_name!'"],
    ),
    (
        validate_stack_key_args,
        StackKeyArgs(prefix="p", account_id="1", region="r", deletion_window_days=3),
        ["deletion_window_days=3", "between 7 and 30"],
    ),
    (
        validate_stack_key_args,
        StackKeyArgs(prefix="p", account_id="1", region="r", service_principals=("*",)),
        ["service_principals='*'", "service principal"],
    ),
    (
        validate_artifact_store_args,
        ArtifactStoreArgs(
            prefix="p", account_id="1", region="r", kms_key_arn=ARN, noncurrent_days=0
        ),
        ["noncurrent_days=0", "stores.noncurrentDays"],
    ),
    (
        validate_artifact_store_args,
        ArtifactStoreArgs(prefix="p" * 40, account_id="1", region="r", kms_key_arn=ARN),
        ["prefix=", "63-character"],
    ),
    (
        validate_container_registry_args,
        ContainerRegistryArgs(repository_name="r", kms_key_arn=ARN, keep_images=0),
        ["keep_images=0"],
    ),
    (
        validate_identities_args,
        IdentitiesArgs(
            prefix="p" * 60,
            account_id="1",
            region="r",
            bucket_arn="b",
            kms_key_arn=ARN,
            repository_arn="r",
        ),
        ["role names", "64"],
    ),
    (
        validate_private_network_args,
        PrivateNetworkArgs(cidr="8.8.0.0/16", region="r"),
        ["cidr='8.8.0.0/16'", "private"],
    ),
    (
        validate_private_network_args,
        PrivateNetworkArgs(cidr="10.0.0.0/8", region="r"),
        ["cidr='10.0.0.0/8'", "/16 to /24"],
    ),
    (
        validate_private_network_args,
        PrivateNetworkArgs(cidr="nonsense", region="r"),
        ["cidr='nonsense'", "IPv4"],
    ),
    (
        validate_private_network_args,
        PrivateNetworkArgs(cidr="10.0.0.0/16", region="r", zones=1),
        ["zones=1", "2 or 3"],
    ),
    (
        validate_private_network_args,
        replace(NETWORK, flow_log_retention_days=30),
        ["flow_log_retention_days=30", "at least 90", "365"],
    ),
    (
        validate_private_network_args,
        replace(NETWORK, kms_key_arn=None),
        ["kms_key_arn=None", "encrypted flow logs"],
    ),
    (
        validate_experiment_tracking_args,
        ExperimentTrackingArgs(
            server_name="s", artifact_store_uri="s3://b/mlflow", role_arn="r", size="Huge"
        ),
        ["size='Huge'", "Small", "tracking.size"],
    ),
    (
        validate_model_registry_args,
        ModelRegistryArgs(group_name="g", region="r", account_id="1", reader_account="12345"),
        ["reader_account='12345'", "promotion.targetAccount"],
    ),
    (
        validate_model_registry_args,
        ModelRegistryArgs(group_name="bad group", region="r", account_id="1"),
        ["group_name='bad group'"],
    ),
    (
        validate_training_pipeline_args,
        TrainingPipelineArgs(pipeline_name="p", definition="not json", role_arn="r"),
        ["definition=", "compile_definition"],
    ),
    (
        validate_continuous_training_args,
        replace(TRAINING, cron="every monday"),
        ["cron", "schedule.cron"],
    ),
    (
        validate_continuous_training_args,
        replace(TRAINING, cron="0 3 1 * 1"),
        ["day-of-month and day-of-week"],
    ),
    (
        validate_continuous_training_args,
        replace(TRAINING, raw_prefix="raw"),
        ["raw_prefix='raw'", "ending in '/'"],
    ),
    (
        validate_release_trigger_args,
        replace(RELEASE, provider="gitlab"),
        ["provider='gitlab'", "github", "release.provider"],
    ),
    (
        validate_release_trigger_args,
        replace(RELEASE, token=None),
        ["token=None", "pulumi config set --secret mlops:releaseToken"],
    ),
    (
        validate_release_trigger_args,
        replace(RELEASE, repository="no-slash"),
        ["repository='no-slash'", "release.repository"],
    ),
    (validate_release_trigger_args, replace(RELEASE, role_arn=None), ["role_arn=None"]),
    (
        validate_release_trigger_args,
        replace(RELEASE, provider="none"),
        ["fallback_topic_arn=None", "alerts topic"],
    ),
    (validate_release_trigger_args, replace(RELEASE, max_retries=500), ["max_retries=500"]),
    (
        validate_drift_monitoring_args,
        replace(MONITOR, region="xx-nowhere-1"),
        ["region='xx-nowhere-1'", "Model Monitor"],
    ),
    (
        validate_drift_monitoring_args,
        replace(MONITOR, cron="30 * * * *"),
        ["cron='30 * * * *'", "drift.checkCron"],
    ),
    (
        validate_drift_monitoring_args,
        replace(MONITOR, max_runtime_minutes=120),
        ["max_runtime_minutes=120"],
    ),
    (
        validate_alerts_args,
        AlertsArgs(topic_name="t", account_id="1", kms_key_arn=ARN, publishers=("*",)),
        ["publishers='*'"],
    ),
    (
        validate_stack_budget_args,
        StackBudgetArgs(budget_name="b", stack="s", monthly_usd=0, alert_topic_arn="t"),
        ["monthly_usd=0", "budget.monthlyUsd"],
    ),
    (
        validate_stack_budget_args,
        StackBudgetArgs(
            budget_name="b", stack="s", monthly_usd=10, alert_topic_arn="t", alert_percents=(0,)
        ),
        ["alert_percents=0", "budget.alertPercents"],
    ),
]


@pytest.mark.parametrize(
    ("validate", "args", "expected"),
    CASES,
    ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)],
)
def test_bad_args_are_reported(validate, args, expected):
    with pytest.raises(ArgsError, match=r"invalid argument\(s\); nothing was created") as err:
        validate(args)
    text = str(err.value)
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in {text!r}"


@pytest.mark.parametrize(
    ("validate", "args"),
    [
        (validate_model_endpoint_args, REALTIME),
        (validate_model_endpoint_args, SERVERLESS),
        (validate_release_trigger_args, RELEASE),
        (
            validate_release_trigger_args,
            replace(
                RELEASE,
                provider="none",
                token=None,
                repository=None,
                fallback_topic_arn="arn:topic",
            ),
        ),
        (validate_drift_monitoring_args, MONITOR),
        (validate_continuous_training_args, TRAINING),
        (validate_private_network_args, NETWORK),
    ],
)
def test_good_args_pass(validate, args):
    validate(args)  # raises ArgsError on any problem


def test_component_refuses_bad_args_before_creating_anything():
    # No Pulumi runtime is set up here: reaching resource registration would fail differently.
    with pytest.raises(ArgsError, match=r"ModelEndpoint: 2 invalid argument\(s\)") as err:
        ModelEndpoint("e", replace(SERVERLESS, network_isolation=True, data_capture=True))
    assert "network_isolation=True" in str(err.value) and "data_capture=True" in str(err.value)


@pytest.mark.parametrize(
    ("cron", "aws"),
    [
        ("0 3 * * 1", "cron(0 3 ? * 2 *)"),
        ("0 * * * *", "cron(0 * ? * * *)"),
        ("15 2 1 * *", "cron(15 2 1 * ? *)"),
        ("0 6 * * 0,6", "cron(0 6 ? * 1,7 *)"),
        ("0 6 * * 1-5", "cron(0 6 ? * 2-6 *)"),
    ],
)
def test_aws_cron(cron, aws):
    assert aws_cron(cron) == aws


def test_helpers():
    assert subnet_cidrs("10.40.0.0/16", 2) == ["10.40.0.0/18", "10.40.64.0/18"]
    assert subnet_cidrs("10.1.2.0/24", 3) == ["10.1.2.0/26", "10.1.2.64/26", "10.1.2.128/26"]
    assert alarm_name("e", "errors5xx") == "e-5xx-errors"
