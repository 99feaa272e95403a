"""Network: a VPC with private subnets in two zones and no route to the internet. SageMaker
jobs, models and monitoring run in it and reach AWS through VPC endpoints (a free gateway
endpoint for S3; interface endpoints for the SageMaker API and runtime, ECR, STS, CloudWatch
and CloudWatch Logs). Security groups admit traffic only from the VPC's own ranges."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.common import bad, child, fail_on

INTERFACE_SERVICES = (
    "sagemaker.api", "sagemaker.runtime", "ecr.api", "ecr.dkr", "sts", "monitoring", "logs",
)  # fmt: skip


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


def validate_private_network_args(args: PrivateNetworkArgs) -> list[str]:
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
    return problems


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
        fail_on("PrivateNetwork", validate_private_network_args(args))
        super().__init__("mlops:aws:PrivateNetwork", name, None, opts)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            opts=child(self),
        )
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
