"""The prod VPC's flow logs and default security group (issue #13)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import control_status, get_plan

DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


@pytest.fixture(scope="module")
def plan():
    return get_plan("acme-prod")


def _status(records, cid: str) -> str:
    return control_status(records, "aws", cid)


def test_the_default_security_group_is_managed_with_no_rules(plan):
    sg = plan.one(DEFAULT_SG)
    assert sg.inputs.get("ingress", []) == [] and sg.inputs.get("egress", []) == []
    assert sg.inputs["tags"]["mlops:vpc"] == plan.one("aws:ec2/vpc:Vpc").inputs["tags"]["Name"]


def test_flow_logs_of_all_traffic_go_to_an_encrypted_retained_log_group(plan):
    flow = plan.one(FLOW_LOG)
    group = plan.one(LOG_GROUP)
    assert flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["logDestinationType"] == "cloud-watch-logs"
    assert group.inputs["name"] == "acme-prod-flow-logs"
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:eu-west-1:")
    assert group.inputs["retentionInDays"] == 365
    role = plan.one("aws:iam/role:Role", "acme-prod-network-flow-logs")
    assert role.inputs["permissionsBoundary"].endswith(":policy/acme-prod-boundary")
    assert "vpc-flow-logs.amazonaws.com" in role.inputs["assumeRolePolicy"]
    key_policy = json.loads(plan.one("aws:kms/key:Key").inputs["policy"])
    logs = next(s for s in key_policy["Statement"] if s.get("Sid") == "LogGroupsOfThisStack")
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"].endswith(
        ":log-group:acme-prod-*"
    )


@pytest.mark.parametrize(
    ("cid", "drop"),
    [("AWS-NET-04", DEFAULT_SG), ("AWS-NET-07", FLOW_LOG)],
)
def test_controls_fail_a_vpc_without_its_default_group_or_flow_logs(plan, cid, drop):
    assert _status(plan.records, cid) == "pass"
    assert _status([r for r in plan.records if r.type != drop], cid) == "fail"


@pytest.mark.parametrize(
    ("cid", "type_", "change"),
    [
        ("AWS-NET-05", DEFAULT_SG, {"ingress": [{"protocol": "-1", "self": True}]}),
        ("AWS-NET-06", DEFAULT_SG, {"egress": [{"protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]}]}),
        ("AWS-NET-08", FLOW_LOG, {"trafficType": "REJECT"}),
        ("AWS-NET-09", LOG_GROUP, {"kmsKeyId": None}),
        ("AWS-NET-10", LOG_GROUP, {"retentionInDays": 0}),
    ],
)
def test_controls_fail_a_weakened_resource(plan, cid, type_, change):
    import dataclasses

    records = [
        dataclasses.replace(r, inputs={**r.inputs, **change}) if r.type == type_ else r
        for r in plan.records
    ]
    assert _status(plan.records, cid) == "pass"
    assert _status(records, cid) == "fail"
