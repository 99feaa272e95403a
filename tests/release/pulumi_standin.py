#!/usr/bin/env python3
"""A recording stand-in for the `pulumi` CLI, put first on PATH by the release tests.

The Pulumi Automation API shells out to `pulumi`; there is no Pulumi CLI, backend or cloud in
the test environment, so this script answers the commands the release code makes, plausibly:

- every call is appended to $PULUMI_STANDIN_LOG as a JSON list of its arguments;
- `version` prints a supported version; `stack select` accepts any stack that has a
  `Pulumi.<stack>.yaml` in the working directory and fails like the CLI otherwise;
- `config get/set/rm [--path]` read and write the `config:` block of `Pulumi.<stack>.yaml`,
  as the CLI does for plain values;
- `up` asks the test's hook, when $PULUMI_STANDIN_UP_HOOK names one (host:port of the
  `conftest.hook` server in the test process: it gets the stack name and its config and plays
  what Pulumi would change in the cloud, e.g. on a moto server), exits 255 when the hook fails,
  and records the stack outputs in $PULUMI_STANDIN_STATE;
- `stack output --json` prints those outputs (seeded by the test, modelVersion from config).

It runs once per Automation API call (a dozen per release), so it starts lean: the fixture runs
it with `python -S` and it imports PyYAML from $PULUMI_STANDIN_SITE only for the commands that
read or write a stack file.
"""

from __future__ import annotations

import json
import os
import sys
import types

args = [a for a in sys.argv[1:] if a != "--non-interactive"]
with open(os.environ["PULUMI_STANDIN_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")


def opt(name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def stack_file() -> str:
    return os.path.join(os.getcwd(), f"Pulumi.{opt('--stack')}.yaml")


def pyyaml() -> types.ModuleType:
    """PyYAML, from the test environment's site-packages (the stand-in runs with `python -S`)."""
    sys.path.append(os.environ["PULUMI_STANDIN_SITE"])
    import yaml

    return yaml


def load() -> dict:
    with open(stack_file(), encoding="utf-8") as fh:
        return pyyaml().safe_load(fh) or {}


def save(doc: dict) -> None:
    with open(stack_file(), "w", encoding="utf-8") as fh:
        fh.write(pyyaml().safe_dump(doc, sort_keys=False))


def state() -> dict:
    path = os.environ["PULUMI_STANDIN_STATE"]
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def up_hook(stack: str, config: dict) -> bool:
    """Ask the test's hook server (conftest.hook) to play the update; True when it succeeded,
    else its error is written to stderr, as a failed update's is."""
    import socket

    host, port = os.environ["PULUMI_STANDIN_UP_HOOK"].rsplit(":", 1)
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(json.dumps({"stack": stack, "config": config}).encode())
        conn.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: conn.recv(65536), b"")).decode()
    if answer == "ok":
        return True
    sys.stderr.write(answer)
    return False


def positional(after: int) -> list[str]:
    out, skip = [], False
    for a in args[after:]:
        if skip:
            skip = False
        elif a in ("--stack", "--cwd", "--exec-kind", "--event-log", "--client"):
            skip = True
        elif a != "--" and not a.startswith("--"):
            out.append(a)
    return out


def set_path(config: dict, key: str, value: str | None, path: bool) -> None:
    if not path or "." not in key:
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
        return
    head, *rest = key.split(".")
    node = config.setdefault(head, {})
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(rest[-1], None)
    else:
        node[rest[-1]] = value


def get_path(config: dict, key: str, path: bool):
    if not path or "." not in key:
        return config.get(key)
    head, *rest = key.split(".")
    node = config.get(head)
    for part in rest:
        node = node.get(part) if isinstance(node, dict) else None
    return node


if args[:1] == ["version"]:
    print("v3.200.0")
elif args[:2] == ["stack", "select"]:
    if not os.path.exists(stack_file()):
        sys.stderr.write(f"error: no stack named '{opt('--stack')}' found\n")
        sys.exit(255)
elif args[:2] in (["config", "get"], ["config", "set"], ["config", "rm"]):
    doc = load()
    config = doc.setdefault("config", {})
    path = "--path" in args
    values = positional(2)
    if args[1] == "get":
        value = get_path(config, values[0], path)
        if value is None:
            sys.stderr.write(f"error: configuration key '{values[0]}' not found\n")
            sys.exit(255)
        print(
            json.dumps(
                {
                    "value": json.dumps(value) if isinstance(value, dict) else str(value),
                    "secret": False,
                }
            )
        )
    else:
        set_path(config, values[0], values[1] if args[1] == "set" else None, path)
        save(doc)
elif args[:1] == ["up"]:
    config = load().get("config") or {}
    if os.environ.get("PULUMI_STANDIN_UP_HOOK") and not up_hook(opt("--stack"), config):
        sys.stderr.write("error: update failed\n")
        sys.exit(255)
    st = state()
    outputs = st.setdefault("outputs", {})
    outputs["modelVersion"] = str(config.get("mlops:model") or "")
    with open(os.environ["PULUMI_STANDIN_STATE"], "w", encoding="utf-8") as fh:
        fh.write(json.dumps(st))
    print(f"Updating ({opt('--stack')})\nResources:\n    1 updated\n")
elif args[:3] == ["stack", "output", "--json"]:
    print(json.dumps(state().get("outputs", {})))
elif args[:2] == ["stack", "history"]:
    print(
        json.dumps(
            [
                {
                    "kind": "update",
                    "startTime": "2025-01-01T00:00:00.000Z",
                    "message": "",
                    "environment": {},
                    "config": {},
                    "result": "succeeded",
                    "endTime": "2025-01-01T00:00:01.000Z",
                    "version": 1,
                }
            ]
        )
    )
else:
    sys.stderr.write(f"stand-in pulumi: unsupported command {args}\n")
    sys.exit(2)
