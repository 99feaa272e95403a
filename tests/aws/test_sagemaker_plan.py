"""The sagemaker blueprint under the offline plan: controls, capabilities, outputs, wiring.

Plans come from the shared `plan_for` fixture (cached per stack and overrides)."""

from __future__ import annotations

import json

import pytest

from blueprints import sagemaker
from components.aws.pipeline import kit_version
from core.contract import ENDPOINT_CAPABILITIES, OUTPUT_NAMES, Capability
from core.controls import aws as aws_controls

ACCOUNT = "123456789012"
REGION = "eu-west-1"
DEV_FULL = {  # dev with everything the tier turns off switched on
    "model": "1",
    "endpoint": {"mode": "realtime", "minInstances": 1, "maxInstances": 2},
    "network": {"mode": "private"},
    "tracking": {"enabled": True},
    "promotion": {"target": "acme-prod", "targetAccount": "210987654321"},
}


def _policy(record) -> dict:
    doc = record.inputs["policy"]
    return json.loads(doc) if isinstance(doc, str) else doc


def _statements(doc) -> list[dict]:
    doc = json.loads(doc) if isinstance(doc, str) else doc
    st = doc["Statement"]
    return [st] if isinstance(st, dict) else st


def _image_fields(node) -> list[str]:
    """Values of every `*Image` / `*ImageUri` key in a pipeline definition."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith(("Image", "ImageUri")) and isinstance(value, str):
                found.append(value)
            found += _image_fields(value)
    elif isinstance(node, list):
        for item in node:
            found += _image_fields(item)
    return found


def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


# --- controls ----------------------------------------------------------------------------------


def test_every_aws_control_passes_for_acme_prod(plan_for):
    plan = plan_for("acme-prod")
    not_passing = [
        (f.control.id, f.status, f.failures, f.note) for f in plan.findings if f.status != "pass"
    ]
    assert not_passing == [], not_passing
    assert {f.control.id for f in plan.findings} == {c.id for c in aws_controls.CONTROLS}
    assert plan.settings.suppressions == ()


@pytest.mark.parametrize(
    "overrides", [{}, {"model": "1"}, DEV_FULL], ids=["dev", "dev+model", "dev+all-on"]
)
def test_dev_fails_nothing_and_waives_only_documented_exceptions(plan_for, overrides):
    plan = plan_for("acme-dev", **overrides)
    assert plan.failed_controls == [], [(f.control.id, f.failures) for f in plan.failed_controls]
    for f in plan.findings:
        if f.status == "waived":
            assert f.control.dev_exception, f"{f.control.id} waived without a dev exception"
        assert f.status in ("pass", "waived", "n/a"), (f.control.id, f.status)


def test_dev_waivers_are_exactly_the_tier_relaxations(plan_for):
    waived = {
        f.control.id for f in plan_for("acme-dev", model="1").findings if f.status == "waived"
    }
    assert waived == {
        "AWS-S3-18",
        "AWS-S3-19",
        "AWS-KMS-03",
        "AWS-KMS-04",
        "AWS-ECR-05",
        "AWS-SM-12",
        "AWS-SM-01",
        "AWS-SM-02",
        "AWS-SM-04",
        "AWS-SM-05",
        "AWS-SM-06",
        "AWS-SM-07",
    }


def test_controls_table_is_well_formed_and_documented():
    from core.controls import CHECKS, validate_table

    assert validate_table(aws_controls.CONTROLS) == []
    for c in aws_controls.CONTROLS:
        assert c.platform == "aws" and c.check in CHECKS
        assert c.id.startswith("AWS-") and c.title and len(c.rationale) > 20, c.id


# --- capabilities and outputs -------------------------------------------------------------------


def test_prod_provides_every_capability(plan_for):
    plan = plan_for("acme-prod")
    assert plan.missing_capabilities == []
    assert all(n >= 1 for n in plan.capabilities.values()), plan.capabilities
    assert set(sagemaker.CAPABILITIES) == set(Capability)


def test_dev_with_everything_switched_on_provides_every_capability(plan_for):
    plan = plan_for("acme-dev", **DEV_FULL)
    assert [c for c, n in plan.capabilities.items() if n == 0] == []


def test_dev_defaults_lack_only_what_the_tier_switches_off(plan_for):
    # tracking.enabled=false, network.mode=public and the serverless endpoint (no data capture,
    # no deployment guardrails) are the dev tier's choices; the blueprint says so, and the plan
    # reports them as switched off rather than missing.
    def absent(plan):
        return {c for c, n in plan.capabilities.items() if n == 0}

    dev = plan_for("acme-dev")
    assert dev.missing_capabilities == []
    assert absent(dev) == {"experiment-tracking", "network-isolation"} | {
        c.value for c in ENDPOINT_CAPABILITIES
    }
    with_model = plan_for("acme-dev", model="1")
    assert with_model.missing_capabilities == []
    assert absent(with_model) == {
        "experiment-tracking",
        "network-isolation",
        "data-capture",
        "guarded-rollout",
    }
    for cap in ENDPOINT_CAPABILITIES - {Capability.DATA_CAPTURE, Capability.GUARDED_ROLLOUT}:
        assert with_model.capabilities[cap.value] >= 1, cap
    assert {c.value for c in sagemaker.disabled_capabilities(with_model.settings)} == absent(
        with_model
    )
    assert set(with_model.capabilities_off) == absent(with_model)
    assert sagemaker.disabled_capabilities(plan_for("acme-prod").settings) == {}


def test_training_data_drift_is_alerted_without_an_endpoint(plan_for):
    plan = plan_for("acme-dev")
    rule = plan.one("aws:cloudwatch/eventRule:EventRule", "acme-dev-data-drift-rule")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail"] == {
        "pipelineArn": [plan.one("aws:sagemaker/pipeline:Pipeline").outputs["arn"]],
        "stepName": ["ValidateData"],
        "currentStepStatus": ["Failed"],
    }
    definition = json.loads(
        plan.one("aws:sagemaker/pipeline:Pipeline").inputs["pipelineDefinition"]
    )
    assert "ValidateData" in [step["Name"] for step in definition["Steps"]]
    target = plan.one("aws:cloudwatch/eventTarget:EventTarget", "acme-dev-data-drift-alert")
    assert target.inputs["arn"] == plan.one("aws:sns/topic:Topic").outputs["arn"]
    assert plan.capabilities["drift-monitoring"] == 1


def test_endpoint_capabilities_appear_only_with_a_model(plan_for):
    plan = plan_for("acme-dev")
    for cap in ENDPOINT_CAPABILITIES:
        assert plan.capabilities[cap.value] == 0, cap
    assert plan.by_type("aws:sagemaker/endpoint:Endpoint") == []


@pytest.mark.parametrize("stack", ["acme-prod", "acme-dev"])
def test_outputs_are_exactly_the_contract(plan_for, stack):
    plan = plan_for(stack)
    assert tuple(plan.outputs) == OUTPUT_NAMES or set(plan.outputs) == set(OUTPUT_NAMES)
    assert len(plan.outputs) == len(OUTPUT_NAMES)


def test_output_values(plan_for):
    prod, dev = plan_for("acme-prod").outputs, plan_for("acme-dev").outputs
    assert prod["blueprint"] == "sagemaker" and prod["environment"] == "prod"
    assert prod["artifactStoreUri"] == f"s3://acme-prod-{ACCOUNT}-{REGION}-data"
    assert prod["endpointName"] == "acme-prod-endpoint" and prod["modelVersion"] == "3"
    assert prod["endpointUrl"] == (
        f"https://runtime.sagemaker.{REGION}.amazonaws.com/endpoints/acme-prod-endpoint/invocations"
    )
    assert prod["network"].startswith("vpc-")
    assert prod["trackingUri"].endswith(":mlflow-tracking-server/acme-prod-mlflow")
    assert prod["secretStore"].startswith(f"arn:aws:secretsmanager:{REGION}:")
    assert (dev["endpointName"], dev["endpointUrl"], dev["modelVersion"]) == ("", "", "")
    assert dev["trackingUri"] == "" and dev["network"] == ""
    for name in ("pipelineIdentity", "servingIdentity", "releaseIdentity", "monitoringIdentity"):
        assert prod[name].startswith(f"arn:aws:iam::{ACCOUNT}:role/acme-prod-"), name


# --- wiring ------------------------------------------------------------------------------------


def test_release_rule_targets_this_group_and_approved_status(plan_for):
    plan = plan_for("acme-prod")
    group = plan.one("aws:sagemaker/modelPackageGroup:ModelPackageGroup")
    rule = plan.one("aws:cloudwatch/eventRule:EventRule", "acme-prod-release-rule")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail-type"] == ["SageMaker Model Package State Change"]
    assert pattern["detail"]["ModelPackageGroupName"] == [group.inputs["modelPackageGroupName"]]
    assert pattern["detail"]["ModelApprovalStatus"] == ["Approved"]
    target = plan.one("aws:cloudwatch/eventTarget:EventTarget", "acme-prod-release-dispatch")
    destination = plan.one("aws:cloudwatch/eventApiDestination:EventApiDestination")
    assert target.inputs["rule"] == rule.inputs["name"]
    assert target.inputs["arn"] == destination.outputs["arn"]
    assert destination.inputs["invocationEndpoint"] == (
        "https://api.github.com/repos/acme/ml-platform/dispatches"
    )
    dlq = plan.one("aws:sqs/queue:Queue", "acme-prod-release-dlq")
    assert target.inputs["deadLetterConfig"]["arn"] == dlq.outputs["arn"]
    assert target.inputs["retryPolicy"]["maximumRetryAttempts"] >= 1
    assert target.inputs["roleArn"].endswith(":role/acme-prod-release")


def test_release_token_stays_secret(plan_for):
    plan = plan_for("acme-prod")
    connection = plan.one("aws:cloudwatch/eventConnection:EventConnection")
    # the provider marks the whole auth block secret; the token never shows in plain text
    assert connection.inputs["authParameters"] == "[secret]"
    assert connection.inputs["kmsKeyIdentifier"] == plan.one("aws:kms/key:Key").outputs["arn"]
    everything = json.dumps([r.inputs for r in plan.records]) + json.dumps(plan.outputs)
    assert "placeholder" not in everything and "Bearer " not in everything


def test_dev_without_ci_announces_approvals_on_the_alerts_topic(plan_for):
    plan = plan_for("acme-dev")
    assert plan.by_type("aws:cloudwatch/eventConnection:EventConnection") == []
    target = plan.one("aws:cloudwatch/eventTarget:EventTarget", "acme-dev-release-announce")
    assert target.inputs["arn"] == plan.one("aws:sns/topic:Topic").outputs["arn"]


def test_rollback_alarms_exist_and_watch_the_endpoint(plan_for):
    plan = plan_for("acme-prod")
    endpoint = plan.one("aws:sagemaker/endpoint:Endpoint")
    named = [
        a["alarmName"]
        for a in endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]
    ]
    alarms = {r.inputs["name"]: r for r in plan.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert len(named) == 3
    for name in named:
        assert name in alarms, f"rollback alarm {name} is not in the stack"
        dims = alarms[name].inputs["dimensions"]
        assert dims == {"EndpointName": endpoint.inputs["name"], "VariantName": "AllTraffic"}
    metrics = {alarms[n].inputs["metricName"] for n in named}
    assert metrics == {"Invocation5XXErrors", "ModelLatency", "InvocationModelErrors"}
    latency = next(alarms[n] for n in named if alarms[n].inputs["metricName"] == "ModelLatency")
    assert latency.inputs["threshold"] == 500 * 1000  # µs
    routing = endpoint.inputs["deploymentConfig"]["blueGreenUpdatePolicy"][
        "trafficRoutingConfiguration"
    ]
    assert routing == {
        "type": "CANARY",
        "waitIntervalInSeconds": 600,
        "canarySize": {"type": "CAPACITY_PERCENT", "value": 10},
    }


def test_endpoint_serves_the_pinned_package_in_the_vpc(plan_for):
    plan = plan_for("acme-prod")
    model = plan.one("aws:sagemaker/model:Model", "acme-prod-endpoint-model")
    assert model.inputs["primaryContainer"]["modelPackageName"] == (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/acme-prod-models/3"
    )
    subnets = {r.outputs["id"] for r in plan.by_type("aws:ec2/subnet:Subnet")}
    assert len(subnets) == 2 and set(model.inputs["vpcConfig"]["subnets"]) == subnets
    workloads = plan.one("aws:ec2/securityGroup:SecurityGroup", "acme-prod-network-workloads")
    assert model.inputs["vpcConfig"]["securityGroupIds"] == [workloads.outputs["id"]]
    config = plan.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    variant = config.inputs["productionVariants"][0]
    assert variant["modelName"] == model.outputs["name"]
    assert variant["instanceType"] == "ml.m5.xlarge" and variant["initialInstanceCount"] == 2
    key_arn = plan.one("aws:kms/key:Key").outputs["arn"]
    assert config.inputs["kmsKeyArn"] == key_arn
    assert config.inputs["dataCaptureConfig"]["kmsKeyId"] == key_arn
    assert config.inputs["dataCaptureConfig"]["destinationS3Uri"] == (
        f"s3://acme-prod-{ACCOUNT}-{REGION}-data/capture"
    )
    endpoint = plan.one("aws:sagemaker/endpoint:Endpoint")
    assert endpoint.inputs["endpointConfigName"] == config.outputs["name"]
    assert model.inputs["executionRoleArn"].endswith(":role/acme-prod-serving")


def test_autoscaling_targets_the_variant(plan_for):
    plan = plan_for("acme-prod")
    target = plan.one("aws:appautoscaling/target:Target")
    assert target.inputs["resourceId"] == "endpoint/acme-prod-endpoint/variant/AllTraffic"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 6)
    policy = plan.one("aws:appautoscaling/policy:Policy")
    assert policy.inputs["resourceId"] == target.inputs["resourceId"]
    spec = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert spec["predefinedMetricSpecification"]["predefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    dev = plan_for("acme-dev", model="1")
    assert dev.by_type("aws:appautoscaling/target:Target") == []
    variant = dev.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs[
        "productionVariants"
    ][0]
    assert variant["serverlessConfig"] == {"memorySizeInMb": 2048, "maxConcurrency": 5}


def test_roles_are_scoped_to_the_stack_bucket_and_key(plan_for):
    plan = plan_for("acme-prod")
    bucket_arn = plan.one("aws:s3/bucket:Bucket", "acme-prod-artifacts-data").outputs["arn"]
    key_arn = plan.one("aws:kms/key:Key").outputs["arn"]
    # The CI deploy role (acme-prod-ci-deploy) applies the whole stack, so it reaches beyond
    # the bucket and key by design; tests/release/test_ci_identity.py scopes it instead.
    policies = [
        r for r in plan.by_type("aws:iam/rolePolicy:RolePolicy") if r.name != "acme-prod-ci-deploy"
    ]
    assert len(policies) == 9  # six duty roles, the VPC flow-log role, two batch-scoring grants
    s3_seen = kms_seen = 0
    for record in policies:
        for st in _statements(record.inputs["policy"]):
            actions, resources = _as_list(st["Action"]), _as_list(st["Resource"])
            assert not ("*" in actions and "*" in resources), record.name
            if any(a.startswith("s3:") for a in actions):
                s3_seen += 1
                assert all(r == bucket_arn or r.startswith(bucket_arn + "/") for r in resources), (
                    record.name,
                    resources,
                )
            if any(a.startswith("kms:") for a in actions):
                kms_seen += 1
                assert resources == [key_arn], (record.name, resources)
            if "*" in resources:
                assert all(":" in a and not a.endswith(":*") for a in actions), (record.name, st)
    assert s3_seen >= 8 and kms_seen == 5  # every role but the release bridge


def test_pipeline_role_grants_name_this_stack(plan_for):
    plan = plan_for("acme-prod")
    doc = json.dumps(
        _policy(plan.one("aws:iam/rolePolicy:RolePolicy", "acme-prod-identities-pipeline-policy"))
    )
    assert "model-package-group/acme-prod-models" in doc
    assert f"arn:aws:iam::{ACCOUNT}:role/acme-prod-pipeline" in doc  # PassRole to itself only
    trigger = json.dumps(
        _policy(plan.one("aws:iam/rolePolicy:RolePolicy", "acme-prod-identities-trigger-policy"))
    )
    assert f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/acme-prod-training" in trigger


def test_pipeline_is_compiled_for_the_stack(plan_for):
    plan = plan_for("acme-prod")
    pipeline = plan.one("aws:sagemaker/pipeline:Pipeline", "acme-prod-pipeline-pipeline")
    assert pipeline.inputs["pipelineName"] == "acme-prod-training"
    assert pipeline.inputs["roleArn"].endswith(":role/acme-prod-pipeline")
    definition = json.loads(pipeline.inputs["pipelineDefinition"])
    assert {p["Name"] for p in definition["Parameters"]} >= {"DataUri"}
    text = json.dumps(definition)
    for subnet in (r.outputs["id"] for r in plan.by_type("aws:ec2/subnet:Subnet")):
        assert subnet in text, f"pipeline jobs do not run in {subnet}"
    assert plan.settings.image and "@sha256:" in plan.settings.image
    images = _image_fields(definition)
    assert len(images) >= 6  # every step, and the model package's inference image
    assert set(images) == {plan.settings.image}  # prod runs the digest-pinned kit image
    assert plan.one("aws:kms/key:Key").outputs["arn"] in text
    assert '"EnableManagedSpotTraining": true' not in text


def test_dev_trains_on_spot(plan_for):
    definition = (
        plan_for("acme-dev").one("aws:sagemaker/pipeline:Pipeline").inputs["pipelineDefinition"]
    )
    assert '"EnableManagedSpotTraining": true' in definition
    repo = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/acme-dev-mlops"
    assert f'"ImageUri": "{repo}:{kit_version()}"' in definition  # no mlops:image in dev


def test_continuous_training_starts_the_pipeline(plan_for):
    plan = plan_for("acme-prod")
    pipeline_arn = plan.one(
        "aws:sagemaker/pipeline:Pipeline", "acme-prod-pipeline-pipeline"
    ).outputs["arn"]
    schedule = plan.one("aws:scheduler/schedule:Schedule", "acme-prod-continuous-training-schedule")
    assert schedule.inputs["scheduleExpression"] == "cron(0 3 ? * 2 *)"  # "0 3 * * 1": Monday
    assert schedule.inputs["target"]["arn"] == pipeline_arn
    assert schedule.inputs["target"]["roleArn"].endswith(":role/acme-prod-trigger")
    rule = plan.one("aws:cloudwatch/eventRule:EventRule", "acme-prod-continuous-training-new-data")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail"]["bucket"]["name"] == [f"acme-prod-{ACCOUNT}-{REGION}-data"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "raw/"}]
    target = plan.one(
        "aws:cloudwatch/eventTarget:EventTarget", "acme-prod-continuous-training-new-data-target"
    )
    assert target.inputs["arn"] == pipeline_arn
    notification = plan.one("aws:s3/bucketNotification:BucketNotification")
    assert notification.inputs["eventbridge"] is True


def test_monitoring_watches_the_endpoint_against_the_baseline(plan_for):
    plan = plan_for("acme-prod")
    job = plan.one("aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition")
    assert job.inputs["dataQualityJobInput"]["endpointInput"]["endpointName"] == (
        "acme-prod-endpoint"
    )
    baseline = job.inputs["dataQualityBaselineConfig"]["statisticsResource"]["s3Uri"]
    assert (
        baseline == f"s3://acme-prod-{ACCOUNT}-{REGION}-data/monitoring/baseline/v3/statistics.json"
    )
    assert job.inputs["roleArn"].endswith(":role/acme-prod-monitoring")
    assert job.inputs["dataQualityAppSpecification"]["imageUri"].startswith(
        f"468650794304.dkr.ecr.{REGION}.amazonaws.com/"
    )
    schedule = plan.one("aws:sagemaker/monitoringSchedule:MonitoringSchedule")
    assert (
        schedule.inputs["monitoringScheduleConfig"]["monitoringJobDefinitionName"]
        == (job.outputs["name"])
    )
    assert (
        schedule.inputs["monitoringScheduleConfig"]["scheduleConfig"]["scheduleExpression"]
        == "cron(0 * ? * * *)"
    )
    rule = plan.one("aws:cloudwatch/eventRule:EventRule", "acme-prod-drift-violations")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail"]["MonitoringScheduleArn"] == [schedule.outputs["arn"]]
    drift = plan.one("aws:cloudwatch/metricAlarm:MetricAlarm", "acme-prod-drift-drift-alarm")
    assert drift.inputs["dimensions"] == {"RuleName": rule.inputs["name"]}


def test_alerts_and_budget(plan_for):
    plan = plan_for("acme-prod")
    topic_arn = plan.one("aws:sns/topic:Topic").outputs["arn"]
    for alarm in plan.by_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        assert alarm.inputs["alarmActions"] == [topic_arn], alarm.name
    budget = plan.one("aws:budgets/budget:Budget")
    assert budget.inputs["limitAmount"] == "5000.00"
    assert budget.inputs["costFilters"] == [
        {"name": "TagKeyValue", "values": ["user:mlops:stack$acme-prod"]}
    ]
    thresholds = {(n["notificationType"], n["threshold"]) for n in budget.inputs["notifications"]}
    assert thresholds == {(k, p) for k in ("ACTUAL", "FORECASTED") for p in (50, 80, 100)}
    assert all(n["subscriberSnsTopicArns"] == [topic_arn] for n in budget.inputs["notifications"])
    provider = next(r for r in plan.records if r.type == "pulumi:providers:aws")
    tags = provider.inputs["defaultTags"]
    tags = json.loads(tags) if isinstance(tags, str) else tags
    assert tags["tags"]["mlops:stack"] == "acme-prod" and provider.inputs["region"] == REGION


@pytest.mark.parametrize(
    "type_",
    [
        "aws:s3/bucket:Bucket",
        "aws:kms/key:Key",
        "aws:ecr/repository:Repository",
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
        "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer",
    ],
)
def test_prod_stores_are_protected_and_retained(plan_for, type_):
    records = plan_for("acme-prod").by_type(type_)
    assert records, type_
    for r in records:
        assert r.options["protect"] and r.options["retainOnDelete"], r.name
    for r in plan_for("acme-dev").by_type(type_):
        assert not r.options["protect"], r.name


def test_registry_policy_only_with_a_target_account(plan_for):
    assert (
        plan_for("acme-dev").by_type(
            "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy"
        )
        == []
    )
    plan = plan_for("acme-dev", **DEV_FULL)
    policy = plan.one("aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy")
    statements = _statements(policy.inputs["resourcePolicy"])
    assert {st["Principal"]["AWS"] for st in statements} == {"arn:aws:iam::210987654321:root"}
    actions = {a for st in statements for a in st["Action"]}
    assert actions == {
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:DescribeModelPackage",
        "sagemaker:ListModelPackages",
    }


def test_network_has_endpoints_for_every_service_and_no_internet(plan_for):
    plan = plan_for("acme-prod")
    services = {r.inputs["serviceName"] for r in plan.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert services == {
        f"com.amazonaws.{REGION}.{s}"
        for s in (
            "s3",
            "sagemaker.api",
            "sagemaker.runtime",
            "ecr.api",
            "ecr.dkr",
            "sts",
            "monitoring",
            "logs",
        )
    }
    assert plan.by_type("aws:ec2/internetGateway:InternetGateway") == []
    assert plan.by_type("aws:ec2/natGateway:NatGateway") == []
    zones = {r.inputs["availabilityZone"] for r in plan.by_type("aws:ec2/subnet:Subnet")}
    assert zones == {f"{REGION}a", f"{REGION}b"}


def test_serverless_endpoint_has_no_guardrails_but_keeps_its_alarms(plan_for):
    plan = plan_for("acme-dev", model="1")
    endpoint = plan.one("aws:sagemaker/endpoint:Endpoint")
    assert "deploymentConfig" not in endpoint.inputs or not endpoint.inputs["deploymentConfig"]
    model = plan.one("aws:sagemaker/model:Model")
    assert model.inputs["enableNetworkIsolation"] is False and "vpcConfig" not in model.inputs
    config = plan.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert "dataCaptureConfig" not in config.inputs
    alarms = [
        a
        for a in plan.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs.get("namespace") == "AWS/SageMaker"
    ]
    assert {a.inputs["name"] for a in alarms} == {
        "acme-dev-endpoint-5xx-errors",
        "acme-dev-endpoint-model-latency",
        "acme-dev-endpoint-invocation-errors",
    }
    assert plan.outputs["trainingCompute"] == "SageMaker training jobs (ml.m5.large x1, spot)"
