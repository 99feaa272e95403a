"""Stack config validation: tier defaults, and every malformed config reported with the key,
the bad value, the allowed values and the fix, all at once, before any resource exists."""

from __future__ import annotations

from typing import Any

import pytest

from core.config import (
    ConfigError,
    list_stacks,
    load_stack,
    read_stack_file,
    stack_file,
    validate_settings,
)

BASE = {"mlops:blueprint": "sagemaker", "mlops:client": "acme", "mlops:environment": "dev"}


def problems_of(config: dict[str, Any], secrets: set[str] = frozenset()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_settings(config, secrets, stack="acme-dev")
    return [str(p) for p in info.value.problems]


# (case id, keys layered over BASE, the key named, text the message must contain)
MALFORMED: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "unknown blueprint",
        {"mlops:blueprint": "sagemakr"},
        "mlops:blueprint='sagemakr'",
        "is not one of sagemaker, azureml, onprem",
    ),
    (
        "unknown environment",
        {"mlops:environment": "qa"},
        "mlops:environment='qa'",
        "is not one of dev, staging, prod",
    ),
    (
        "client with capitals",
        {"mlops:client": "Acme"},
        "mlops:client='Acme'",
        "lowercase letters and digits",
    ),
    ("client too long", {"mlops:client": "a" * 25}, "mlops:client=", "does not match"),
    (
        "unknown top-level key",
        {"mlops:endpont": {"mode": "realtime"}},
        "mlops:endpont",
        "did you mean mlops:endpoint?",
    ),
    (
        "unknown nested key",
        {"mlops:endpoint": {"minInstanses": 2}},
        "mlops:endpoint.minInstanses",
        "did you mean endpoint.minInstances?",
    ),
    (
        "endpoint mode gpu",
        {"mlops:endpoint": {"mode": "gpu"}},
        "mlops:endpoint.mode='gpu'",
        "is not one of realtime, serverless; set endpoint.mode in Pulumi.acme-dev.yaml",
    ),
    (
        "negative min instances",
        {"mlops:endpoint": {"minInstances": -1}},
        "mlops:endpoint.minInstances=-1",
        "greater than or equal to 0",
    ),
    (
        "max below min",
        {"mlops:endpoint": {"minInstances": 3, "maxInstances": 2}},
        "mlops:endpoint.maxInstances=2",
        "below endpoint.minInstances=3",
    ),
    (
        "serverless memory not offered",
        {"mlops:endpoint": {"serverlessMemoryMb": 1000}},
        "mlops:endpoint.serverlessMemoryMb=1000",
        "is not one of 1024, 2048",
    ),
    (
        "rollout strategy",
        {"mlops:rollout": {"strategy": "bluegreen"}},
        "mlops:rollout.strategy='bluegreen'",
        "is not one of all-at-once, canary, linear",
    ),
    (
        "traffic step too large",
        {"mlops:rollout": {"trafficStepPercent": 80}},
        "mlops:rollout.trafficStepPercent=80",
        "less than or equal to 50",
    ),
    (
        "unknown rollback alarm",
        {"mlops:rollout": {"alarms": ["errors5xx", "cpu"]}},
        "mlops:rollout.alarms.1='cpu'",
        "is not one of errors5xx, latency, invocationErrors",
    ),
    (
        "approval mode",
        {"mlops:approval": {"mode": "yes"}},
        "mlops:approval.mode='yes'",
        "is not one of auto, manual",
    ),
    (
        "bad cron",
        {"mlops:schedule": {"cron": "every monday"}},
        "mlops:schedule.cron='every monday'",
        "is not a 5-field cron expression",
    ),
    (
        "six-field cron",
        {"mlops:drift": {"checkCron": "0 0 * * * *"}},
        "mlops:drift.checkCron='0 0 * * * *'",
        "is not a 5-field cron expression",
    ),
    (
        "drift threshold zero",
        {"mlops:drift": {"threshold": 0}},
        "mlops:drift.threshold=0",
        "greater than 0",
    ),
    (
        "gate metric",
        {"mlops:gate": {"metric": "auc"}},
        "mlops:gate.metric='auc'",
        "is not one of roc_auc, accuracy, f1",
    ),
    (
        "gate minimum above one",
        {"mlops:gate": {"minimum": 1.5}},
        "mlops:gate.minimum=1.5",
        "less than or equal to 1",
    ),
    (
        "budget negative",
        {"mlops:budget": {"monthlyUsd": -5}},
        "mlops:budget.monthlyUsd=-5",
        "greater than 0",
    ),
    (
        "budget as text",
        {"mlops:budget": {"monthlyUsd": "lots"}},
        "mlops:budget.monthlyUsd='lots'",
        "valid number",
    ),
    (
        "alert percent out of range",
        {"mlops:budget": {"alertPercents": [50, 500]}},
        "mlops:budget.alertPercents",
        "whole percentages from 1 to 200",
    ),
    (
        "model version not a number",
        {"mlops:model": "latest"},
        "mlops:model='latest'",
        "Registered model version to serve",
    ),
    (
        "aws region typo",
        {"mlops:region": "europe-west"},
        "mlops:region='europe-west'",
        "is not an AWS region",
    ),
    (
        "azure location on azureml",
        {"mlops:blueprint": "azureml", "mlops:region": "West Europe"},
        "mlops:region='West Europe'",
        "is not an Azure location",
    ),
    (
        "sagemaker instance type",
        {"mlops:training": {"instanceType": "m5.large"}},
        "mlops:training.instanceType='m5.large'",
        "is not a SageMaker instance type",
    ),
    (
        "azure vm size",
        {"mlops:blueprint": "azureml", "mlops:endpoint": {"instanceType": "ml.m5"}},
        "mlops:endpoint.instanceType='ml.m5'",
        "is not an Azure VM size",
    ),
    (
        "network mode",
        {"mlops:network": {"mode": "vpn"}},
        "mlops:network.mode='vpn'",
        "is not one of public, private",
    ),
    (
        "network cidr",
        {"mlops:network": {"cidr": "10.0.0.0/8"}},
        "mlops:network.cidr=",
        "does not match",
    ),
    (
        "spot not a bool",
        {"mlops:training": {"spot": "sometimes"}},
        "mlops:training.spot='sometimes'",
        "valid boolean",
    ),
    ("tags not a map", {"mlops:tags": ["a", "b"]}, "mlops:tags=", "valid dictionary"),
    (
        "release token in plain text",
        {
            "mlops:release": {"provider": "github", "repository": "acme/ml"},
            "mlops:releaseToken": "ghp_plain",
        },
        "mlops:releaseToken='<plain text>'",
        "pulumi config set --secret mlops:releaseToken",
    ),
    (
        "release provider without repository",
        {"mlops:release": {"provider": "github"}},
        "mlops:release.repository",
        "is required when release.provider is github",
    ),
    (
        "release provider without token",
        {"mlops:release": {"provider": "azuredevops", "repository": "acme/ml"}},
        "mlops:releaseToken=<unset>",
        "pulumi config set --secret mlops:releaseToken",
    ),
    (
        "promotion to itself",
        {"mlops:promotion": {"target": "acme-dev"}},
        "mlops:promotion.target='acme-dev'",
        "names this stack itself",
    ),
    (
        "promotion account",
        {"mlops:promotion": {"targetAccount": "12345"}},
        "mlops:promotion.targetAccount='12345'",
        "does not match",
    ),
    (
        "suppression without justification",
        {"mlops:suppressions": [{"control": "AWS-S3-01", "justification": "no"}]},
        "mlops:suppressions.0.justification='no'",
        "at least 10 characters",
    ),
    (
        "prod serverless",
        {"mlops:environment": "prod", "mlops:endpoint": {"mode": "serverless"}},
        "mlops:endpoint.mode='serverless'",
        "prod tier requires it",
    ),
    (
        "prod single instance",
        {"mlops:environment": "prod", "mlops:endpoint": {"minInstances": 1}},
        "mlops:endpoint.minInstances=1",
        "prod runs >= 2 across zones",
    ),
    (
        "prod all-at-once",
        {"mlops:environment": "prod", "mlops:rollout": {"strategy": "all-at-once"}},
        "mlops:rollout.strategy='all-at-once'",
        "needs canary or linear",
    ),
    (
        "prod unprotected stores",
        {"mlops:environment": "prod", "mlops:stores": {"protect": False}},
        "mlops:stores.protect=False",
        "prod stores are protected",
    ),
    (
        "prod public network",
        {"mlops:environment": "prod", "mlops:network": {"mode": "public"}},
        "mlops:network.mode='public'",
        "prod uses private networking",
    ),
    (
        "prod image by tag",
        {"mlops:environment": "prod", "mlops:image": "ghcr.io/a/kit:1.0"},
        "mlops:image='ghcr.io/a/kit:1.0'",
        "prod runs images by digest",
    ),
    (
        "image reference malformed",
        {"mlops:image": "Not An Image"},
        "mlops:image='Not An Image'",
        "does not match",
    ),
    (
        "oidc provider not github's",
        {"mlops:ci": {"oidcProviderArn": "arn:aws:iam::1:x"}},
        "mlops:ci.oidcProviderArn='arn:aws:iam::1:x'",
        "existing GitHub OIDC provider",
    ),
    ("batch cron", {"mlops:batch": {"cron": "daily"}}, "mlops:batch.cron='daily'", "5-field"),
    (
        "export tolerance zero",
        {"mlops:export": {"tolerance": 0}},
        "mlops:export.tolerance=0",
        "greater than 0",
    ),
    (
        "previous model equals model",
        {"mlops:model": "3", "mlops:rollout": {"previousModel": "3"}},
        "mlops:rollout.previousModel='3'",
        "equals mlops:model",
    ),
    (
        "prod auto approval",
        {"mlops:environment": "prod", "mlops:approval": {"mode": "auto"}},
        "mlops:approval.mode='auto'",
        "approves versions by hand",
    ),
]


