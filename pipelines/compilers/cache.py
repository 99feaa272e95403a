"""Compile a pipeline definition only when its inputs change.

    value = compiled("sagemaker", inputs={...}, resolved={"role_arn": role, ...},
                     compile=lambda values: compile_sagemaker(..., role_arn=values["role_arn"]))

Every compiler adapter (components/aws/pipeline.py, components/aws/batch.py,
components/azure/pipeline.py, components/onprem/pipeline.py) goes through `compiled`. The
artifact is looked up by a key: a SHA-256 over

- `kind` and `inputs`: the plain values the definition is compiled from (the pipeline settings,
  names, region, instance types...), known when the program starts;
- the names of the `resolved` values and which of them are empty: values that come from other
  resources (role ARNs, bucket names, image URIs, ARM ids), known only inside `apply`;
- the source of the compilers, of `pipelines/definition.py` and of the step code the definition
  names (`pipelines/steps/`, the trainer module);
- the version of the SDK the kind compiles with (sagemaker, azure-ai-ml, hera).

The stored artifact is a template: it was compiled with a placeholder in place of every
non-empty resolved value, and `compiled` fills in the real values. So the same artifact serves
`mlops plan` (mock values), `pulumi preview` and `pulumi up` (real values), and a definition is
never reused for other inputs: anything that is not filled in is in the key. (Under `pulumi
preview` an unknown Output never reaches `apply`, so nothing is compiled or looked up for it.)

Artifacts live in `compiled/` beside the `Pulumi.<stack>.yaml` files and are committed, so CI
runners and `pulumi up` from a clean clone take the fast path. `mlops compile` writes them
(each template is checked on write: filled with the plan's values it must equal a fresh compile
byte for byte) and removes the ones no example stack uses; `mlops compile --check` and the test
suite fail on a stale or missing one. A lookup that misses compiles with the real SDK and the
real values, and writes nothing.

Environment: `MLOPS_COMPILED_DIR` moves the directory; `MLOPS_COMPILE_CACHE=off` bypasses it
(every definition is compiled).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

FORMAT = 1
"""Bumped when the artifact layout or the key changes."""
ROOT = Path(__file__).resolve().parents[2]
PIPELINES = ROOT / "pipelines"
SDK_OF_KIND = {
    "sagemaker": "sagemaker",
    "sagemaker-batch": "sagemaker",
    "azureml-components": "azure-ai-ml",
    "azureml-job": "azure-ai-ml",
    "argo": "hera",
}
"""The SDK each kind of definition is compiled with (its version is part of the key)."""
REFRESH_COMMAND = ".venv/bin/mlops compile"
PLACEHOLDER = "mlops-placeholder-{name}"


def compiled_dir() -> Path:
    """Where the artifacts are read from and written to (`MLOPS_COMPILED_DIR` overrides)."""
    return Path(os.environ.get("MLOPS_COMPILED_DIR") or ROOT / "compiled")


def enabled() -> bool:
    return os.environ.get("MLOPS_COMPILE_CACHE", "on").lower() not in ("off", "0", "false", "no")


@functools.cache
def sdk_version(kind: str) -> str:
    if kind not in SDK_OF_KIND:
        raise ValueError(
            f"kind={kind!r} is not one of {', '.join(SDK_OF_KIND)}; add it to SDK_OF_KIND"
        )
    return metadata.version(SDK_OF_KIND[kind])


def source_files(trainer: str = "") -> list[Path]:
    """The code a compiled definition depends on: the compilers, the definition, the step code
    (and the trainer module the settings name, when it is a source file)."""
    files = [
        *sorted((PIPELINES / "compilers").glob("*.py")),
        PIPELINES / "definition.py",
        *sorted((PIPELINES / "steps").rglob("*.py")),
    ]
    module = trainer.partition(":")[0]
    if module:
        try:
            spec = find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            files.append(Path(spec.origin))
    return list(dict.fromkeys(files))


@functools.cache
def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_digest(trainer: str = "") -> str:
    digest = hashlib.sha256()
    for path in source_files(trainer):
        rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
        digest.update(f"{rel}\0{_file_digest(path)}\n".encode())
    return digest.hexdigest()


def plain(value: Any) -> Any:
    """`value` as JSON-able data for the key (dataclasses as dicts, tuples as lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"compile input {value!r} ({type(value).__name__}) is not plain data; pass strings, "
        "numbers, lists, dicts or dataclasses of them to compiled()"
    )


