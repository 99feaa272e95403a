"""The one `mlops release` command: a stack goes to mlops.release, `local` to the local loop
with every option of `mlops release local` passed through."""

from __future__ import annotations

from typer.testing import CliRunner

from mlops.cli import app

runner = CliRunner()


def test_release_local_passes_the_rollout_stack_through(tmp_path) -> None:
    # --stack reaches the local release, which validates it before touching the endpoint
    result = runner.invoke(
        app,
        [
            "release",
            "local",
            "--stack",
            "nope-dev",
            "--bake-seconds",
            "0",
            "--workdir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "no stack 'nope-dev'" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


def test_release_local_defaults_to_the_local_loop_workdir() -> None:
    from mlops import cli_local, cli_release

    default = cli_release.release.__defaults__  # typer keeps defaults on the function
    assert cli_local.DEFAULT_WORKDIR in default


def test_pulumi_up_outside_mlops_apply_is_refused_with_the_fix():
    import pytest
    from pulumi import RunError

    from mlops.program import check_guarded_apply

    with pytest.raises(RunError, match="run `mlops apply acme-dev`"):
        check_guarded_apply("acme-dev", dry_run=False, env={})
    assert check_guarded_apply("acme-dev", False, {"MLOPS_GUARDED_APPLY": "acme-dev"}) is None
    with pytest.raises(RunError):  # the guard names one stack, not any
        check_guarded_apply("acme-dev", False, {"MLOPS_GUARDED_APPLY": "acme-prod"})
    assert "file's pin as is" in check_guarded_apply(
        "acme-dev", False, {"MLOPS_UNGUARDED_APPLY": "incident 12"}
    )
    assert "mlops apply acme-dev" in check_guarded_apply("acme-dev", True, {})
