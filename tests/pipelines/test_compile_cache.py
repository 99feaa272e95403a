"""The compiled-definition cache (`pipelines/compilers/cache.py`): every example stack's
committed artifacts are current and byte-identical to a fresh compile, any changed input misses,
a template never serves other inputs, and a plan imports only the SDK its platform uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from core.config import PROJECT_ROOT, list_stacks, load_stack
from pipelines.compilers import cache
from pipelines.definition import PipelineSettings
from tests.conftest import plan_lookups

# every stack with a pipeline: a cluster stack (blueprint cluster) runs none
STACKS = [s for s in list_stacks(PROJECT_ROOT) if load_stack(s).blueprint != "cluster"]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@pytest.mark.parametrize("stack", STACKS)
def test_committed_definitions_are_current_and_equal_a_fresh_compile(stack: str) -> None:
    calls = plan_lookups(stack)  # the lookups of the suite's shared plan (tests/conftest.py)
    assert calls, f"{stack} compiled no pipeline definition"
    stale = [c.artifact.name for c in calls if not c.hit]
    assert not stale, (
        f"{stack}: compiled pipeline definitions stale or missing: {', '.join(stale)}; "
        f"run `{cache.REFRESH_COMMAND}` and commit compiled/"
    )
    for call in calls:
        assert _text(call.fresh()) == _text(call.value), f"{stack}: {call.kind} differs"


def test_no_unused_artifact_is_committed() -> None:
    used = set()
    for stack in STACKS:  # the lookups each shared plan made (tests/conftest.py)
        used |= {c.artifact for c in plan_lookups(stack)}
    unused = sorted(p.name for p in set(cache.compiled_dir().glob("*.json")) - used)
    assert not unused, f"unused artifacts {unused}; run `{cache.REFRESH_COMMAND}`"


def _toy(values: dict[str, str]) -> str:
    """A compiler stand-in: a JSON definition that embeds the resolved values."""
    return json.dumps({"role": values["role_arn"], "out": f"s3://{values['bucket']}/x"})


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_COMPILED_DIR", str(tmp_path))
    return tmp_path


def _lookup(resolved: dict[str, str], compile_: Any = _toy, **inputs: Any) -> cache.Lookup:
    with cache.recording() as calls:
        cache.compiled(
            "sagemaker",
            inputs={"settings": PipelineSettings(), **inputs},
            resolved=resolved,
            compile=compile_,
        )
    return calls[0]


REAL = {"role_arn": "arn:aws:iam::111111111111:role/a", "bucket": "bucket-a"}


def test_template_filled_with_other_values_equals_their_fresh_compile(store: Path) -> None:
    with cache.writing():
        written = _lookup(REAL)
    assert not written.hit and written.artifact.exists()
    assert "bucket-a" not in written.artifact.read_text()  # a template, not this plan's values
    other = {"role_arn": 'arn:aws:iam::222222222222:role/b"q', "bucket": "bucket-b"}
    hit = _lookup(other)
    assert hit.hit
    assert hit.value == _toy(other)
    json.loads(hit.value)  # values are inserted JSON-escaped


@pytest.mark.parametrize(
    "change",
    [
        {"inputs": {"settings": PipelineSettings(gate_minimum=0.8)}},
        {"inputs": {"pipeline_name": "other"}},
        {"resolved": {**REAL, "bucket": ""}},
        {"resolved": {**REAL, "kms_key_id": "key"}},
        {"sdk": "0.0.1"},
        {"source": "pipelines/steps/train.py"},
    ],
    ids=["settings", "name", "empty-value", "new-value", "sdk-version", "step-code"],
)
def test_changing_any_input_misses(
    store: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any]
) -> None:
    with cache.writing():
        _lookup(REAL)
    assert _lookup(REAL).hit
    if "sdk" in change:
        monkeypatch.setattr(cache, "sdk_version", lambda kind: change["sdk"])
    if "source" in change:
        path = PROJECT_ROOT / change["source"]
        original = cache._file_digest

        def digest(p: Path) -> str:
            return "changed" if p == path else original(p)

        monkeypatch.setattr(cache, "_file_digest", digest)
    inputs = change.get("inputs", {"settings": PipelineSettings()})
    looked = _lookup(change.get("resolved", REAL), **{k: v for k, v in inputs.items()})
    assert not looked.hit
    assert looked.value == _toy({**REAL, **change.get("resolved", {})} or REAL)


def test_a_definition_that_transforms_a_resolved_value_is_not_cached(store: Path) -> None:
    def upper(values: dict[str, str]) -> str:
        return json.dumps({"bucket": values["bucket"].upper()})

    with cache.writing(), pytest.raises(RuntimeError, match="cannot be cached"):
        _lookup(REAL, upper)
    assert not list(store.glob("*.json"))


def test_a_damaged_or_foreign_artifact_is_recompiled(store: Path) -> None:
    with cache.writing():
        path = _lookup(REAL).artifact
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "key": "0" * 64, "template": '{"role": "stale"}'}))
    looked = _lookup(REAL)
    assert not looked.hit and looked.value == _toy(REAL)
    path.write_text("{not json")
    assert not _lookup(REAL).hit


def test_cache_off_always_compiles(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with cache.writing():
        _lookup(REAL)
    monkeypatch.setenv("MLOPS_COMPILE_CACHE", "off")
    assert not _lookup(REAL).hit


def test_inputs_that_are_not_plain_data_are_refused(store: Path) -> None:
    with pytest.raises(TypeError, match="not plain data"):
        _lookup(REAL, name=object())


SDKS = ("sagemaker", "azure.ai.ml", "hera")
PROBE = textwrap.dedent(
    """
    import json, os, sys
    from mlops.plan import run_plan
    seen = []
    for arg in sys.argv[1:]:
        cache, stack = arg.split(":")
        os.environ["MLOPS_COMPILE_CACHE"] = cache
        run_plan(stack)
        sdks = {m.split(".")[0] if m.split(".")[0] != "azure" else "azure.ai.ml"
                for m in sys.modules if m.startswith(("sagemaker", "azure.ai.ml", "hera"))}
        seen.append([arg, sorted(sdks)])
    print(json.dumps(seen))
    """
)


def _imports(*plans: str) -> list[list[Any]]:
    """[["on:acme-prod", [SDKs loaded after it]], ...]: the pipeline SDKs in a fresh
    interpreter after each plan, in order (`on:` with the compile cache, `off:` without)."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *plans],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MLOPS_COMPILE_CACHE"},
        cwd=PROJECT_ROOT,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def sdk_probe() -> list[list[Any]]:
    """Two interpreters, one per SDK a miss loads: in each, hits first, then a miss. The hits
    load no SDK, so the set after the miss is what the miss alone imported."""
    # acme-prod has the SageMaker pipeline and batch definitions, globex-prod the Argo one,
    # contoso-dev the Azure ML job and components (as contoso-prod, at half the plan's cost)
    return _imports("on:acme-prod", "on:globex-prod", "off:acme-prod") + _imports(
        "on:contoso-dev", "off:contoso-dev"
    )


def test_a_plan_with_current_artifacts_imports_no_pipeline_sdk(sdk_probe: list) -> None:
    hits = [probe for probe in sdk_probe if probe[0].startswith("on:")]
    assert hits == [["on:acme-prod", []], ["on:globex-prod", []], ["on:contoso-dev", []]]


def test_a_miss_imports_only_its_platforms_sdk(sdk_probe: list) -> None:
    misses = [probe for probe in sdk_probe if probe[0].startswith("off:")]
    assert misses == [["off:acme-prod", ["sagemaker"]], ["off:contoso-dev", ["azure.ai.ml"]]]
