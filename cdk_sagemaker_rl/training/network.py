"""Where a training job's hosts attach to a VPC: CDK objects or the SDK's id strings.

The SDK took ``subnets`` and ``security_group_ids`` strings; CDK users hold an ``ec2.IVpc``, a
``SubnetSelection`` and ``ISecurityGroup`` objects. Both end up as the same ``VpcConfig`` and the
same network-interface permissions for the execution role, named after exactly those subnets and
security groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from .._iam import acknowledge_wildcard
from ..errors import invalid


@dataclass(frozen=True)
class TrainingNetwork:
    """Subnet and security group ids (tokens allowed) the job's network interfaces use."""

    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]

    def vpc_config(self) -> dict[str, list[str]]:
        return {
            "SecurityGroupIds": list(self.security_group_ids),
            "Subnets": list(self.subnet_ids),
        }

    def grant(self, role: iam.IRole) -> None:
        """What SageMaker needs to attach the job's network interfaces to these subnets."""
        stack = Stack.of(role)
        interfaces = stack.format_arn(
            service="ec2", resource="network-interface", resource_name="*"
        )
        attach_to = [
            stack.format_arn(service="ec2", resource="subnet", resource_name=subnet)
            for subnet in self.subnet_ids
        ] + [
            stack.format_arn(service="ec2", resource="security-group", resource_name=group)
            for group in self.security_group_ids
        ]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="JobNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                ],
                resources=[interfaces, *attach_to],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeNetwork",
                actions=[
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                resources=["*"],
            )
        )
        acknowledge_wildcard(
            role,
            interfaces,
            "SageMaker creates the job's network interfaces; their ids are not known in advance.",
            stack=stack,
        )


def _strings(value: Sequence[str] | None, argument: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise invalid(argument, value, "a list of id strings, e.g. ['subnet-0abc...']")
    for item in value:
        if not isinstance(item, str):
            raise invalid(argument, item, "id strings (use vpc=/security_groups= for CDK objects)")
    return tuple(value)


def training_network(
    scope: Construct,
    *,
    vpc: ec2.IVpc | None = None,
    vpc_subnets: ec2.SubnetSelection | None = None,
    security_groups: Sequence[ec2.ISecurityGroup] | None = None,
    subnets: Sequence[str] | None = None,
    security_group_ids: Sequence[str] | None = None,
    instance_count: int = 1,
) -> TrainingNetwork | None:
    """The job's network from either spelling; mixing them, or half of one, is an error.

    With ``vpc`` and no security group, one is created (id ``SecurityGroup`` under ``scope``) that
    allows all outbound traffic, as the Step Functions SageMaker task does. Inbound, a job of one
    instance needs nothing; with ``instance_count`` > 1 the hosts of a distributed job talk to
    each other (Ray's GCS and object transfers, NCCL, MPI) through their network interfaces, so
    the group admits all traffic from itself and from nothing else. Groups the user passes are
    left as they are: they need that self-referencing rule too (README.md#distributed-rl).
    """
    subnet_ids = _strings(subnets, "subnets")
    group_ids = _strings(security_group_ids, "security_group_ids")
    if vpc is None:
        if vpc_subnets is not None or security_groups is not None:
            raise invalid(
                "vpc_subnets/security_groups",
                vpc_subnets or security_groups,
                "None unless vpc is given (an ec2.IVpc)",
            )
        if bool(subnet_ids) != bool(group_ids):
            raise invalid(
                "subnets/security_group_ids",
                {"subnets": list(subnet_ids), "security_group_ids": list(group_ids)},
                "both or neither (SageMaker's VpcConfig needs subnets and security groups)",
            )
        return TrainingNetwork(subnet_ids, group_ids) if subnet_ids else None
    if subnet_ids or group_ids:
        raise invalid(
            "subnets/security_group_ids",
            list(subnet_ids) + list(group_ids),
            "None when vpc is given: choose subnets with vpc_subnets and groups with "
            "security_groups",
        )
    if not hasattr(vpc, "select_subnets"):
        raise invalid("vpc", vpc, "an aws_ec2.IVpc (ec2.Vpc or Vpc.from_lookup(...))")
    if vpc_subnets is not None and not isinstance(vpc_subnets, ec2.SubnetSelection):
        raise invalid("vpc_subnets", vpc_subnets, "an aws_ec2.SubnetSelection")
    selection = vpc_subnets or ec2.SubnetSelection()
    selected = vpc.select_subnets(
        availability_zones=selection.availability_zones,
        one_per_az=selection.one_per_az,
        subnet_filters=selection.subnet_filters,
        subnet_group_name=selection.subnet_group_name,
        subnets=selection.subnets,
        subnet_type=selection.subnet_type,
    )
    groups = list(security_groups or [])
    for group in groups:
        if not hasattr(group, "security_group_id"):
            raise invalid("security_groups", group, "aws_ec2.ISecurityGroup objects")
    if not groups:
        created = ec2.SecurityGroup(
            scope,
            "SecurityGroup",
            vpc=vpc,
            description="RL training job network interfaces (cdk-sagemaker-rl)",
            allow_all_outbound=True,
        )
        if instance_count > 1:
            created.add_ingress_rule(
                created,
                ec2.Port.all_traffic(),
                "Between the hosts of one distributed training job",
            )
        groups = [created]
    return TrainingNetwork(
        tuple(selected.subnet_ids), tuple(group.security_group_id for group in groups)
    )
