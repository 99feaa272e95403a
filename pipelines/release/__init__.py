"""Releases: which registered model version a stack serves, how it gets there, and the record
of every attempt. One package for every platform:

- this module: the vocabulary (`ReleaseError`, `ReleaseFailed`, `ReleaseRecord`, `Candidate`,
  the `Platform` protocol each platform implements, the smoke input, the records file);
- `orchestrate`: `release` and `promote` (resolve -> pin -> apply -> healthy -> smoke ->
  record, rolled back on any failure after the pin), driving the stack through Pulumi's
  Automation API;
- `aws`, `azure`, `mlflow`: the `Platform` of SageMaker, Azure ML and MLflow (on-prem);
  `platforms.platform_for` builds the real one for a stack;
- `local`: the guarded rollout on this machine's endpoint (the local loop's release).

The services deployed into stacks that start a release (the Azure forwarder, the on-prem
bridge) live in `pipelines/services/`.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from core.config import StackSettings
from pipelines.steps._common import feature_columns, load_contract

MODEL_KEY = "mlops:model"
PREVIOUS_KEY = "mlops:rollout.previousModel"
RECORDS = Path(".mlops/releases/releases.jsonl")
APPROVED_TAG = "approval_status"
SOURCE_TAG = "mlops.promoted_from"
SERVING_TAG = "mlops.serving.{stack}"
"""The release marker: the registry version that carries the newest value of this tag (an
ISO-8601 UTC time) is the one the stack serves. Only `mlops release` / `promote` write it;
every apply (`mlops apply`, the workflows) serves that version (docs/releases.md)."""
GUARD_ENV = "MLOPS_GUARDED_APPLY"
"""Set to the stack name by the Automation API driver: the program refuses a `pulumi up` that
does not come through `mlops apply` / `release` (which resolve the release marker first)."""
UNGUARDED_ENV = "MLOPS_UNGUARDED_APPLY"
"""An operator's explicit, logged opt-out of that guard (its value is the reason)."""

Say = Callable[[str], None]
Sleep = Callable[[float], None]


class ReleaseError(RuntimeError):
    """The release cannot start; nothing was changed. The message says what to do."""


class ReleaseFailed(RuntimeError):
    """The release was attempted and undone (or could not be undone); see `record`."""

    def __init__(self, message: str, record: ReleaseRecord | None = None):
        super().__init__(message)
        self.record = record


@dataclass(frozen=True)
class Candidate:
    """One registry version that may be released."""

    version: str
    ref: str
    """Registry id of the version: model package ARN, Azure ML asset id, models:/ URI."""
    approved: bool
    lineage: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Approval:
    """The approval CI recorded for a protected environment (GitHub environment reviewers,
    an Azure DevOps environment check)."""

    approver: str
    run_id: str

    @classmethod
    def of(cls, approver: str | None, run_id: str | None) -> Approval | None:
        return cls(approver, run_id) if approver and run_id else None


class Platform(Protocol):
    """What a registry and endpoint must answer (`aws`, `azure`, `mlflow` implement it)."""

    name: str
    registry: str

    def newest_approved(self) -> Candidate | None: ...

    def get(self, version: str) -> Candidate: ...

    def wait_healthy(self, outputs: Mapping[str, Any], version: str) -> str: ...

    def smoke(self, outputs: Mapping[str, Any], version: str, smoke: SmokeInput) -> str: ...

    def tag(self, candidate: Candidate, key: str, value: str) -> None: ...

    def import_version(self, source: Platform, candidate: Candidate) -> Candidate: ...

    def versions(self) -> list[Candidate]:
        """Every version of the model, with its tags / metadata in `lineage`."""
        ...


def serving_tag(stack: str) -> str:
    return SERVING_TAG.format(stack=stack)


def released_version(platform: Platform, stack: str) -> Candidate | None:
    """The version the registry says `stack` serves (the newest release marker), or None when
    the stack was never released through `mlops release`."""
    key = serving_tag(stack)
    marked = [c for c in platform.versions() if str(c.lineage.get(key) or "")]
    return max(marked, key=lambda c: str(c.lineage[key])) if marked else None


