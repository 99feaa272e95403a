"""Helpers shared by the step entry points: files, hashes, contract loading, lineage facts."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import pandas as pd

TABLE_SUFFIXES = (".csv", ".parquet")
FINGERPRINT_PACKAGES = ("numpy", "pandas", "scikit-learn", "scipy", "pandera", "mlflow")


class StepError(RuntimeError):
    """A step cannot go on; the message names what is wrong and how to fix it."""


def table_files(path: Path) -> list[Path]:
    """The data files at `path`: the file itself, or every CSV/Parquet file below a folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in TABLE_SUFFIXES and p.is_file())
        if files:
            return files
        raise StepError(f"no .csv or .parquet file under {path}; point --data at the batch")
    raise StepError(f"data path {path} does not exist; point --data at a file or folder")


def read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    frames = []
    for file in table_files(path):
        frames.append(pd.read_parquet(file) if file.suffix == ".parquet" else pd.read_csv(file))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def hash_files(files: Iterable[Path], root: Path | None = None) -> str:
    digest = hashlib.sha256()
    for file in files:
        name = str(file.relative_to(root)) if root else file.name
        digest.update(name.encode())
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def hash_path(path: Path) -> str:
    """sha256 over a file or a folder's files (names and contents), stable across machines."""
    path = Path(path)
    if path.is_file():
        return hash_files([path])
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return hash_files(files, root=path)


def data_hash(path: Path) -> str:
    return hash_files(table_files(path))


def write_json(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise StepError(f"{path} is missing; run the step that writes it first") from exc


def load_contract(ref: str | Path | None) -> dict[str, Any]:
    """The data contract at `ref`, or the packaged breast-cancer contract when empty."""
    if not ref:
        text = resources.files("pipelines.contracts").joinpath("breast_cancer.yaml").read_text()
        source = "packaged breast_cancer.yaml"
    else:
        path = Path(ref)
        if not path.is_file():
            raise StepError(
                f"data contract {path} not found; pass --contract FILE or leave it "
                "empty for the packaged breast-cancer contract"
            )
        text, source = path.read_text(), str(path)
    contract = yaml.safe_load(text)
    if not isinstance(contract, dict) or "columns" not in contract or "label" not in contract:
        raise StepError(f"data contract {source} needs 'columns' and 'label' keys")
    return contract


def feature_columns(contract: dict[str, Any]) -> list[str]:
    label = contract["label"]["column"]
    return [name for name in contract["columns"] if name != label]


def code_version() -> str:
    """Git sha of the code: $MLOPS_CODE_VERSION (baked into images), else git, else 'unknown'."""
    env = os.environ.get("MLOPS_CODE_VERSION") or os.environ.get("GIT_COMMIT")
    if env:
        return env
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else "unknown"


def environment_fingerprint() -> dict[str, str]:
    """Python, platform and key package versions, plus a short hash over all of them."""
    facts = {"python": platform.python_version(), "platform": sys.platform}
    for name in FINGERPRINT_PACKAGES:
        try:
            facts[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            facts[name] = "absent"
    facts["hash"] = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    return facts


def parse_scalar(value: Any) -> Any:
    """'1.0' -> 1.0, 'true' -> True, '3' -> 3; other strings stay strings (SageMaker hands
    hyperparameters over as strings)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
