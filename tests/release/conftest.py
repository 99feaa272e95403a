"""Fixtures of the release tests.

`pulumi` is a recording stand-in (tests/release/pulumi_standin.py) that the `standin` fixture
puts first on PATH: the Pulumi Automation API shells out to the `pulumi` CLI, and there is no
Pulumi CLI, backend or cloud here. The stand-in records every argv, keeps config in the stack
file as the CLI does, and on `up` asks a per-test hook (`hook`) to play the cloud side.
"""

from __future__ import annotations

import json
import shutil
import socketserver
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    # `-S`: the stand-in runs a dozen times per release and needs no site-packages but PyYAML
    exe.write_text(script.replace("#!/usr/bin/env python3", f"#!{sys.executable} -S", 1))
    exe.chmod(0o755)
    found = Standin(bin_, tmp_path / "pulumi-calls.jsonl", tmp_path / "pulumi-state.json", project)
    monkeypatch.setenv("PATH", f"{bin_}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("PULUMI_STANDIN_SITE", str(Path(yaml.__file__).parent.parent))
    monkeypatch.setenv("PULUMI_STANDIN_LOG", str(found.log))
    monkeypatch.setenv("PULUMI_STANDIN_STATE", str(found.state))
    monkeypatch.delenv("PULUMI_STANDIN_UP_HOOK", raising=False)
    for ci in ("GITHUB_ACTIONS", "TF_BUILD"):
        monkeypatch.delenv(ci, raising=False)
    return found


Play = Callable[[str, dict[str, Any]], None]
"""What Pulumi's update changes in the cloud, given the stack name and its config."""


class HookServer(socketserver.TCPServer):
    """Answers the stand-in's `up` in the test process: the stand-in sends the stack and its
    config; `play` runs here (with the test's clients, e.g. boto3 on the moto server) and the
    stand-in fails the update with its traceback when it raises. In process, an update costs
    no interpreter start and no second import of boto3."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.play: Play | None = None

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host}:{port}"


class _HookHandler(socketserver.StreamRequestHandler):
    server: HookServer

    def handle(self) -> None:
        request = json.loads(self.rfile.read())
        try:
            if self.server.play is None:
                raise RuntimeError("PULUMI_STANDIN_UP_HOOK is set but no hook is installed")
            self.server.play(request["stack"], request["config"])
            answer = "ok"
        except Exception:  # noqa: BLE001 - the stand-in reports it as a failed update
            answer = traceback.format_exc()
        self.wfile.write(answer.encode())


@pytest.fixture(scope="session")
def hook_server() -> Iterator[HookServer]:
    server = HookServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def hook(server: HookServer, monkeypatch: pytest.MonkeyPatch, play: Play) -> None:
    """Install the stand-in's `up` hook: each `pulumi up` calls `play(stack, config)`."""
    monkeypatch.setattr(server, "play", play)
    monkeypatch.setenv("PULUMI_STANDIN_UP_HOOK", server.address)


def restore_stack_file(project: Path, stack: str, pin: str | None) -> None:
    """What a checkout of main holds: the stack file from git, with `pin` as mlops:model
    (the pin before the release), as an unrelated apply from main would see it."""
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
