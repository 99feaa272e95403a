"""The `mlops` CLI: blueprints, new, validate, plan, docs."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from core.config import PROJECT_ROOT, ConfigError, load_stack
from core.contract import Capability
from mlops.cli import app
from mlops.plan import run_plan

runner = CliRunner()


def test_blueprints_lists_every_blueprint_and_capability() -> None:
    result = runner.invoke(app, ["blueprints", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"sagemaker", "azureml", "onprem", "cluster"}
    # the cluster layer gives no capability itself; every client blueprint gives all of them
    assert data.pop("cluster")["capabilities"] == {}
    for name, entry in data.items():
        assert set(entry["capabilities"]) == {c.value for c in Capability}
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


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_unknown_stack_is_reported_the_same_way_by_every_command(command: str) -> None:
    result = runner.invoke(app, [command, "nope-dev"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # rich wraps lines at the terminal width
    assert "no stack 'nope-dev'" in said
    assert "acme-dev" in said  # the stacks there are
    assert "mlops new" in said
    assert "Errno" not in said


def test_new_cluster_and_client_stacks_plan_together(tmp_path) -> None:
    """`mlops new X -b cluster` writes X-cluster listing X's three tiers; `mlops new X -b
    onprem` points at it; the client then plans against the cluster stack's outputs."""

    (tmp_path / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    base = ["--dir", str(tmp_path), "--image", IMAGE]
    made = runner.invoke(app, ["new", "initech", "-b", "cluster", "-e", "prod", *base])
    assert made.exit_code == 0, made.output
    cluster = load_stack("initech-cluster", root=tmp_path)
    assert cluster.cluster.clients == {
        f"initech-{env}": f"{env}.initech.mlops.internal" for env in ("dev", "staging", "prod")
    }
    assert [s.control for s in cluster.suppressions] == ["K8S-NET-05"]
    made = runner.invoke(app, ["new", "initech", "-b", "onprem", "-e", "dev", *base])
    assert made.exit_code == 0, made.output
    client = load_stack("initech-dev", root=tmp_path)
    assert client.kubernetes.cluster_stack == "initech-cluster"
    assert client.kubernetes.ingress_domain == cluster.cluster.clients["initech-dev"]
    plan = run_plan("initech-dev", root=tmp_path)
    assert plan.failed_controls == []
    assert plan.by_type("kubernetes:helm.sh/v3:Release") == []
    assert run_plan("initech-cluster", root=tmp_path).failed_controls == []


def test_new_writes_where_validate_and_plan_read(tmp_path, monkeypatch) -> None:
    # A project of the user's own: `mlops new` run from a subfolder writes the stack next to
    # the project's Pulumi.yaml, and `validate` and `plan` find it from there.
    from core.config import PROJECT_ROOT

    (tmp_path / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    made = runner.invoke(app, ["new", "initech", "-b", "cluster", "-e", "dev"])
    assert made.exit_code == 0, made.output
    made = runner.invoke(app, ["new", "initech", "-b", "onprem", "-e", "dev"])
    assert made.exit_code == 0, made.output
    assert (tmp_path / "Pulumi.initech-dev.yaml").is_file()
    assert not (tmp_path / "sub" / "Pulumi.initech-dev.yaml").exists()
    checked = runner.invoke(app, ["validate", "initech-dev"])
    assert checked.exit_code == 0, checked.output
    planned = runner.invoke(app, ["plan", "initech-dev", "--json"])
    assert planned.exit_code == 0, planned.output[-2000:]
    assert json.loads(planned.output)["stack"] == "initech-dev"


def test_plan_json_is_offline_and_complete() -> None:
    stack = "acme-prod"
    result = runner.invoke(app, ["plan", stack, "--json"])
    assert result.exit_code == 0, result.output[-2000:]
    data = json.loads(result.output)
    assert data["offline"] is True and "not a diff" in data["note"]
    assert data["resourceCount"] == len(data["resources"]) > 0
    assert all(c["status"] in ("pass", "n/a") for c in data["controls"])


def test_plan_text_shows_tree_capabilities_controls() -> None:
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


def test_set_with_a_dotted_key_changes_one_value_inside_its_object() -> None:
    """`mlops plan acme-dev --set gate.minimum=0.95`: the stack file's other gate keys stay."""
    plan = run_plan("globex-dev", overrides={"gate.minimum": 0.95})
    assert plan.settings.gate.minimum == 0.95
    assert plan.settings.gate.metric == load_stack("globex-dev").gate.metric == "roc_auc"
    with pytest.raises(ConfigError) as exc:  # a dotted key is checked like any other
        run_plan("globex-dev", overrides={"gate.minimun": 0.95})
    assert "mlops:gate.minimun" in str(exc.value)


def test_plans_runs_every_stack_in_worker_processes_and_names_a_broken_one(
    tmp_path, monkeypatch
) -> None:
    """`mlops plans` plans the stacks in parallel processes, keeps their order, and a stack
    with a config error is a failed row whose message names the key, not a traceback."""
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    for blueprint in ("cluster", "onprem"):
        made = runner.invoke(app, ["new", "initech", "-b", blueprint, "-e", "dev"])
        assert made.exit_code == 0, made.output
    (tmp_path / "Pulumi.broken-dev.yaml").write_text(
        (tmp_path / "Pulumi.initech-dev.yaml").read_text() + "  mlops:budgt: 10\n"
    )
    result = runner.invoke(app, ["plans", "--jobs", "2"])
    assert result.exit_code == 1, result.output
    lines = [line.split("│") for line in result.output.splitlines() if line.startswith("│")]
    rows = ["".join(cells) for cells in lines if cells[1].strip()]  # not wrapped lines
    # (the narrow test terminal shortens initech-cluster)
    assert [row.split()[0][:10] for row in rows] == ["broken-dev", "initech-cl", "initech-de"]
    assert "config" in rows[0] and "ok" in rows[1] and "ok" in rows[2]
    assert "mlops:budgt" in result.output


HEAVY = ("pulumi", "pulumi_aws", "pulumi_azure_native", "pulumi_kubernetes", "sagemaker", "azure")
LIGHT_PROBE = """
import json, runpy, sys
sys.argv = ["mlops", *sys.argv[1:]]
try:
    runpy.run_module("mlops.cli", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print(json.dumps([code, sorted({m.split(".")[0] for m in sys.modules} & set(%r))]))
"""


@pytest.mark.parametrize("argv", [["--help"], ["validate", "contoso-prod"]])
def test_help_and_validate_load_no_pulumi_or_pipeline_sdk(argv: list[str]) -> None:
    """What keeps `mlops --help` and `mlops validate` at about half a second: neither loads the
    Pulumi SDK, a provider or a pipeline SDK (issue #19)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", LIGHT_PROBE % (HEAVY,), *argv],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=True,
    )
    code, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert code in (0, None), done.stdout
    assert loaded == []
