"""Generated docs are current, and the hand-written ones name real things."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import PROJECT_ROOT, StackSettings
from core.contract import OUTPUT_NAMES
from mlops import docs
from tests.conftest import get_plan


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    """The generated docs, generated once for this module's tests. The docs plan every stack:
    they take the suite's shared plans (a plan is deterministic)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(docs, "run_plan", lambda stack, **kw: get_plan(stack, **kw))
        return docs.generated_texts()


def test_generated_docs_are_not_stale(texts: dict[str, str]) -> None:
    stale = docs.write_all(PROJECT_ROOT, check=True, texts=texts)
    assert stale == [], f"stale generated docs {stale}: run `mlops docs` and commit the result"


def test_config_reference_lists_every_key() -> None:
    text = docs.config_reference()
    for name in StackSettings.model_fields:
        from pydantic.alias_generators import to_camel

        assert f"`{to_camel(name)}`" in text or f"**`{to_camel(name)}`**" in text, name


def test_contract_doc_lists_every_output() -> None:
    text = docs.contract_reference()
    for name in OUTPUT_NAMES:
        assert f"`{name}`" in text


def test_check_mode_detects_a_stale_file(tmp_path: Path, texts: dict[str, str]) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "config.md").write_text("old")
    stale = docs.write_all(tmp_path, check=True, texts=texts)
    assert "docs/config.md" in stale
    assert (tmp_path / "docs" / "config.md").read_text() == "old"  # check writes nothing


def test_readme_opens_with_the_two_commands() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert [line for line in first_block.splitlines() if line.strip() and not line.startswith("#")][
        -2:
    ] == ["make demo", "make test"]


def test_controls_doc_shows_the_tiers_and_the_pack_coverage_of_each_control() -> None:
    from core.controls import all_controls, seen_by_policy_packs, tiers_of

    rows = {
        line.split(" | ")[0].lstrip("| "): line
        for line in docs.controls_reference().splitlines()
        if line.startswith("| ") and "-" in line.split(" | ")[0]
    }
    for control in all_controls():
        cells = rows[control.id].rstrip(" |").split(" | ")
        assert cells[-2] == ", ".join(tiers_of(control)), control.id
        assert (cells[-1] == "yes") is seen_by_policy_packs(control), control.id
    waived_in_dev = next(c for c in all_controls() if c.dev_exception)
    assert rows[waived_in_dev.id].rstrip(" |").split(" | ")[-2] == "staging, prod"
    assert "no: the program, `mlops plan`" in rows["AWS-S3-19"]
    assert rows["K8S-NS-05"].rstrip(" |").endswith("no: `mlops plan`")
