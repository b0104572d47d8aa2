"""A distributed job in a VPC: its hosts can reach each other, and nothing else can reach them.

SageMaker puts every host of a job in the job's subnets with the job's security groups; the hosts
of a multi-instance job (Ray's GCS and object transfers, NCCL, MPI) talk over those interfaces.
The group the library creates admits the group itself when the job has more than one instance,
and nothing for a single instance; a user's own groups are left as given (README.md#distributed-rl).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from constructs import IConstruct

from cdk_sagemaker_rl import ContainerImage, InstanceGroup, RLEstimator
from tests.test_reference_app import cfn_lint

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cartpole"


@dataclass
class Networked:
    stack: cdk.Stack
    template: dict[str, Any]
    path: Path
    estimators: dict[str, RLEstimator]
    user_group: ec2.SecurityGroup

    def created_group(self, name: str) -> str:
        """The logical id of the security group the library created for one estimator."""
        (group,) = [
            child
            for child in self.estimators[name].node.find_all()
            if isinstance(child, ec2.CfnSecurityGroup)
        ]
        return logical_id(group)

    def ingress(self, group: str) -> list[dict[str, Any]]:
        """Every inbound rule of ``group``: its own property and the stand-alone resources."""
        rules = list(
            self.template["Resources"][group]["Properties"].get("SecurityGroupIngress", [])
        )
        rules += [
            resource["Properties"]
            for resource in self.template["Resources"].values()
            if resource["Type"] == "AWS::EC2::SecurityGroupIngress"
            and resource["Properties"]["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}
        ]
        return rules


def logical_id(element: IConstruct) -> str:
    """The logical id of a CloudFormation element, or of a construct's default resource."""
    resource = element if isinstance(element, cdk.CfnElement) else element.node.default_child
    assert isinstance(resource, cdk.CfnElement)
    return cdk.Stack.of(resource).get_logical_id(resource)


@pytest.fixture(scope="module")
def networked(tmp_path_factory: pytest.TempPathFactory) -> Networked:
    app = cdk.App()
    # Environment-agnostic, as the reference app: the VPC's zones are Fn::GetAZs, not the dummy
    # zones a concrete environment gets without a context lookup (cfn-lint W3010).
    stack = cdk.Stack(app, "Networked")
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="jobs", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    user_group = ec2.SecurityGroup(stack, "UserGroup", vpc=vpc)
    common: dict[str, Any] = {
        "entry_point": "train.py",
        "source_dir": str(EXAMPLE),
        "image_uri": ContainerImage.pytorch_training("2.8"),
        "train_max_run": cdk.Duration.hours(1),
        "vpc": vpc,
    }
    variants: dict[str, dict[str, Any]] = {
        "Two": {"train_instance_type": "ml.m5.large", "train_instance_count": 2},
        "Groups": {
            "instance_groups": [
                InstanceGroup("learner", "ml.m5.large", 1),
                InstanceGroup("rollouts", "ml.c5.xlarge", 1),
            ]
        },
        "One": {"train_instance_type": "ml.m5.large"},
        "Own": {
            "train_instance_type": "ml.m5.large",
            "train_instance_count": 2,
            "security_groups": [user_group],
        },
    }
    estimators = {
        name: RLEstimator(stack, name, **common, **variant) for name, variant in variants.items()
    }
    for estimator in estimators.values():
        estimator.fit()
    template = dict(app.synth().get_stack_by_name("Networked").template)
    path = tmp_path_factory.mktemp("networked") / "Networked.template.json"
    path.write_text(json.dumps(template))
    return Networked(stack, template, path, estimators, user_group)


@pytest.mark.parametrize("name", ["Two", "Groups"])
def test_the_hosts_of_a_multi_instance_job_reach_each_other(
    networked: Networked, name: str
) -> None:
    group = networked.created_group(name)
    itself = {"Fn::GetAtt": [group, "GroupId"]}
    (rule,) = networked.ingress(group)
    assert rule["IpProtocol"] == "-1"
    assert rule["SourceSecurityGroupId"] == itself
    # Least privilege: from the group only, never from an address range.
    assert "CidrIp" not in rule and "CidrIpv6" not in rule


def test_a_single_instance_job_admits_nothing(networked: Networked) -> None:
    assert networked.ingress(networked.created_group("One")) == []


def test_a_users_own_group_is_left_as_given(networked: Networked) -> None:
    assert not [
        child
        for child in networked.estimators["Own"].node.find_all()
        if isinstance(child, ec2.CfnSecurityGroup)
    ]
    assert networked.ingress(logical_id(networked.user_group)) == []


def test_cfn_lint_is_clean_on_the_networked_template(networked: Networked) -> None:
    result = cfn_lint([networked.path])
    assert result.returncode == 0, result.stdout + result.stderr
