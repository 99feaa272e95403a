"""Training compute: an AmlCompute cluster that scales to zero when idle.

Local (key) auth is disabled, nodes get no public IP and SSH is closed; in private mode the
cluster lives in the workspace's managed network. Dev trains on low-priority VMs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import machinelearningservices as ml

from components.azure._common import check, raise_if

_COMPUTE_NAME = re.compile(r"^[a-z][a-z0-9-]{1,14}[a-z0-9]$")


@dataclass(frozen=True)
class TrainingComputeArgs:
    location: str
    """Azure location of the cluster (the workspace's)."""
    resource_group_name: pulumi.Input[str]
    """Resource group of the workspace."""
    workspace_name: pulumi.Input[str]
    """Workspace the cluster belongs to."""
    identity_id: pulumi.Input[str]
    """User-assigned identity jobs on the cluster run as (the pipeline identity)."""
    vm_size: str = "Standard_DS3_v2"
    """VM size of the nodes (Standard_*)."""
    max_nodes: int = 2
    """Most nodes the cluster scales out to."""
    min_nodes: int = 0
    """Fewest nodes kept running; 0 scales to zero when idle (the only value prod accepts)."""
    low_priority: bool = False
    """Use low-priority (spot) VMs: cheaper, may be evicted."""
    idle_minutes: int = 10
    """Minutes a node stays idle before it is released."""
    private: bool = True
    """No public IP on the nodes (needs the workspace managed network)."""
    compute_name: str = "train"
    """Name of the cluster in the workspace (2-16 characters)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def validate_compute_args(args: TrainingComputeArgs) -> None:
    problems: list[str] = []
    check(
        problems,
        args.vm_size.startswith("Standard_"),
        "vm_size",
        args.vm_size,
        "an Azure VM size (Standard_*)",
        "set training.instanceType in Pulumi.<stack>.yaml",
    )
    check(
        problems,
        1 <= args.max_nodes <= 100,
        "max_nodes",
        args.max_nodes,
        "between 1 and 100",
        "set training.maxNodes in Pulumi.<stack>.yaml",
    )
    check(
        problems,
        0 <= args.min_nodes <= args.max_nodes,
        "min_nodes",
        args.min_nodes,
        f"between 0 and max_nodes={args.max_nodes}",
        "pass min_nodes=0 to scale to zero",
    )
    check(
        problems,
        1 <= args.idle_minutes <= 120,
        "idle_minutes",
        args.idle_minutes,
        "between 1 and 120",
        "pass an idle time in minutes",
    )
    check(
        problems,
        bool(_COMPUTE_NAME.match(args.compute_name)),
        "compute_name",
        args.compute_name,
        "3-16 lowercase letters, digits and dashes",
        "pass a short name such as train",
    )
    raise_if("TrainingCompute", problems)


class TrainingCompute(pulumi.ComponentResource):
    """AmlCompute cluster, min nodes 0, local auth disabled, no public IPs."""

    compute_name: pulumi.Output[str]
    compute_id: pulumi.Output[str]

    def __init__(self, name: str, args: TrainingComputeArgs, opts: ResourceOptions | None = None):
        validate_compute_args(args)
        super().__init__("mlops:azure:TrainingCompute", name, None, opts)
        cluster = ml.Compute(
            f"{name}-cluster",
            compute_name=args.compute_name,
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            location=args.location,
            identity=ml.ManagedServiceIdentityArgs(
                type="UserAssigned", user_assigned_identities=[args.identity_id]
            ),
            properties=ml.AmlComputeArgs(
                compute_type="AmlCompute",
                disable_local_auth=True,
                description="Training cluster (scales to zero)",
                properties=ml.AmlComputePropertiesArgs(
                    vm_size=args.vm_size,
                    vm_priority="LowPriority" if args.low_priority else "Dedicated",
                    os_type="Linux",
                    scale_settings=ml.ScaleSettingsArgs(
                        min_node_count=args.min_nodes,
                        max_node_count=args.max_nodes,
                        node_idle_time_before_scale_down=f"PT{args.idle_minutes}M",
                    ),
                    enable_node_public_ip=not args.private,
                    remote_login_port_public_access="Disabled",
                ),
            ),
            tags=args.tags,
            opts=ResourceOptions(parent=self),
        )
        self.compute_name = cluster.name
        self.compute_id = cluster.id
        self.register_outputs({"computeName": cluster.name, "computeId": cluster.id})