def marker_value() -> str:
    """A release marker's value: the time, to the microsecond (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class StackDriver(Protocol):
    """Pulumi stack operations (AutomationDriver in production)."""

    def outputs(self) -> dict[str, Any]: ...

    def get(self, key: str, *, path: bool = False) -> str | None: ...

    def set(self, key: str, value: str, *, path: bool = False) -> None: ...

    def remove(self, key: str, *, path: bool = False) -> None: ...

    def up(self, say: Say) -> dict[str, Any]: ...


def short_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[-400:]


@dataclass(frozen=True)
class SmokeInput:
    """One prediction request built from the data contract: every feature at the middle of
    its allowed range, and the label values an answer may take."""

    columns: list[str]
    row: list[float]
    domain: list[Any]

    @classmethod
    def from_contract(cls, ref: str | Path | None = None) -> SmokeInput:
        contract = load_contract(ref)
        columns = feature_columns(contract)
        row = []
        for name in columns:
            rule = contract["columns"][name]
            lo, hi = rule.get("min"), rule.get("max")
            row.append(round((lo + hi) / 2, 6) if lo is not None and hi is not None else 0.0)
        return cls(columns, row, list(contract["label"].get("domain") or []))

    def dataframe_split(self) -> dict[str, Any]:
        """MLflow scoring server / SageMaker MLflow container body."""
        return {"dataframe_split": {"columns": self.columns, "data": [self.row]}}

    def input_data(self) -> dict[str, Any]:
        """Azure ML MLflow online deployment body."""
        return {"input_data": {"columns": self.columns, "index": [0], "data": [self.row]}}

    def open_inference(self) -> dict[str, Any]:
        """KServe v2 (open inference protocol) body: one named input per column."""
        return {
            "inputs": [
                {"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
                for c, v in zip(self.columns, self.row, strict=True)
            ]
        }

    def check(self, predictions: Any) -> str | None:
        """None when `predictions` holds exactly one value of the label domain."""
        if isinstance(predictions, Mapping):
            predictions = predictions.get("predictions", predictions.get("outputs"))
        if isinstance(predictions, list) and predictions and isinstance(predictions[0], Mapping):
            predictions = predictions[0].get("data")  # open inference output tensor
        if not isinstance(predictions, list) or len(predictions) != 1:
            return f"expected one prediction, got {str(predictions)[:200]}"
        value = predictions[0]
        if self.domain and value not in self.domain:
            return f"prediction {value!r} is not in the label domain {self.domain}"
        return None


@dataclass
class ReleaseRecord:
    """One release attempt on any platform (`mlops release STACK` and the local loop alike),
    as appended to a releases.jsonl."""

    stack: str
    """The stack released to (`local` for this machine's endpoint)."""
    platform: str
    """sagemaker, azureml, onprem or local."""
    version: str
    previous: str | None
    """The version serving before (the local endpoint: the versions, comma-separated)."""
    outcome: str = "started"
    """released, unchanged, rolled-back, rollback-failed; `mlops apply`: applied; locally
    also refused, failed, interrupted."""
    reason: str = ""
    ref: str = ""
    registry: str = ""
    lineage: dict[str, Any] = field(default_factory=dict)
    promoted_from: dict[str, Any] = field(default_factory=dict)
    approval: dict[str, str] = field(default_factory=dict)
    actor: str = ""
    run: str = ""
    commit: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    kind: str = "release"
    """release, rollback (an explicit release of an older version than the one serving), apply."""
    pinned: str | None = None
    """`mlops apply`: the version the stack file pinned, when it differed from the release."""
    started: str = ""
    finished: str = ""
    serving_before: list[str] = field(default_factory=list)
    """Local endpoint: every version that served when the release started."""
    model_name: str = ""
    model_uri: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    strategy: str = ""
    """Local endpoint: the rollout strategy the traffic moved by."""
    seconds: float = 0.0
    seconds_to_full_traffic: float | None = None
    """Local endpoint: from the start of the release (the approval trigger) to 100 % of
    traffic on it."""
    endpoint: str = ""

    def step(self, name: str, ok: bool, detail: str = "") -> None:
        self.steps.append({"step": name, "ok": ok, "detail": detail, "at": now_iso()})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def ci_context(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Who and which run: GitHub Actions, Azure DevOps, or the local user."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true":
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        repo, run_id = env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_RUN_ID", "")
        run = f"{server}/{repo}/actions/runs/{run_id}"
        return {
            "actor": env.get("GITHUB_ACTOR", ""),
            "run": run,
            "commit": env.get("GITHUB_SHA", ""),
        }
    if env.get("TF_BUILD") == "True":
        return {
            "actor": env.get("BUILD_REQUESTEDFOR", ""),
            "run": f"{env.get('SYSTEM_COLLECTIONURI', '')}{env.get('SYSTEM_TEAMPROJECT', '')}"
            f"/_build/results?buildId={env.get('BUILD_BUILDID', '')}",
            "commit": env.get("BUILD_SOURCEVERSION", ""),
        }
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"actor": user, "run": "local", "commit": ""}


def append_record(record: ReleaseRecord, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(asdict(record), default=str, sort_keys=True) + "\n")


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def model_name(settings: StackSettings) -> str:
    """The registered model name every blueprint uses (pipelines.definition)."""
    return f"{settings.client}-classifier"


class Waiter:
    """Polls a health probe until it is healthy, fatal or out of time."""

    def __init__(self, timeout_s: float, poll_s: float, sleep: Sleep):
        self.timeout_s, self.poll_s, self.sleep = timeout_s, poll_s, sleep

    def until(self, probe: Callable[[], str | None], what: str) -> str:
        """Poll `probe` (None: healthy, else the state now) until healthy or timed out."""
        waited, state = 0.0, "unknown"
        while True:
            state = probe()
            if state is None:
                return f"{what} healthy after {waited:.0f} s"
            if state.startswith("fatal:") or waited >= self.timeout_s:
                raise ReleaseFailed(
                    f"{what} not healthy after {waited:.0f} s: {state.removeprefix('fatal:')}"
                )
            self.sleep(self.poll_s)
            waited += self.poll_s
