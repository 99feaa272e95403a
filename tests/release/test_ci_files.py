"""The CI files as the CI systems read them: every GitHub workflow against SchemaStore's
workflow schema and every Azure DevOps pipeline against Microsoft's service-schema (vendored in
tests/schemas/upstream), and each deploying job holding exactly the credentials of the
platforms of the stacks it deploys, derived from the stacks themselves (`mlops stacks`,
`mlops chain`), not from the job's name."""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from core.config import PROJECT_ROOT, list_stacks, load_stack
from mlops.cli_release import app
from pipelines.release.orchestrate import chain as _chain
from tests.schemas import azure_pipelines_errors, github_workflow_errors

GITHUB = sorted((PROJECT_ROOT / ".github" / "workflows").glob("*.yml"))
AZDO = sorted((PROJECT_ROOT / "azure-pipelines").glob("*.yml"))
CREDENTIALS = {
    "sagemaker": {"aws"},
    "azureml": {"azure"},
    "onprem": {"kubernetes"},
    "cluster": set(),
}
"""What a job that deploys a stack of each blueprint signs in to: AWS (OIDC role), Azure
(federated identity), the cluster (the runner's ServiceAccount token). A cluster stack is
applied by the platform team (`mlops apply`, cluster-admin), never from CI: CI plans it offline
and holds no credential for it."""
DEPLOYS = re.compile(r"mlops (apply|release|promote)\b")
KUBECONFIG = "ci/in-cluster-kubeconfig.sh"


@cache
def blueprint_of(stack: str) -> str:
    return load_stack(stack).blueprint


@cache
def environment(stack: str) -> str:
    return load_stack(stack).environment


def model_stacks() -> list[str]:
    """The stacks that serve a model, so have a release chain (not cluster stacks)."""
    return [s for s in list_stacks() if blueprint_of(s) != "cluster"]


@cache
def chain(source: str) -> dict[str, str]:
    return _chain(source)


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", GITHUB, ids=lambda p: p.name)
def test_github_workflows_match_the_schemastore_schema(path):
    assert github_workflow_errors(load(path)) == []


@pytest.mark.parametrize("path", AZDO, ids=lambda p: p.name)
def test_azure_pipelines_match_microsofts_service_schema(path):
    assert azure_pipelines_errors(load(path)) == []


def test_the_ci_schemas_catch_broken_files():
    release = load(PROJECT_ROOT / ".github/workflows/release.yml")
    bad = copy.deepcopy(release)
    bad["jobs"]["resolve"]["runs_on"] = bad["jobs"]["resolve"].pop("runs-on")
    assert github_workflow_errors(bad)
    bad = copy.deepcopy(release)
    bad["jobs"]["promote-prod"]["environment"] = {"nme": "prod"}
    assert github_workflow_errors(bad)

    ci = load(PROJECT_ROOT / "azure-pipelines/ci.yml")
    bad = copy.deepcopy(ci)
    bad["stages"][0]["jobs"][0]["steps"][0]["fetchDepth"] = 0  # the schema wants a string
    assert azure_pipelines_errors(bad)
    bad = copy.deepcopy(ci)
    aws = bad["stages"][1]["jobs"][0]["steps"][2]
    assert aws["task"] == "AWSShellScript@1"
    aws["inputs"]["awsCredential"] = aws["inputs"].pop("awsCredentials")
    assert azure_pipelines_errors(bad)
    bad = copy.deepcopy(ci)
    bad["stages"][1]["jobs"][1]["steps"][2]["inputs"]["addSpnToEnvironment"] = "yes"
    assert azure_pipelines_errors(bad)
    bad = copy.deepcopy(ci)
    bad["stages"][1]["jobz"] = bad["stages"][1].pop("jobs")
    assert azure_pipelines_errors(bad)


# GitHub: a job instance's credentials under the stack it deploys -----------------------------

_TOKEN = re.compile(r"\s*('[^']*'|&&|\|\||==|!=|\(|\)|[A-Za-z_][\w.-]*)")


def evaluate(expression: str, context: dict[str, str]) -> Any:
    """A GitHub expression built from context names, string literals, ==, !=, && and ||
    (what the workflows use in `if:` and `runs-on:`); an unknown name fails the test."""
    out, pos = [], 0
    while pos < len(expression.rstrip()):
        match = _TOKEN.match(expression, pos)
        assert match, f"cannot read {expression[pos:]!r}"
        token, pos = match.group(1), match.end()
        if token.startswith("'") or token in ("==", "!=", "(", ")"):
            out.append(token)
        elif token in ("&&", "||"):
            out.append({"&&": "and", "||": "or"}[token])
        else:
            assert token in context, f"{token} is not in the job context {sorted(context)}"
            out.append(repr(context[token]))
    return eval(" ".join(out), {"__builtins__": {}})  # noqa: S307 - tokens checked above


