"""Pulumi.yaml declares every `mlops:` key, within the rules the Pulumi CLI enforces on
project config (sdk/go/common/workspace/project.go, Project.Validate and project.json)."""

from __future__ import annotations

import pytest
import yaml
from pydantic.alias_generators import to_camel

from core.config import (
    NAMESPACE,
    PROJECT_ROOT,
    StackSettings,
    apply_project_defaults,
    list_stacks,
    read_stack_file,
    stack_file,
    validate_settings,
)

PROJECT = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())
ALLOWED_TYPES = {"string", "integer", "boolean", "array"}  # project.json simpleConfigType
REQUIRED = {f"{NAMESPACE}:{k}" for k in ("blueprint", "client", "environment")}


def test_project_name_is_the_config_namespace() -> None:
    # Typed declarations are only valid for keys namespaced by the project itself.
    assert PROJECT["name"] == NAMESPACE


def test_every_schema_key_is_declared_and_nothing_else() -> None:
    declared = set(PROJECT["config"])
    expected = {f"{NAMESPACE}:{to_camel(n)}" for n in StackSettings.model_fields}
    assert declared == expected, (declared - expected, expected - declared)


def test_declarations_follow_pulumi_rules() -> None:
    for key, decl in PROJECT["config"].items():
        assert decl.get("description"), f"{key} has no description"
        if "type" in decl:
            assert decl["type"] in ALLOWED_TYPES, f"{key}: type {decl['type']} is not allowed"
            if decl["type"] == "array":
                assert "items" in decl, f"{key}: arrays need items"
        assert not ("default" in decl and "value" in decl), key
        if key in REQUIRED:
            assert "default" not in decl, f"{key} is required: Pulumi reports it missing"
        else:
            # Pulumi injects a default into every stack that lacks the key, so it must be
            # neutral: an empty value that leaves the tier defaults in force.
            assert decl.get("default") in ("", {}, []), f"{key}: default must be empty"


@pytest.mark.parametrize("stack", list_stacks())
def test_injected_defaults_change_nothing(stack: str) -> None:
    values, secrets = read_stack_file(stack_file(stack))
    plain = validate_settings(values, secrets, stack=stack)
    injected = validate_settings(apply_project_defaults(values), secrets, stack=stack)
    assert plain == injected


def test_injected_defaults_keep_tier_defaults() -> None:
    values = apply_project_defaults(
        {
            "mlops:blueprint": "azureml",
            "mlops:client": "x1",
            "mlops:environment": "prod",
            "mlops:image": "x1.azurecr.io/kit:1@sha256:" + "0" * 64,
        }
    )
    settings = validate_settings(values, stack="x1-prod")
    assert (settings.region, settings.endpoint.min_instances) == ("eastus", 2)


def test_secret_keys_are_declared_secret_and_untyped() -> None:
    from core.config import SECRET_KEYS

    for key in SECRET_KEYS:
        decl = PROJECT["config"][f"{NAMESPACE}:{key}"]
        assert decl.get("secret") is True, key
        # typed + secret would make Pulumi reject the injected empty default as unencrypted;
        # core.config enforces the secret instead
        assert "type" not in decl, key


def test_runtime_uses_the_make_venv() -> None:
    assert PROJECT["runtime"]["name"] == "python"
    assert PROJECT["runtime"]["options"]["virtualenv"] == ".venv"