def cache_key(
    kind: str,
    inputs: Mapping[str, Any],
    resolved: Mapping[str, str],
    trainer: str = "",
    keyed: Mapping[str, str] | None = None,
) -> str:
    """The key of a definition: everything it depends on except the filled-in values."""
    material = {
        "keyed": dict(sorted((keyed or {}).items())),
        "format": FORMAT,
        "kind": kind,
        "sdk": sdk_version(kind),
        "source": source_digest(trainer),
        "inputs": plain(inputs),
        "resolved": {name: bool(value) for name, value in sorted(resolved.items())},
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def placeholders(resolved: Mapping[str, str], shapes: Mapping[str, str]) -> dict[str, str]:
    """The value each resolved name is compiled with in the template: a unique token in the
    shape the compiler validates (e.g. an IAM role ARN); empty values stay empty."""
    out = {}
    for name, value in resolved.items():
        if not value:
            out[name] = value
            continue
        token = PLACEHOLDER.format(name=name.replace("_", "-"))
        out[name] = shapes.get(name, "{}").format(token)
    return out


def fill(template: Any, swaps: Mapping[str, str], *, json_text: bool) -> Any:
    """`template` with every placeholder replaced by its real value. In JSON text the value is
    inserted JSON-escaped; in data every string (keys too) is rewritten."""
    if isinstance(template, str):
        out = template
        for placeholder, value in swaps.items():
            if placeholder != value:
                real = json.dumps(value)[1:-1] if json_text else value
                out = out.replace(placeholder, real)
        return out
    if isinstance(template, dict):
        return {
            fill(k, swaps, json_text=False): fill(v, swaps, json_text=False)
            for k, v in template.items()
        }
    if isinstance(template, list):
        return [fill(v, swaps, json_text=False) for v in template]
    return template


@dataclass
class Lookup:
    """One `compiled` call, as seen by `recording()`."""

    kind: str
    key: str
    hit: bool
    value: Any
    fresh: Callable[[], Any]
    """Compile again with the real SDK and the real values (no cache)."""
    artifact: Path


@dataclass
class _State:
    recorders: list[list[Lookup]] = field(default_factory=list)
    writing: bool = False
    written: set[Path] = field(default_factory=set)


_STATE = _State()


@contextlib.contextmanager
def recording() -> Iterator[list[Lookup]]:
    """Collect every lookup made inside the block."""
    calls: list[Lookup] = []
    _STATE.recorders.append(calls)
    try:
        yield calls
    finally:
        _STATE.recorders.remove(calls)


@contextlib.contextmanager
def writing() -> Iterator[set[Path]]:
    """Inside the block a miss compiles the template, checks it, and writes the artifact;
    yields the set of artifact paths used (hits and writes)."""
    _STATE.writing, _STATE.written = True, set()
    try:
        yield _STATE.written
    finally:
        _STATE.writing = False


def _artifact_path(kind: str, key: str) -> Path:
    return compiled_dir() / f"{kind}-{key[:24]}.json"


def _read(path: Path, key: str) -> dict[str, Any] | None:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None  # a truncated-key collision or a hand edit: never reuse it
    return stored


def _to_text(value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        return "text", value
    return "json", json.dumps(value)


def compiled(
    kind: str,
    *,
    inputs: Mapping[str, Any],
    resolved: Mapping[str, str],
    compile: Callable[[Mapping[str, str]], Any],  # noqa: A002 - what it is
    shapes: Mapping[str, str] | None = None,
    trainer: str = "",
    keyed: Mapping[str, str] | None = None,
) -> Any:
    """The definition `compile(values)` returns for the real `resolved` values, from the
    artifact when its key matches (no SDK import), else compiled with the real SDK.

    `compile` must build the definition from `inputs` (fixed by the caller) and the `values`
    it is given for the resolved names (the real ones, or placeholders for the template).
    `shapes` gives a resolved name a format the compiler accepts (`"{}"` is the token).
    `keyed` are values from other resources that the compiler transforms (hashes them, for
    example): they are passed as they are and are part of the key, never a placeholder."""
    resolved = dict(resolved)
    key = cache_key(kind, inputs, resolved, trainer, keyed)
    path = _artifact_path(kind, key)
    tokens = {**placeholders(resolved, shapes or {}), **(keyed or {})}
    swaps = {tokens[name]: value for name, value in resolved.items() if value}

    def fresh() -> Any:
        return compile({**resolved, **(keyed or {})})

    stored = _read(path, key) if enabled() else None
    if stored is not None:
        value = fill(stored["template"], swaps, json_text=True)
        value = value if stored["type"] == "text" else json.loads(value)
        hit = True
    elif enabled() and _STATE.writing:
        value = fresh()
        template = compile(tokens)
        type_, text = _to_text(template)
        filled = fill(text, swaps, json_text=True)
        if filled != _to_text(value)[1]:
            raise RuntimeError(
                f"the {kind} definition cannot be cached: filling its template with this plan's "
                "values does not give the fresh compile (the compiler transforms a resolved "
                "value); pass that value in `inputs` instead of `resolved`"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        artifact = {"format": FORMAT, "key": key, "kind": kind, "type": type_, "template": text}
        path.write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n")
        hit = False
    else:
        value = fresh()
        hit = False
    if _STATE.writing:
        _STATE.written.add(path)
    for calls in _STATE.recorders:
        calls.append(Lookup(kind=kind, key=key, hit=hit, value=value, fresh=fresh, artifact=path))
    return value
