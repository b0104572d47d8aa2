"""Region -> registry account for environment-agnostic stacks (a mapping and a rule per stack)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jsii
from aws_cdk import (
    CfnMapping,
    CfnRule,
    CfnRuleAssertion,
    Fn,
    IStableStringProducer,
    Lazy,
    Stack,
)
from constructs import Construct

from .._tokens import REGION, URL_SUFFIX, is_token_string
from ..errors import invalid
from .catalogue import catalogue, dns_suffix_for_region
from .toolkits import IMAGES_REFERENCE


@jsii.implements(IStableStringProducer)
class _RuleDescription:
    """Lazily names every image that relies on one mapping, so one rule serves them all."""

    def __init__(self, regions: Sequence[str]) -> None:
        self.regions = list(regions)
        self.images: set[str] = set()

    def produce(self) -> str:
        names = ", ".join(sorted(self.images))
        return (
            f"SageMaker-provided image(s) {names} are published only in these regions: "
            f"{', '.join(self.regions)}. Deploy this stack to one of them, or use "
            "ContainerImage.from_uri / from_ecr_repository with an image in this region."
        )


class RegistryMapping(Construct):
    """The per-stack ``CfnMapping`` (region -> registry account) and ``CfnRule`` of one registry.

    Why a rule as well as the mapping: ``Fn::FindInMap`` with a missing region also fails the
    deployment, but with "Unable to get mapping for ...", which says nothing about images. The
    rule asserts ``Fn::Contains [<regions>, Ref AWS::Region]``: CloudFormation evaluates rules
    before it creates any resource and reports the AssertDescription, which names the images and
    the regions that would work. (``Ref AWS::Region`` is accepted inside rules by CloudFormation
    and cfn-lint alike.)
    """

    def __init__(self, scope: Stack, construct_id: str, registry: str) -> None:
        super().__init__(scope, construct_id)
        accounts = catalogue().registries[registry]
        self.regions = sorted(accounts)
        self.mapping = CfnMapping(
            self,
            "Accounts",
            mapping={region: {"account": accounts[region]} for region in self.regions},
        )
        self.mapping.override_logical_id(f"{construct_id}Accounts")
        self.description = _RuleDescription(self.regions)
        rule = CfnRule(
            self,
            "RegionCheck",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_contains(self.regions, REGION),
                    assert_description=Lazy.string(self.description),
                )
            ],
        )
        rule.override_logical_id(f"{construct_id}RegionCheck")

    @classmethod
    def of(cls, stack: Stack, registry: str) -> RegistryMapping:
        construct_id = "ImageRegistry" + "".join(p.capitalize() for p in registry.split("-"))
        existing = stack.node.try_find_child(construct_id)
        if isinstance(existing, RegistryMapping):
            return existing
        return cls(stack, construct_id, registry)


def locate_image(
    scope: Construct,
    registry_name: str,
    repository: str,
    tag: str,
    region_hint: Callable[[str], str],
) -> tuple[str, str]:
    """The URI and repository ARN of a SageMaker-provided image in the stack of ``scope``.

    A concrete region gets literals (or a ValidationError listing the regions that have the
    image, plus ``region_hint(region)``); a token region gets the registry mapping and its rule.
    """
    stack = Stack.of(scope)
    region = stack.region
    accounts = catalogue().registries[registry_name]
    if not is_token_string(region):
        if region not in accounts:
            raise invalid(
                "region",
                region,
                f"a region where {repository}:{tag} is published: "
                f"{', '.join(sorted(accounts))}{region_hint(region)}",
                see=IMAGES_REFERENCE,
            )
        account = accounts[region]
        image_uri = f"{account}.dkr.ecr.{region}.{dns_suffix_for_region(region)}/{repository}:{tag}"
        arn_region = region
    else:
        registry = RegistryMapping.of(stack, registry_name)
        registry.description.images.add(f"{repository}:{tag}")
        account = registry.mapping.find_in_map(REGION, "account")
        image_uri = Fn.join(
            "", [account, ".dkr.ecr.", REGION, ".", URL_SUFFIX, f"/{repository}:{tag}"]
        )
        arn_region = REGION
    arn = stack.format_arn(
        service="ecr",
        resource="repository",
        resource_name=repository,
        account=account,
        region=arn_region,
    )
    return image_uri, arn
