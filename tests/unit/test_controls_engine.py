"""The controls engine on hand-made records: paths, checks, and the status rules."""

from __future__ import annotations

import json

import pytest

from core import controls as c
from core.controls import Record, engine


def rec(type_: str, name: str, inputs: dict, **options) -> Record:
    return Record(
        urn=f"urn:{name}",
        type=type_,
        name=name,
        parent="",
        custom=True,
        inputs=inputs,
        outputs={},
        options={"protect": False, **options},
    )


@pytest.mark.parametrize(
    ("obj", "path", "expected"),
    [
        ({"a": {"b": 1}}, "a.b", [1]),
        ({"a": [{"b": 1}, {"b": 2}]}, "a[*].b", [1, 2]),
        ({"a": [{"b": 1}, {"b": 2}]}, "a[1].b", [2]),
        ({"a": {}}, "a.b", [c.MISSING]),
        ({"a": []}, "a[*].b", [c.MISSING]),
        ({"a": "text"}, "a.b", [c.MISSING]),
        ({"m": {"labels": {"x.io/y": "on"}}}, 'm.labels["x.io/y"]', ["on"]),
        ({"m": {"labels": {"x.io/y": "on"}}}, 'm.labels["x.io/z"]', [c.MISSING]),
        ({"a": [{"k.1": 1}, {"k.1": 2}]}, 'a[*]["k.1"]', [1, 2]),
    ],
)
def test_values_at(obj, path, expected) -> None:
    assert c.values_at(obj, path) == expected


@pytest.mark.parametrize(
    ("statement", "ok"),
    [
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, False),
        ({"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}, False),
        ({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}, True),
        ({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*"}, True),
        ({"Effect": "Deny", "Action": "*", "Resource": "*"}, True),
        ({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "x"}, False),
        (
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": "1"}},
            },
            True,
        ),
    ],
)
def test_no_wildcard_grant(statement, ok) -> None:
    doc = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    assert engine.no_wildcard_grant(doc, None, []) is ok


def test_ref_exists_and_sums_to() -> None:
    alarms = [rec("aws:cloudwatch/metricAlarm:MetricAlarm", "a", {"name": "errors"})]
    assert c.CHECKS["ref_exists"](["errors"], "aws:cloudwatch/metricAlarm:MetricAlarm#name", alarms)
    assert not c.CHECKS["ref_exists"](
        ["errors", "latency"], "aws:cloudwatch/metricAlarm:MetricAlarm#name", alarms
    )
    assert c.CHECKS["sums_to"]({"blue": 90, "green": 10}, 100, [])
    assert not c.CHECKS["sums_to"]({"blue": 90, "green": 20}, 100, [])


def _control(**kw) -> c.Control:
    base = dict(
        id="T-X-01",
        platform="aws",
        resource_type="t:x:X",
        property_path="flag",
        check="equals",
        expected=True,
        title="flag on",
        rationale="test",
    )
    return c.Control(**{**base, **kw})


@pytest.fixture
def table(monkeypatch):
    rows: list[c.Control] = []
    monkeypatch.setattr(c, "all_controls", lambda platform=None: tuple(rows))
    return rows


def test_statuses(table) -> None:
    table.append(_control())
    good, bad = rec("t:x:X", "good", {"flag": True}), rec("t:x:X", "bad", {})
    assert c.evaluate([good], platform="aws", environment="prod")[0].status == "pass"
    finding = c.evaluate([good, bad], platform="aws", environment="prod")[0]
    assert finding.status == "fail"
    assert finding.failures == ["bad: flag='<unset>'"]
    assert c.evaluate([], platform="aws", environment="prod")[0].status == "n/a"
    suppressed = c.evaluate(
        [bad], platform="aws", environment="prod", suppressions={"T-X-01": "accepted risk"}
    )[0]
    assert (suppressed.status, suppressed.note) == ("suppressed", "accepted risk")


def test_dev_exception_only_in_dev(table) -> None:
    table.append(_control(dev_exception="cheap dev"))
    bad = rec("t:x:X", "bad", {"flag": False})
    assert c.evaluate([bad], platform="aws", environment="dev")[0].status == "waived"
    assert c.evaluate([bad], platform="aws", environment="prod")[0].status == "fail"


def test_options_and_when(table) -> None:
    table.append(_control(property_path="$opts.protect", when=("kind", "store")))
    store = rec("t:x:X", "store", {"kind": "store"}, protect=False)
    other = rec("t:x:X", "other", {"kind": "cache"}, protect=False)
    finding = c.evaluate([store, other], platform="aws", environment="prod")[0]
    assert finding.resources == ["store"]
    assert finding.status == "fail"


def test_the_table_itself_is_well_formed() -> None:
    rows = c.all_controls()
    assert c.validate_table(rows) == []
    bad = [_control(id="bad id", check="nope", platform="mars")]
    problems = c.validate_table(bad + bad)
    assert any("duplicate" in p for p in problems)
    assert any("unknown check" in p for p in problems)
    assert any("unknown platform" in p for p in problems)
