"""Network: a VPC with private subnets in two zones and no route to the internet. SageMaker
jobs, models and monitoring run in it and reach AWS through VPC endpoints (a free gateway
endpoint for S3; interface endpoints for the SageMaker API and runtime, ECR, STS, CloudWatch
and CloudWatch Logs). Security groups admit traffic only from the VPC's own ranges; the VPC's
default security group is managed with no rules at all, so nothing that lands in it by
mistake can talk. Flow logs of all traffic go to a CloudWatch log group encrypted with the
stack key and kept `flow_log_retention_days`, delivered by a role that carries the stack's
permissions boundary."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.common import bad, child, policy, trust
from components.aws.identities import SERVICES_OF_DUTY
from core.errors import raise_problems

INTERFACE_SERVICES = (
    "sagemaker.api", "sagemaker.runtime", "ecr.api", "ecr.dkr", "sts", "monitoring", "logs",
)  # fmt: skip

# The values CloudWatch Logs accepts for a log group's retention.
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                  2192, 2557, 2922, 3288, 3653)  # fmt: skip
LONG_ENOUGH = tuple(d for d in RETENTION_DAYS if d >= 90)


@dataclass(frozen=True)
class PrivateNetworkArgs:
    cidr: str
    """Address range of the VPC (a /16 to /24)."""
    region: str
    """Region of the VPC (names the endpoint services)."""
    zones: int = 2
    """Availability zones with a private subnet (2 or 3)."""
    interface_services: tuple[str, ...] = INTERFACE_SERVICES
    """AWS services reached through interface endpoints (`com.amazonaws.<region>.<service>`)."""
    prefix: str = ""
    """`<client>-<env>`: names the flow-log group and role (`<prefix>-flow-logs`)."""
    account_id: pulumi.Input[str] | None = None
    """Account of the stack (the flow-log role trusts the service for it only)."""
    kms_key_arn: pulumi.Input[str] | None = None
    """Stack key that encrypts the flow-log group; required."""
    boundary_arn: pulumi.Input[str] | None = None
    """The stack's permissions boundary, carried by the flow-log role; required."""
    flow_log_retention_days: int = 365
    """Days the flow logs are kept (a CloudWatch Logs retention value, at least 90)."""


def validate_private_network_args(args: PrivateNetworkArgs) -> None:
    problems = []
    try:
        net = ipaddress.ip_network(args.cidr)
        if not 16 <= net.prefixlen <= 24:
            problems.append(bad("cidr", args.cidr, "a /16 to /24 range", "set network.cidr"))
        elif not net.is_private:
            problems.append(
                bad(
                    "cidr",
                    args.cidr,
                    "a private (RFC 1918) range",
                    "set network.cidr to e.g. 10.40.0.0/16",
                )
            )
    except ValueError:
        problems.append(bad("cidr", args.cidr, "an IPv4 network", "set network.cidr"))
    if args.zones not in (2, 3):
        problems.append(bad("zones", args.zones, "2 or 3", "use two or three zones"))
    for service in args.interface_services:
        if not service or " " in service or service.startswith("com."):
            problems.append(
                bad(
                    "interface_services",
                    service,
                    "a short service name",
                    "name services like sagemaker.api, not the full endpoint name",
                )
            )
    if args.flow_log_retention_days not in RETENTION_DAYS or args.flow_log_retention_days < 90:
        problems.append(
            bad(
                "flow_log_retention_days",
                args.flow_log_retention_days,
                f"a CloudWatch Logs retention of at least 90 ({', '.join(map(str, LONG_ENOUGH))})",
                "keep flow logs at least 90 days, e.g. 365",
            )
        )
    for field, value in (
        ("prefix", args.prefix),
        ("account_id", args.account_id),
        ("kms_key_arn", args.kms_key_arn),
        ("boundary_arn", args.boundary_arn),
    ):
        if not value:
            problems.append(
                bad(field, value, "set", f"pass {field} so the VPC gets encrypted flow logs")
            )
    raise_problems("PrivateNetwork", problems)


