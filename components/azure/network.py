"""Network (private mode): a VNet with a private-endpoint subnet, and private endpoints with
private DNS zones for the workspace, the artifact store (blob, dfs and queue), the Key Vault and
the container registry. With these, every store can keep public network access disabled; the
workspace's own compute reaches them through its managed network.

A second subnet (the VNet's second /24, delegated to `Microsoft.Web/serverFarms`) holds the
event forwarder's VNet integration: the function reaches the stores through the private
endpoints above, and the internet (GitHub, ARM) only on 443 through a NAT gateway with one
static public IP, which a CI system can allowlist.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass, field

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import network, privatedns

from components.azure._common import check, raise_if

MAX_PREFIX = 23
"""Longest VNet prefix: it must hold two /24 subnets."""
FUNCTIONS_DELEGATION = "Microsoft.Web/serverFarms"

# target -> [(group id, private DNS zones)]
PRIVATE_LINKS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "workspace": [
        ("amlworkspace", ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"))
    ],
    "storage": [
        ("blob", ("privatelink.blob.core.windows.net",)),
        ("dfs", ("privatelink.dfs.core.windows.net",)),
        ("queue", ("privatelink.queue.core.windows.net",)),
    ],
    "vault": [("vault", ("privatelink.vaultcore.azure.net",))],
    "registry": [("registry", ("privatelink.azurecr.io",))],
}


@dataclass(frozen=True)
class PrivateNetworkArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    location: str
    """Azure location of the VNet."""
    resource_group_name: pulumi.Input[str]
    """Resource group of the stack."""
    cidr: str
    """Address range of the VNet (a /16 to /23): the first /24 holds the private endpoints, the
    second the forwarder's VNet integration."""
    targets: dict[str, pulumi.Input[str]]
    """Resource id per target: workspace, storage, vault, registry."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def validate_network_args(args: PrivateNetworkArgs) -> None:
    problems: list[str] = []
    try:
        net = ipaddress.ip_network(args.cidr)
        ok = 16 <= net.prefixlen <= MAX_PREFIX
    except ValueError:
        ok = False
    check(
        problems,
        ok,
        "cidr",
        args.cidr,
        f"an IPv4 range from /16 to /{MAX_PREFIX} (a /24 for private endpoints and a /24 for "
        "the event forwarder's VNet integration)",
        "set network.cidr in Pulumi.<stack>.yaml",
    )
    unknown = sorted(set(args.targets) - set(PRIVATE_LINKS))
    missing = sorted(set(PRIVATE_LINKS) - set(args.targets))
    check(
        problems,
        not unknown and not missing,
        "targets",
        sorted(args.targets),
        f"exactly {', '.join(PRIVATE_LINKS)}",
        "pass the resource id of each target",
    )
    raise_if("PrivateNetwork", problems)


class PrivateNetwork(pulumi.ComponentResource):
    """VNet, private-endpoint subnet, private endpoints and private DNS zones."""

    vnet_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    """Private-endpoint subnet."""
    functions_subnet_id: pulumi.Output[str]
    """Subnet the event forwarder integrates with (delegated to App Service plans)."""
    egress_ip: pulumi.Output[str]
    """Resource id of the NAT gateway's static public IP: the forwarder's only way out."""

    def __init__(self, name: str, args: PrivateNetworkArgs, opts: ResourceOptions | None = None):
        validate_network_args(args)
        super().__init__("mlops:azure:PrivateNetwork", name, None, opts)
        child = ResourceOptions(parent=self)
        net = ipaddress.ip_network(args.cidr)
        endpoints, functions_range = (
            str(s) for s in itertools.islice(net.subnets(new_prefix=24), 2)
        )
        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=f"vnet-{args.prefix}",
            resource_group_name=args.resource_group_name,
            location=args.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.cidr]),
            tags=args.tags,
            opts=child,
        )
        nsg = network.NetworkSecurityGroup(
            f"{name}-nsg",
            network_security_group_name=f"nsg-{args.prefix}-endpoints",
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=args.tags,
            opts=child,
        )
        subnet = network.Subnet(
            f"{name}-endpoints",
            subnet_name="private-endpoints",
            virtual_network_name=vnet.name,
            resource_group_name=args.resource_group_name,
            address_prefix=endpoints,
            default_outbound_access=False,
            private_endpoint_network_policies="Enabled",
            network_security_group=network.NetworkSecurityGroupArgs(id=nsg.id),
            opts=child,
        )
        zones: dict[str, privatedns.PrivateZone] = {}
        for links in PRIVATE_LINKS.values():
            for _, zone_names in links:
                for zone in zone_names:
                    if zone in zones:
                        continue
                    slug = zone.replace("privatelink.", "").replace(".", "-")
                    zones[zone] = privatedns.PrivateZone(
                        f"{name}-zone-{slug}",
                        private_zone_name=zone,
                        resource_group_name=args.resource_group_name,
                        location="global",
                        tags=args.tags,
                        opts=child,
                    )
                    privatedns.VirtualNetworkLink(
                        f"{name}-zone-{slug}-link",
                        private_zone_name=zones[zone].name,
                        resource_group_name=args.resource_group_name,
                        location="global",
                        registration_enabled=False,
                        virtual_network=privatedns.SubResourceArgs(id=vnet.id),
                        tags=args.tags,
                        opts=child,
                    )
        for target, links in PRIVATE_LINKS.items():
            for group_id, zone_names in links:
                pe = network.PrivateEndpoint(
                    f"{name}-pe-{target}-{group_id}",
                    private_endpoint_name=f"pe-{args.prefix}-{target}-{group_id}",
                    resource_group_name=args.resource_group_name,
                    location=args.location,
                    subnet=network.SubnetArgs(id=subnet.id),
                    private_link_service_connections=[
                        network.PrivateLinkServiceConnectionArgs(
                            name=f"{target}-{group_id}",
                            private_link_service_id=args.targets[target],
                            group_ids=[group_id],
                        )
                    ],
                    tags=args.tags,
                    opts=child,
                )
                network.PrivateDnsZoneGroup(
                    f"{name}-pe-{target}-{group_id}-dns",
                    private_dns_zone_group_name="default",
                    private_endpoint_name=pe.name,
                    resource_group_name=args.resource_group_name,
                    private_dns_zone_configs=[
                        network.PrivateDnsZoneConfigArgs(
                            name=z.replace(".", "-"), private_dns_zone_id=zones[z].id
                        )
                        for z in zone_names
                    ],
                    opts=child,
                )
        # after the endpoint subnet: Azure refuses two subnet writes to one VNet at once
        functions, ip = self._functions_subnet(
            name, args, vnet, functions_range, ResourceOptions(parent=self, depends_on=[subnet])
        )
        self.vnet_id = vnet.id
        self.subnet_id = subnet.id
        self.functions_subnet_id = functions.id
        self.egress_ip = ip.id
        self.register_outputs(
            {"vnetId": vnet.id, "subnetId": subnet.id, "functionsSubnetId": functions.id}
        )

    @staticmethod
    def _functions_subnet(
        name: str,
        args: PrivateNetworkArgs,
        vnet: network.VirtualNetwork,
        address_prefix: str,
        subnet_opts: ResourceOptions,
    ) -> tuple[network.Subnet, network.PublicIPAddress]:
        """The forwarder's integration subnet: HTTPS out through a NAT gateway, nothing else."""
        child = ResourceOptions(parent=subnet_opts.parent)
        nsg = network.NetworkSecurityGroup(
            f"{name}-functions-nsg",
            network_security_group_name=f"nsg-{args.prefix}-functions",
            resource_group_name=args.resource_group_name,
            location=args.location,
            security_rules=[
                network.SecurityRuleArgs(
                    name="allow-https-out",
                    description="GitHub and ARM over TLS",
                    direction="Outbound",
                    access="Allow",
                    protocol="Tcp",
                    priority=100,
                    source_address_prefix="VirtualNetwork",
                    source_port_range="*",
                    destination_address_prefix="*",
                    destination_port_range="443",
                ),
                network.SecurityRuleArgs(
                    name="deny-internet-out",
                    description="nothing else leaves the VNet",
                    direction="Outbound",
                    access="Deny",
                    protocol="*",
                    priority=4000,
                    source_address_prefix="*",
                    source_port_range="*",
                    destination_address_prefix="Internet",
                    destination_port_range="*",
                ),
            ],
            tags=args.tags,
            opts=child,
        )
        ip = network.PublicIPAddress(
            f"{name}-egress-ip",
            public_ip_address_name=f"pip-{args.prefix}-egress",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=network.PublicIPAddressSkuArgs(name="Standard", tier="Regional"),
            public_ip_allocation_method="Static",
            public_ip_address_version="IPv4",
            tags=args.tags,
            opts=child,
        )
        nat = network.NatGateway(
            f"{name}-nat",
            nat_gateway_name=f"ng-{args.prefix}",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=network.NatGatewaySkuArgs(name="Standard"),
            public_ip_addresses=[network.SubResourceArgs(id=ip.id)],
            idle_timeout_in_minutes=4,
            tags=args.tags,
            opts=child,
        )
        subnet = network.Subnet(
            f"{name}-functions",
            subnet_name="functions",
            virtual_network_name=vnet.name,
            resource_group_name=args.resource_group_name,
            address_prefix=address_prefix,
            default_outbound_access=False,
            delegations=[
                network.DelegationArgs(name="functions", service_name=FUNCTIONS_DELEGATION)
            ],
            nat_gateway=network.SubResourceArgs(id=nat.id),
            network_security_group=network.NetworkSecurityGroupArgs(id=nsg.id),
            opts=subnet_opts,
        )
        return subnet, ip
