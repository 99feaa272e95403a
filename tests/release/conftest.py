"""Fixtures of the release tests.

`pulumi` is a recording stand-in (tests/release/pulumi_standin.py) that the `standin` fixture
puts first on PATH: the Pulumi Automation API shells out to the `pulumi` CLI, and there is no
Pulumi CLI, backend or cloud here. The stand-in records every argv, keeps config in the stack
file as the CLI does, and on `up` runs a per-test hook that plays the cloud side.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.config import PROJECT_ROOT

HERE = Path(__file__).parent


@dataclass
class Standin:
    bin: Path
    log: Path
    state: Path
    root: Path

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [[a for a in row if a != "--non-interactive"] for row in rows]

    def commands(self) -> list[str]:
        """`up`, `config set mlops:model 3`, ... (flags dropped) in call order."""
        out = []
        for row in self.calls():
            words, skip = [], False
            for a in row:
                if skip:
                    skip = False
                elif a in ("--stack", "--exec-kind"):
                    skip = True
                elif a not in ("--", "--path", "--plaintext", "--json", "--yes", "--skip-preview"):
                    words.append(a)
            out.append(" ".join(words))
        return out

    def seed_outputs(self, outputs: dict[str, Any]) -> None:
        self.state.write_text(json.dumps({"outputs": outputs}))

    def stack_config(self, stack: str) -> dict[str, Any]:
        import yaml

        return yaml.safe_load((self.root / f"Pulumi.{stack}.yaml").read_text())["config"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's stack files: releases edit them as `pulumi config set` does."""
    root = tmp_path / "project"
    root.mkdir()
    for path in [PROJECT_ROOT / "Pulumi.yaml", *PROJECT_ROOT.glob("Pulumi.*.yaml")]:
        shutil.copy(path, root)
    # The example dev stacks promote to staging; these tests exercise the last, approved step
    # of a chain (into prod) from dev, as a client without a staging stack configures it.
    for dev in root.glob("Pulumi.*-dev.yaml"):
        text = dev.read_text()
        client = dev.name.removeprefix("Pulumi.").removesuffix("-dev.yaml")
        assert f"target: {client}-staging" in text, dev
        dev.write_text(text.replace(f"target: {client}-staging", f"target: {client}-prod"))
    return root


@pytest.fixture
def standin(tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> Standin:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    script = (HERE / "pulumi_standin.py").read_text()
    exe = bin_ / "pulumi"
    exe.write_text(script.replace("#!/usr/bin/env python3", f"#!{sys.executable}", 1))
    exe.chmod(0o755)
    found = Standin(bin_, tmp_path / "pulumi-calls.jsonl", tmp_path / "pulumi-state.json", project)
    monkeypatch.setenv("PATH", f"{bin_}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("PULUMI_STANDIN_LOG", str(found.log))
    monkeypatch.setenv("PULUMI_STANDIN_STATE", str(found.state))
    monkeypatch.delenv("PULUMI_STANDIN_UP_HOOK", raising=False)
    for ci in ("GITHUB_ACTIONS", "TF_BUILD"):
        monkeypatch.delenv(ci, raising=False)
    return found


def hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> Path:
    """Install the stand-in's `up` hook: `code` runs with STACK and CONFIG (a dict) defined."""
    path = tmp_path / "up_hook.py"
    path.write_text(
        "import json, sys\nSTACK, CONFIG = sys.argv[1], json.loads(sys.argv[2])\n" + code
    )
    monkeypatch.setenv("PULUMI_STANDIN_UP_HOOK", str(path))
    return path


def restore_stack_file(project: Path, stack: str, pin: str | None) -> None:
    """What a checkout of main holds: the stack file from git, with `pin` as mlops:model
    (the pin before the release), as an unrelated apply from main would see it."""
    import yaml

    doc = yaml.safe_load((PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text())
    doc["config"].pop("mlops:model", None)
    if pin:
        doc["config"]["mlops:model"] = pin
    (project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def in_github_actions(monkeypatch: pytest.MonkeyPatch, sha: str) -> None:
    for key, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": sha,
        "GITHUB_REPOSITORY": "acme/mlops",
        "GITHUB_RUN_ID": "42",
        "GITHUB_ACTOR": "release-bot",
    }.items():
        monkeypatch.setenv(key, value)
