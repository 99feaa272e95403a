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
