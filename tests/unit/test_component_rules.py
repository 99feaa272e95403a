"""The audit of issue #12: every component argument check a stack config can reach is also a
config rule, reported by validation (naming the key) before any resource exists.

Found by probing each blueprint's example stacks with schema-valid edge values (the schema's
bounds, cron forms, regions, CIDRs, names) and keeping each config that validated and then
made a component raise ArgsError. Each row names the component check the rule mirrors; the
component keeps its check as a guard for programmatic use."""

from __future__ import annotations

from typing import Any

import pytest

from core.config import (
    NAMESPACE,
    ConfigError,
    apply_project_defaults,
    existing_stack_file,
    read_stack_file,
    validate_settings,
)
from mlops.plan import run_plan

GUID = "0123abcd-0000-0000-0000-000000000000"

# (stack, overrides, key the problem names, the component check it mirrors)
REACHABLE: list[tuple[str, dict[str, Any], str, str]] = [
    ("acme-dev", {"schedule": {"cron": "0 3 1 * 1"}}, "schedule.cron", "ContinuousTraining cron"),
    (
        "acme-dev",
        {"model": "1", "batch": {"enabled": True, "cron": "0 2 1 * 1"}},
        "batch.cron",
        "BatchScoring cron",
    ),
    ("acme-dev", {"drift": {"checkCron": "0 3 1 * 1"}}, "drift.checkCron", "DriftMonitoring cron"),
    ("acme-dev", {"drift": {"checkCron": "30 * * * *"}}, "drift.checkCron", "DriftMonitoring cron"),
    (
        "acme-dev",
        {"drift": {"checkCron": "*/5 * * * *"}},
        "drift.checkCron",
        "DriftMonitoring cron",
    ),
    ("acme-dev", {"region": "ca-west-1"}, "region", "DriftMonitoring region"),
    ("acme-dev", {"region": "us-gov-west-1"}, "region", "DriftMonitoring region"),
    ("acme-dev", {"budget": {"alertPercents": []}}, "budget.alertPercents", "StackBudget"),
    (
        "acme-dev",
        {"promotion": {"targetAccount": GUID}},
        "promotion.targetAccount",
        "ModelRegistry",
    ),
    (
        "acme-dev",
        {"network": {"mode": "private", "cidr": "10.40.0.1/16"}},
        "network.cidr",
        "PrivateNetwork cidr",
    ),
    ("acme-dev", {"network": {"cidr": "999.40.0.0/16"}}, "network.cidr", "PrivateNetwork cidr"),
    (
        "acme-dev",
        {"release": {"provider": "none", "eventType": "has space"}},
        "release.eventType",
        "ReleaseTrigger event_type",
    ),
    ("acme-dev", {"release": {"eventType": "x" * 101}}, "release.eventType", "ReleaseTrigger"),
    ("globex-dev", {"release": {"eventType": ""}}, "release.eventType", "ReleaseTrigger (AWS)"),
    (
        "acme-dev",
        {"batch": {"enabled": True, "inputPrefix": "x/", "outputPrefix": "x/out/"}},
        "batch.outputPrefix",
        "BatchScoring output_prefix (AWS)",
    ),
    (
        "contoso-dev",
        {"batch": {"enabled": True, "outputPrefix": "batch/input/scored/"}},
        "batch.outputPrefix",
        "BatchScoring output_prefix (Azure)",
    ),
    (
        "globex-dev",
        {"batch": {"enabled": True, "inputPrefix": "x/", "outputPrefix": "x/"}},
        "batch.outputPrefix",
        "BatchScoring output_prefix (on-prem)",
    ),
    ("contoso-dev", {"budget": {"alertPercents": []}}, "budget.alertPercents", "Budget"),
    (
        "contoso-dev",
        {"releaseToken": "[secret]", "release": {"provider": "github", "repository": "a/b"}},
        "release.tokenExpiresOn",
        "KeysAndSecrets release_token_expires_on",
    ),
    (
        "contoso-dev",
        {"promotion": {"targetAccount": "123456789012"}},
        "promotion.targetAccount",
        "none: the registry's reader role would be scoped to no subscription at deploy time",
    ),
    (
        "contoso-dev",
        {"network": {"mode": "private", "cidr": "10.40.0.1/16"}},
        "network.cidr",
        "none: Azure refuses the VNet at deploy time",
    ),
    (
        "globex-dev",
        {"network": {"mode": "private", "cidr": "10.40.0.1/16"}},
        "network.cidr",
        "TlsIngress allowed_cidrs",
    ),
    (
        "globex-cluster",
        {"kubernetes": {"context": "globex", "clusterIssuer": "Bad_Issuer"}},
        "kubernetes.clusterIssuer",
        "TlsIngress cluster_issuer",
    ),
    (
        "globex-dev",
        {"kubernetes": {"clusterStack": "globex-cluster", "ingressDomain": "a..b"}},
        "kubernetes.ingressDomain",
        "TlsIngress routes[].host",
    ),
    (
        "globex-dev",
        {"kubernetes": {"clusterStack": "globex-cluster", "ingressDomain": "-bad."}},
        "kubernetes.ingressDomain",
        "TlsIngress routes[].host",
    ),
]