@pytest.mark.parametrize(
    ("case", "overrides", "key", "fragment"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_config_names_key_value_and_fix(
    case: str, overrides: dict[str, Any], key: str, fragment: str
) -> None:
    problems = problems_of({**BASE, **overrides})
    matching = [p for p in problems if p.startswith(key)]
    assert matching, f"{case}: no problem names {key}; got {problems}"
    assert any(fragment in p for p in matching), f"{case}: {matching} lacks {fragment!r}"
    assert all("; " in p for p in problems), f"{case}: a message has no fix: {problems}"


def test_at_least_twenty_malformed_cases() -> None:
    assert len(MALFORMED) >= 20


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of(
        {
            "mlops:blueprint": "sagemaker",
            "mlops:client": "ACME",
            "mlops:environment": "prod",
            "mlops:endpoint": {"mode": "gpu", "minInstances": 1},
            "mlops:schedule": {"cron": "never"},
            "mlops:colour": "blue",
        }
    )
    keys = {p.split("=")[0] for p in problems}
    assert {
        "mlops:client",
        "mlops:endpoint.mode",
        "mlops:schedule.cron",
        "mlops:colour",
        "mlops:endpoint.minInstances",
    } <= keys, problems


def test_missing_required_keys_are_named() -> None:
    problems = problems_of({})
    for key in ("blueprint", "client", "environment"):
        assert any(p.startswith(f"mlops:{key}=<unset> is required") for p in problems), problems


def test_keys_of_other_namespaces_are_ignored() -> None:
    settings = validate_settings({**BASE, "aws:region": "eu-west-1"}, stack="acme-dev")
    assert settings.blueprint == "sagemaker"


def test_secret_token_accepted_when_stored_as_secret() -> None:
    config = {
        **BASE,
        "mlops:release": {"provider": "github", "repository": "acme/ml"},
        "mlops:releaseToken": "ghp_x",
    }
    settings = validate_settings(config, {"mlops:releaseToken"}, stack="acme-dev")
    assert settings.release_token == "ghp_x"


def test_structured_values_arrive_as_json_text() -> None:
    # Under `pulumi up` the engine hands objects to the program as JSON strings.
    settings = validate_settings(
        {
            **BASE,
            "mlops:endpoint": '{"mode": "realtime", "minInstances": 1}',
            "mlops:training": '{"spot": "false"}',
        },
        stack="acme-dev",
    )
    assert settings.endpoint.mode == "realtime"
    assert settings.endpoint.min_instances == 1
    assert settings.training.spot is False


@pytest.mark.parametrize(
    ("env", "mode", "min_instances", "strategy", "approval", "protect", "network", "spot"),
    [
        ("dev", "serverless", 0, "all-at-once", "auto", False, "public", True),
        ("staging", "realtime", 2, "linear", "manual", True, "private", True),
        ("prod", "realtime", 2, "canary", "manual", True, "private", False),
    ],
)
def test_tier_defaults(
    env: str,
    mode: str,
    min_instances: int,
    strategy: str,
    approval: str,
    protect: bool,
    network: str,
    spot: bool,
) -> None:
    image = "ghcr.io/acme/kit:1@sha256:" + "0" * 64
    s = validate_settings(
        {**BASE, "mlops:environment": env, "mlops:image": image}, stack=f"acme-{env}"
    )
    assert (s.endpoint.mode, s.endpoint.min_instances, s.rollout.strategy) == (
        mode,
        min_instances,
        strategy,
    )
    assert (s.approval.mode, s.stores.protect, s.network.mode, s.training.spot) == (
        approval,
        protect,
        network,
        spot,
    )
    assert s.rollout.auto_rollback is True


def test_stack_file_overrides_tier_default() -> None:
    s = validate_settings(
        {**BASE, "mlops:endpoint": {"mode": "realtime", "minInstances": 1}}, stack="acme-dev"
    )
    assert s.endpoint.mode == "realtime" and s.endpoint.min_instances == 1
    assert s.endpoint.max_instances == 2  # the rest of the tier default stays


def test_blueprint_defaults_apply() -> None:
    s = validate_settings({**BASE, "mlops:blueprint": "azureml"}, stack="acme-dev")
    assert s.region == "eastus"
    assert s.training.instance_type == "Standard_DS3_v2"


@pytest.mark.parametrize("stack", list_stacks())
def test_example_stacks_are_valid(stack: str) -> None:
    settings = load_stack(stack)
    assert settings.stack_name == stack
    if settings.blueprint != "cluster":
        assert f"{settings.client}-{settings.environment}" == stack


def test_six_example_stacks() -> None:
    assert set(list_stacks()) >= {
        "acme-dev",
        "acme-prod",
        "contoso-dev",
        "contoso-prod",
        "globex-dev",
        "globex-prod",
    }


def test_secure_values_read_as_secrets() -> None:
    values, secrets = read_stack_file(stack_file("acme-prod"))
    assert "mlops:releaseToken" in secrets
    assert values["mlops:releaseToken"] == "[secret]"


def test_unknown_stack_names_the_known_ones(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="acme-dev"):
        load_stack("nope-dev")


def test_invalid_yaml_is_a_config_error(tmp_path) -> None:
    (tmp_path / "Pulumi.x-dev.yaml").write_text("config: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_stack("x-dev", root=tmp_path)