def subnet_cidrs(cidr: str, zones: int) -> list[str]:
    """One equal share of the VPC range per zone (up to four shares)."""
    net = ipaddress.ip_network(cidr)
    return [str(s) for s in net.subnets(prefixlen_diff=2)][:zones]


class PrivateNetwork(pulumi.ComponentResource):
    """Private subnets in two zones, VPC endpoints, closed security groups."""

    vpc_id: pulumi.Output[str]
    subnet_ids: list[pulumi.Output[str]]
    workload_security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_private_network_args(args)
        super().__init__("mlops:aws:PrivateNetwork", name, None, opts)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": args.prefix},
            opts=child(self),
        )
        # The default security group: adopted and stripped of AWS's default rules.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags={"Name": f"{args.prefix}-default-no-rules", "mlops:vpc": args.prefix},
            opts=child(self),
        )
        self._flow_logs(name, args, vpc.id)
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        ).names
        cidrs = subnet_cidrs(args.cidr, args.zones)
        routes = aws.ec2.RouteTable(f"{name}-private-routes", vpc_id=vpc.id, opts=child(self))
        subnets = []
        for i, cidr in enumerate(cidrs):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zones[i],
                map_public_ip_on_launch=False,
                opts=child(self),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}-routes",
                subnet_id=subnet.id,
                route_table_id=routes.id,
                opts=child(self),
            )
            subnets.append(subnet)

        endpoints_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=vpc.id,
            description="VPC interface endpoints: HTTPS from inside the VPC only",
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": [args.cidr],
                    "description": "HTTPS from the VPC",
                }
            ],
            egress=[],
            opts=child(self),
        )
        s3 = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[routes.id],
            opts=child(self),
        )
        workloads = aws.ec2.SecurityGroup(
            f"{name}-workloads",
            vpc_id=vpc.id,
            description="SageMaker jobs and models: traffic between their own instances only",
            ingress=[
                {
                    "protocol": "-1",
                    "from_port": 0,
                    "to_port": 0,
                    "cidr_blocks": cidrs,
                    "description": "distributed jobs between the private subnets",
                }
            ],
            egress=[
                {
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": [args.cidr],
                    "description": "HTTPS to the interface endpoints",
                },
                {
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "prefix_list_ids": [s3.prefix_list_id],
                    "description": "HTTPS to S3",
                },
                {
                    "protocol": "-1",
                    "from_port": 0,
                    "to_port": 0,
                    "cidr_blocks": cidrs,
                    "description": "distributed jobs between the private subnets",
                },
            ],
            opts=child(self),
        )
        for service in args.interface_services:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in subnets],
                security_group_ids=[endpoints_sg.id],
                opts=child(self),
            )
        self.vpc_id = vpc.id
        self.subnet_ids = [s.id for s in subnets]
        self.workload_security_group_id = workloads.id
        self.register_outputs({"vpcId": self.vpc_id, "subnetIds": self.subnet_ids})

    def _flow_logs(self, name: str, args: PrivateNetworkArgs, vpc_id: pulumi.Input[str]) -> None:
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"{args.prefix}-flow-logs",
            kms_key_id=args.kms_key_arn,
            retention_in_days=args.flow_log_retention_days,
            opts=child(self),
        )
        assert args.account_id is not None  # validated
        role = aws.iam.Role(
            f"{name}-flow-logs",
            name=f"{args.prefix}-flow-logs",
            description=f"{args.prefix}: VPC flow logs deliver to their log group",
            assume_role_policy=trust(*SERVICES_OF_DUTY["flow-logs"], account_id=args.account_id),
            max_session_duration=3600,
            permissions_boundary=args.boundary_arn,
            opts=child(self),
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=policy(
                [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "logs:DescribeLogStreams",
                        ],
                        "Resource": [group.arn, pulumi.Output.concat(group.arn, ":*")],
                    }
                ]
            ),
            opts=child(self),
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags={"Name": f"{args.prefix}-flow-logs", "mlops:vpc": args.prefix},
            opts=child(self),
        )
