"""The rendered Kubernetes objects of the on-prem example stacks, scanned with checkov's
kubernetes framework (issue #13), against an explicit allowlist where each entry says why.

checkov pins packaging<24 while pulumi needs >=26, so it lives in its own venv (.venv/scan,
from requirements-scan.lock; `make install` creates it). The objects are written as manifests
from the offline plan (inputs as recorded; Helm releases are not rendered and not scanned), and
both stacks are scanned in one checkov run through its Python API."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import get_plan
from tests.schemas import manifest

STACKS = ("globex-dev", "globex-prod", "globex-cluster")
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: the same YAML, 10x faster
SCAN_PYTHON = Path(sys.prefix) / "scan" / "bin" / "python"
RUNNER = """
import json, sys
from checkov.kubernetes.runner import Runner
from checkov.runner_filter import RunnerFilter
report = Runner().run(root_folder=sys.argv[1], runner_filter=RunnerFilter(framework=["kubernetes"]))
print(json.dumps({
    "passed": len(report.passed_checks),
    "failed": [
        {"check": c.check_id, "resource": c.resource, "file": c.file_path}
        for c in report.failed_checks
    ],
    "parsing_errors": list(report.parsing_errors),
}))
"""
# (check id, glob over checkov's `Kind.namespace.name`, reason): every failure must match one.
_DEV_TAGS = (
    "dev follows image tags on purpose (tests/onprem/test_plan.py "
    "test_prod_third_party_images_are_pinned_dev_images_follow_tags); prod pins every image by "
    "digest and passes"
)
ALLOWED: tuple[tuple[str, str, str], ...] = (
    ("CKV_K8S_14", "*.mlops-*-dev-*", _DEV_TAGS),
    ("CKV_K8S_15", "*.mlops-*-dev-*", _DEV_TAGS),
    ("CKV_K8S_43", "*.mlops-*-dev-*", _DEV_TAGS),
)

CANARY = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "canary", "namespace": "canary"},
    "spec": {
        "containers": [
            {
                "name": "c",
                "image": "busybox",
                "securityContext": {"privileged": True},
                "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "s", "key": "p"}}}],
            }
        ]
    },
}


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    assert SCAN_PYTHON.exists(), f"{SCAN_PYTHON} is missing: run `make install`"
    root = tmp_path_factory.mktemp("manifests")
    for stack in STACKS:
        (root / stack).mkdir()
        for i, r in enumerate(get_plan(stack).records):
            if r.custom and r.type.startswith("kubernetes:") and ":helm.sh/" not in r.type:
                path = root / stack / f"{i:03d}-{r.name}.yaml"
                path.write_text(yaml.dump(manifest(r), Dumper=DUMPER, sort_keys=False))
    (root / "canary").mkdir()
    (root / "canary" / "pod.yaml").write_text(yaml.dump(CANARY, Dumper=DUMPER, sort_keys=False))
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    out = subprocess.run(
        [str(SCAN_PYTHON), "-c", RUNNER, str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _allowed(check: str, resource: str) -> bool:
    return any(check == cid and fnmatch.fnmatch(resource, glob) for cid, glob, _ in ALLOWED)


def test_checkov_parsed_and_ran_its_checks(scan):
    assert not scan["parsing_errors"]
    assert scan["passed"] > 500


def test_checkov_finds_nothing_outside_the_allowlist(scan):
    unexplained = [
        f"{f['check']} {f['resource']} ({f['file']})"
        for f in scan["failed"]
        if not f["file"].startswith("/canary/") and not _allowed(f["check"], f["resource"])
    ]
    assert not unexplained, "\n".join(unexplained)


def test_every_allowlist_entry_has_a_reason_and_is_used(scan):
    for check, glob, reason in ALLOWED:
        assert len(reason) > 20, check
        assert any(
            f["check"] == check and fnmatch.fnmatch(f["resource"], glob) for f in scan["failed"]
        ), f"allowlist entry {check} {glob} matches nothing: remove it"


def test_the_scan_bites(scan):
    """The canary (a privileged pod with a secret in its environment) is reported."""
    found = {f["check"] for f in scan["failed"] if f["file"].startswith("/canary/")}
    assert {"CKV_K8S_16", "CKV_K8S_35"} <= found
