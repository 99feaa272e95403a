"""On-prem findings of the security review (issue #13): retained stores cannot be lost through
their namespace, and PostgreSQL runs as a high UID with an fsGroup."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import control_status, get_plan

NS = "kubernetes:core/v1:Namespace"
STS = "kubernetes:apps/v1:StatefulSet"


@pytest.fixture(scope="module")
def plan():
    return get_plan("globex-prod")


def _status(records, cid: str) -> str:
    return control_status(records, "kubernetes", cid)


def test_no_retained_object_can_be_lost_through_its_namespace(plan):
    namespaces = {r.inputs["metadata"]["name"]: r for r in plan.by_type(NS)}
    retained = [r for r in plan.records if r.custom and r.options.get("retainOnDelete")]
    assert {r.type for r in retained} >= {STS}, "the prod stores are retained"
    for record in retained:
        ns = (record.inputs.get("metadata") or {}).get("namespace")
        if ns is None:
            continue  # cluster-scoped: no namespace to cascade from
        assert ns in namespaces, f"{record.name} lives in {ns}, which the stack does not declare"
        assert namespaces[ns].options["protect"], (record.name, ns)
        assert namespaces[ns].options["retainOnDelete"], (record.name, ns)
    assert _status(plan.records, "K8S-NS-05") == "pass"


def test_k8s_ns_05_fails_a_retained_store_in_a_plain_namespace(plan):
    plain = [
        dataclasses.replace(r, options={**r.options, "protect": False, "retainOnDelete": False})
        if r.type == NS
        else r
        for r in plan.records
    ]
    assert _status(plain, "K8S-NS-05") == "fail"


def test_dev_namespaces_are_not_protected():
    dev = get_plan("globex-dev")
    assert not any(r.options["protect"] for r in dev.by_type(NS))


def test_postgres_runs_as_a_high_uid_that_owns_its_volume(plan):
    pg = next(r for r in plan.by_type(STS) if r.inputs["metadata"]["name"].endswith("-postgres"))
    pod = pg.inputs["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] >= 10000
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    assert pod["containers"][0]["securityContext"]["runAsUser"] >= 10000
    assert _status(plan.records, "K8S-STS-15") == "pass"
    low = dataclasses.replace(
        pg,
        inputs={
            **pg.inputs,
            "spec": {
                **pg.inputs["spec"],
                "template": {
                    **pg.inputs["spec"]["template"],
                    "spec": {**pod, "securityContext": {**pod["securityContext"], "runAsUser": 70}},
                },
            },
        },
    )
    records = [low if r is pg else r for r in plan.records]
    assert _status(records, "K8S-STS-15") == "fail"


def test_postgres_reads_its_password_from_a_mounted_file(plan):
    pg = next(r for r in plan.by_type(STS) if r.inputs["metadata"]["name"].endswith("-postgres"))
    pod = pg.inputs["spec"]["template"]["spec"]
    db = pod["containers"][0]
    assert not [e for e in db.get("env", []) if "valueFrom" in e], "no secret in the environment"
    config = next(
        r
        for r in plan.by_type("kubernetes:core/v1:ConfigMap")
        if r.inputs["metadata"]["name"].endswith("-postgres-config")
    )
    path = config.inputs["data"]["POSTGRES_PASSWORD_FILE"]
    mount = next(m for m in db["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["items"] == [{"key": "POSTGRES_PASSWORD", "path": "POSTGRES_PASSWORD"}]
    assert mount["readOnly"] is True
