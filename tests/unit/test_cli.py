"""The `mlops` CLI: blueprints, new, validate, plan, docs."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

import blueprints
from mlops.cli import app
from mlops.config import ConfigError, load_stack
from mlops.contract import Capability

runner = CliRunner()


def test_blueprints_lists_every_blueprint_and_capability() -> None:
    result = runner.invoke(app, ["blueprints", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"sagemaker", "azureml", "onprem"}
    for name, entry in data.items():
        assert set(entry["capabilities"]) == {c.value for c in Capability}
        if entry["implemented"]:
            assert all(entry["capabilities"].values()), f"{name} leaves a capability blank"


IMAGE = "initech.azurecr.io/mlops-kit:1.0@sha256:" + "ab" * 32


def test_new_prod_without_image_says_what_is_missing(tmp_path) -> None:
    result = runner.invoke(
        app, ["new", "initech", "-b", "onprem", "-e", "prod", "--dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "mlops:image" in (tmp_path / "Pulumi.initech-prod.yaml").read_text()
    with pytest.raises(ConfigError, match="mlops:image=<unset> is not pinned by digest"):
        load_stack("initech-prod", root=tmp_path)


def test_new_writes_a_valid_stack_and_refuses_to_overwrite(tmp_path) -> None:
    args = [
        "new",
        "initech",
        "--blueprint",
        "azureml",
        "--env",
        "prod",
        "--dir",
        str(tmp_path),
        "--image",
        IMAGE,
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    path = tmp_path / "Pulumi.initech-prod.yaml"
    doc = yaml.safe_load(path.read_text())
    assert doc["config"]["mlops:endpoint"]["minInstances"] == 2
    settings = load_stack("initech-prod", root=tmp_path)
    assert (settings.blueprint, settings.environment, settings.region) == (
        "azureml",
        "prod",
        "eastus",
    )
    before = path.read_text()
    second = runner.invoke(app, args)
    assert second.exit_code == 2
    assert "already exists" in second.output
    assert path.read_text() == before


def test_new_rejects_bad_names_and_writes_nothing(tmp_path) -> None:
    result = runner.invoke(
        app, ["new", "Initech", "-b", "azure", "-e", "qa", "--dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "mlops:blueprint='azure' is not one of sagemaker, azureml, onprem" in result.output
    assert "mlops:environment='qa'" in result.output
    assert list(tmp_path.iterdir()) == []


def test_validate_reports_unknown_stack() -> None:
    result = runner.invoke(app, ["validate", "nope-dev"])
    assert result.exit_code == 2
    assert "no stack 'nope-dev'" in result.output


def test_plan_json_is_offline_and_complete() -> None:
    stack = "acme-prod"
    if not blueprints.get("sagemaker").IMPLEMENTED:
        result = runner.invoke(app, ["plan", stack])
        assert result.exit_code == 2 and "not implemented yet" in result.output
        return
    result = runner.invoke(app, ["plan", stack, "--json"])
    assert result.exit_code == 0, result.output[-2000:]
    data = json.loads(result.output)
    assert data["offline"] is True and "not a diff" in data["note"]
    assert data["resourceCount"] == len(data["resources"]) > 0
    assert all(c["status"] in ("pass", "n/a") for c in data["controls"])


def test_plan_text_shows_tree_capabilities_controls() -> None:
    if not blueprints.get("onprem").IMPLEMENTED:
        return
    result = runner.invoke(app, ["plan", "globex-prod"], terminal_width=200)
    assert result.exit_code == 0, result.output[-2000:]
    assert "offline plan" in result.output
    assert "Capabilities" in result.output and "Controls" in result.output
    assert "mlops:onprem:" in result.output


def test_plan_set_override_and_bad_set() -> None:
    bad = runner.invoke(app, ["plan", "acme-dev", "--set", "model"])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
    wrong = runner.invoke(app, ["plan", "acme-dev", "--set", "endpoint={mode: gpu}"])
    assert wrong.exit_code == 2 and "endpoint.mode='gpu'" in wrong.output