@pytest.mark.parametrize(
    ("stack", "overrides", "key", "mirrors"),
    REACHABLE,
    ids=[f"{s}-{k}-{i}" for i, (s, _, k, _m) in enumerate(REACHABLE)],
)
def test_a_reachable_component_check_is_a_config_rule(
    stack: str, overrides: dict[str, Any], key: str, mirrors: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        run_plan(stack, overrides=overrides)  # validation runs before the program registers
    problems = [p for p in exc.value.problems if p.key == f"mlops:{key}" or p.key == key]
    assert problems, f"{key} not named ({mirrors}): {exc.value}"
    text = str(exc.value)
    assert "set" in problems[0].fix or "use" in problems[0].fix, problems[0]
    assert "Traceback" not in text


# Neighbours of each rule that stay valid: the rule is no wider than the platform's limit (these
# build; validation alone is checked here, the hypothesis tests build such configs).
STILL_VALID: list[tuple[str, dict[str, Any]]] = [
    ("acme-dev", {"drift": {"checkCron": "0 */2 * * *"}}),
    ("acme-dev", {"drift": {"checkCron": "0 0 * * 1"}}),
    ("acme-dev", {"schedule": {"cron": "0 3 1 * *"}}),
    ("acme-dev", {"region": "eu-central-2"}),
    ("acme-dev", {"promotion": {"targetAccount": "123456789012"}}),
    ("acme-dev", {"network": {"mode": "private", "cidr": "172.16.0.0/20"}}),
    ("contoso-dev", {"promotion": {"targetAccount": GUID}}),
    ("acme-dev", {"release": {"eventType": "mlops.release_v2"}}),
    ("acme-dev", {"batch": {"enabled": True, "inputPrefix": "in/", "outputPrefix": "input/"}}),
    ("globex-dev", {"budget": {"alertPercents": []}}),
    ("globex-cluster", {"kubernetes": {"context": "globex", "clusterIssuer": "letsencrypt-prod"}}),
    (
        "globex-dev",
        {"kubernetes": {"clusterStack": "globex-cluster", "ingressDomain": "ml.ex.com"}},
    ),
]


@pytest.mark.parametrize(("stack", "overrides"), STILL_VALID)
def test_the_rules_accept_what_the_platform_accepts(stack: str, overrides: dict[str, Any]) -> None:
    values, secrets = read_stack_file(existing_stack_file(stack))
    values.update({f"{NAMESPACE}:{k}": v for k, v in overrides.items()})
    validate_settings(apply_project_defaults(values), secrets, stack=stack)  # no ConfigError
