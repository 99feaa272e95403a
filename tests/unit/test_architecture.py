"""docs/architecture.md says what the code is: the layer table follows the import-linter
contract that `make test` enforces, and every file or folder it names exists."""

from __future__ import annotations

import re
import tomllib

from core.config import PROJECT_ROOT

DOC = (PROJECT_ROOT / "docs" / "architecture.md").read_text()
PLATFORM_DIRS = {"aws", "azure", "onprem"}
CONTROL_TABLES = {"aws", "azure", "kubernetes"}


def _contract_layers() -> list[str]:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    (layers,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return list(reversed(layers["layers"]))  # bottom to top, as the doc lists them


def test_layer_table_is_the_enforced_order() -> None:
    table = re.findall(r"^\| \w+ \| `(\w+)/", DOC, re.M)
    assert table == _contract_layers()


def test_every_path_the_doc_names_exists() -> None:
    section = DOC.split("## Layers", 1)[1].split("\n## ", 1)[0]
    paths = set(
        re.findall(r"`((?:core|pipelines|components|blueprints|mlops)/[\w<>/.]*)`", section)
    )
    assert paths, "the layers section names no path"
    for path in sorted(paths):
        if "<platform>" in path:
            names = CONTROL_TABLES if path.startswith("core/controls") else PLATFORM_DIRS
            if path.startswith("mlops/mocks"):
                names = CONTROL_TABLES
            expanded = [path.replace("<platform>", n) for n in names]
        elif "<name>" in path:
            expanded = [path.replace("<name>", n) for n in ("sagemaker", "azureml", "onprem")]
        else:
            expanded = [path]
        for one in expanded:
            assert (PROJECT_ROOT / one).exists(), (
                f"docs/architecture.md names {one}, not in the tree"
            )