def render(text: str, context: dict[str, str]) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(evaluate(m.group(1), context)), text)


def github_credentials(step: dict[str, Any]) -> str | None:
    uses = step.get("uses", "")
    if uses.startswith("aws-actions/configure-aws-credentials"):
        return "aws"
    if uses.startswith("azure/login"):
        return "azure"
    if KUBECONFIG in step.get("run", ""):
        return "kubernetes"
    return None


def signed_in(job: dict[str, Any], context: dict[str, str]) -> list[dict[str, Any]]:
    """The credential steps that run in this job instance (their `if:` holds)."""
    return [
        s
        for s in job["steps"]
        if github_credentials(s) and ("if" not in s or evaluate(str(s["if"]), context) is True)
    ]


@cache
def mlops_rows(command: str) -> list[dict[str, str]]:
    """What `mlops stacks ...` (as a workflow runs it) lists."""
    words = shlex.split(command.split("mlops ", 1)[1].split(")")[0].split("|")[0])
    result = CliRunner().invoke(app, [w for w in words if w != "--json"] + ["--json"])
    assert result.exit_code == 0, result.output
    return __import__("json").loads(result.stdout)


def github_deployments() -> list[tuple[str, str, dict[str, Any], dict[str, str]]]:
    """(file, job, job, context) for every deploying job instance and stack it deploys."""
    found = []
    for path in GITHUB:
        jobs = load(path)["jobs"]
        for name, job in jobs.items():
            if not any(DEPLOYS.search(s.get("run", "")) for s in job["steps"]):
                continue
            base = {"vars.AWS_ACCOUNT_ID": "<account>", "vars.AWS_REGION": "<region>"}
            base |= {f"vars.{v}": f"<{v}>" for v in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID")}
            base |= {"vars.AZURE_SUBSCRIPTION_ID": "<subscription>"}
            if "matrix" in job.get("strategy", {}):
                producer = jobs[job["needs"]]
                runs = [s.get("run", "") for s in producer["steps"]]
                command = next(r for r in runs if "mlops stacks" in r)
                for row in mlops_rows(command):
                    context = base | {f"matrix.{k}": v for k, v in row.items()}
                    found.append((path.name, name, job, context | {"stack": row["stack"]}))
                continue
            key = re.fullmatch(r"\$\{\{ needs\.resolve\.outputs\.(\w+) \}\}", job["env"]["TARGET"])
            assert key, (path.name, name, job["env"]["TARGET"])
            for source in model_stacks():
                links = chain(source)
                if not links[key.group(1)]:
                    continue
                context = base | {f"needs.resolve.outputs.{k}": v for k, v in links.items()}
                found.append((path.name, name, job, context | {"stack": links[key.group(1)]}))
    return found


def test_each_github_job_signs_in_to_exactly_the_platforms_it_deploys():
    deployments = github_deployments()
    deployed = {(f, j, c["stack"]) for f, j, _, c in deployments}
    # every stack is deployed by the release chain, and every dev stack from main
    assert {s for f, _, s in deployed if f == "release.yml"} == set(model_stacks())
    assert {s for f, _, s in deployed if f == "main.yml"} == {
        s for s in list_stacks() if environment(s) == "dev"
    }
    for file, name, job, context in deployments:
        stack = context["stack"]
        blueprint = blueprint_of(stack)
        active = signed_in(job, context)
        held = {github_credentials(s) for s in active}
        assert held == CREDENTIALS[blueprint], (file, name, stack, held)
        runner = evaluate(job["runs-on"].strip()[3:-2], context)
        if blueprint == "onprem":  # the stack's in-cluster runner, as its CI ServiceAccount
            assert runner == stack, (file, name, stack, runner)
            kube = next(s for s in active if github_credentials(s) == "kubernetes")
            assert render(kube["run"], context).endswith(f'{KUBECONFIG} "$TARGET"') or (
                kube["run"].endswith(f'{KUBECONFIG} "$STACK"')
            )
        else:
            assert runner == "ubuntu-latest", (file, name, stack, runner)
        for step in active:
            if github_credentials(step) == "aws":  # the stack's own deploy role
                role = render(step["with"]["role-to-assume"], context)
                assert role == f"arn:aws:iam::<account>:role/{stack}-ci-deploy", role


def test_the_credential_check_fails_a_job_that_deploys_sagemaker_with_azure_only():
    """Today's defect in miniature: a job that deploys a SageMaker stack holding only an Azure
    login (the step guard names the wrong blueprint) is found."""
    file, name, job, context = next(
        d for d in github_deployments() if d[0] == "main.yml" and d[3]["stack"] == "acme-dev"
    )
    broken = copy.deepcopy(job)
    for step in broken["steps"]:
        if github_credentials(step) == "azure":
            step["if"] = "matrix.blueprint == 'sagemaker'"
        if github_credentials(step) == "aws":
            step["if"] = "matrix.blueprint == 'nothing'"
    held = {github_credentials(s) for s in signed_in(broken, context)}
    assert held == {"azure"} != CREDENTIALS["sagemaker"]


# Azure DevOps: one job per platform -------------------------------------------------------


def azdo_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps") or job["strategy"]["runOnce"]["deploy"]["steps"]


def azdo_credentials(job: dict[str, Any]) -> set[str]:
    held = set()
    for step in azdo_steps(job):
        if step.get("task") == "AWSShellScript@1" and step["inputs"].get("awsCredentials"):
            held.add("aws")
        if step.get("task", "").startswith("AzureCLI@") and step["inputs"].get("azureSubscription"):
            held.add("azure")
        script = step.get("script", "") + step.get("inputs", {}).get("inlineScript", "")
        if KUBECONFIG in script:
            assert job.get("pool", {}).get("name") == "mlops-onprem", job.get("job")
            held.add("kubernetes")
    return held


def azdo_script(job: dict[str, Any]) -> str:
    return "\n".join(
        s.get("script", "") + s.get("inputs", {}).get("inlineScript", "") for s in azdo_steps(job)
    )


def test_each_azure_devops_job_signs_in_to_exactly_the_platforms_it_deploys():
    ci = load(PROJECT_ROOT / "azure-pipelines/ci.yml")
    apply_jobs = next(s for s in ci["stages"] if s["stage"] == "apply_dev")["jobs"]
    covered: set[str] = set()
    for job in apply_jobs:
        script = azdo_script(job)
        assert DEPLOYS.search(script), job["job"]
        command = next(line for line in script.splitlines() if "mlops stacks" in line)
        stacks = [r["stack"] for r in mlops_rows(command)]
        assert stacks, job["job"]
        platforms = {blueprint_of(s) for s in stacks}
        assert len(platforms) == 1, (job["job"], platforms)
        assert azdo_credentials(job) == CREDENTIALS[platforms.pop()], job["job"]
        covered |= set(stacks)
    assert covered == {s for s in list_stacks() if environment(s) == "dev"}

    release = load(PROJECT_ROOT / "azure-pipelines/release.yml")
    stage_key = {"release_source": "source", "promote_staging": "staging", "promote_prod": "prod"}
    deployed: set[str] = set()
    for source in model_stacks():
        links = chain(source)
        for stage in release["stages"]:
            key = stage_key.get(stage["stage"])
            if key is None or not links[key]:
                continue
            running = []
            for job in stage["jobs"]:
                guard = re.fullmatch(r"eq\(variables\.blueprint, '(\w+)'\)", job["condition"])
                assert guard, job["condition"]
                if guard.group(1) == links["blueprint"]:
                    running.append(job)
            assert len(running) == 1, (source, stage["stage"])
            job = running[0]
            assert DEPLOYS.search(azdo_script(job))
            assert azdo_credentials(job) == CREDENTIALS[blueprint_of(links[key])]
            deployed.add(links[key])
    assert deployed == set(model_stacks())


def test_release_chains_promote_through_staging_with_approvals_on_both_ci_systems():
    jobs = load(PROJECT_ROOT / ".github/workflows/release.yml")["jobs"]
    assert "record-pins" not in jobs  # the registry marker decides what serves
    staging, prod = jobs["promote-staging"], jobs["promote-prod"]
    assert (staging["environment"], prod["environment"]) == ("staging", "prod")
    assert "promote-staging" in prod["needs"]
    assert prod["env"]["SOURCE"] == (
        "${{ needs.resolve.outputs.staging || needs.resolve.outputs.source }}"
    )
    for job, env in ((staging, "staging"), (prod, "prod")):
        run = "\n".join(s.get("run", "") for s in job["steps"])
        assert "--approved-by" in run and "--approval-run" in run
        approval = next(s for s in job["steps"] if s.get("id") == "approval")
        assert approval["env"]["ENVIRONMENT"] == env and "approvals" in approval["run"]
    azdo = {s["stage"]: s for s in load(PROJECT_ROOT / "azure-pipelines/release.yml")["stages"]}
    assert list(azdo) == ["resolve", "release_source", "promote_staging", "promote_prod"]
    for stage, env in (("promote_staging", "staging"), ("promote_prod", "prod")):
        for job in azdo[stage]["jobs"]:
            assert job["environment"] == env
            script = azdo_script(job)
            assert "--approved-by" in script and "--approval-run" in script
            assert any("azure_devops_approver.py" in s.get("script", "") for s in azdo_steps(job))
    assert "chain.staging" in azdo["promote_prod"]["variables"]["source"]


def test_the_in_cluster_kubeconfig_names_the_token_file(tmp_path):
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("t")
    (sa / "ca.crt").write_text("c")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "SERVICEACCOUNT_DIR": str(sa),
        "KUBERNETES_SERVICE_HOST": "10.0.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
    }
    script = str(PROJECT_ROOT / KUBECONFIG)
    done = subprocess.run([script, "globex-dev"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((tmp_path / ".kube/config").read_text())
    assert config["users"][0]["user"] == {"tokenFile": f"{sa}/token"}  # named, never copied
    assert config["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:443"
    assert config["current-context"] == "globex-dev-ci"
    outside = subprocess.run(
        [script, "globex-dev"],
        env={**env, "SERVICEACCOUNT_DIR": str(tmp_path / "none")},
        capture_output=True,
        text=True,
    )
    assert outside.returncode == 1 and "ServiceAccount globex-dev-ci" in outside.stderr


def test_the_azure_devops_approver_is_the_reviewer_of_this_run():
    sys.path.insert(0, str(PROJECT_ROOT / "ci"))
    try:
        from azure_devops_approver import approver
    finally:
        sys.path.remove(str(PROJECT_ROOT / "ci"))

    def approval(run: int, status: str, who: str, when: str) -> dict[str, Any]:
        step = {"status": status, "actualApprover": {"uniqueName": who}, "lastModifiedOn": when}
        return {"pipeline": {"owner": {"id": run}}, "status": status, "steps": [step]}

    approvals = [
        approval(7, "approved", "qa@contoso.com", "2026-12-01T10:00:00Z"),
        approval(7, "approved", "lead@contoso.com", "2026-12-01T11:00:00Z"),
        approval(8, "approved", "other@contoso.com", "2026-12-01T12:00:00Z"),
        approval(7, "rejected", "nope@contoso.com", "2026-12-01T13:00:00Z"),
    ]
    assert approver(approvals, "7") == "lead@contoso.com"
    assert approver(approvals, "9") is None


def test_github_jobs_that_only_preview_sign_in_to_no_other_platform():
    """Jobs that sign in without deploying (the pull request's `pulumi preview`): each stack's
    instance holds at most its own platform's credentials."""
    deploying = {(f, j) for f, j, _, _ in github_deployments()}
    checked = 0
    for path in GITHUB:
        jobs = load(path)["jobs"]
        for name, job in jobs.items():
            if (path.name, name) in deploying or not any(
                github_credentials(s) for s in job["steps"]
            ):
                continue
            producer = jobs[job["needs"]]
            runs = [s.get("run", "") for s in producer["steps"]]
            command = next(r for r in runs if "mlops stacks" in r)
            # a change can affect any stack: check them all
            command = re.sub(r'--changed-since "\$\w+"', "", command)
            for row in mlops_rows(command):
                context = {f"matrix.{k}": v for k, v in row.items()}
                context |= {"vars.PREVIEW_ENABLED": "true", "vars.AWS_ACCOUNT_ID": "<account>"}
                context |= {"vars.AWS_REGION": "<region>", "vars.AZURE_TENANT_ID": "<t>"}
                context |= {"vars.AZURE_PREVIEW_CLIENT_ID": "<c>"}
                context |= {"vars.AZURE_SUBSCRIPTION_ID": "<s>"}
                held = {github_credentials(s) for s in signed_in(job, context)}
                assert held <= CREDENTIALS[row["blueprint"]], (path.name, name, row, held)
                checked += 1
    assert checked
