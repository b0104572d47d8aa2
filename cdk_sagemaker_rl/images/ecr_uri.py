"""ECR image URIs: parsed so that pull permissions can name the repository, checked so that a
malformed URI fails at synth instead of when SageMaker pulls it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Stack
from constructs import Construct

from .._tokens import is_token_string
from ..errors import invalid
from .toolkits import IMAGES_REFERENCE

_ECR_URI_RE = re.compile(
    r"^(?P<account>\d{12})\.dkr[.-]ecr(?P<fips>-fips)?\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)"
    r"\.(?P<suffix>[a-z0-9][a-z0-9.-]*[a-z])"
    r"/(?P<repository>[^:@\s]+)"
    r"(?::(?P<tag>[^@\s]+))?"
    r"(?:@(?P<digest>[^\s]+))?$"
)
_ECR_REPOSITORY_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class EcrImageReference:
    """The parts of an ECR image URI."""

    account: str
    region: str
    dns_suffix: str
    repository: str
    tag: str | None
    digest: str | None

    def repository_arn(self, scope: Construct) -> str:
        """The repository ARN; the partition comes from the stack, which must share it anyway."""
        return Stack.of(scope).format_arn(
            service="ecr",
            resource="repository",
            resource_name=self.repository,
            account=self.account,
            region=self.region,
        )


def parse_ecr_uri(uri: str) -> EcrImageReference | None:
    """Parse an ECR image URI; None when ``uri`` is not an ECR URI (or is a token).

    Raises ValidationError when the host is ECR's but the rest cannot name an image, since such a
    URI would only fail later, when SageMaker pulls it.
    """
    if not isinstance(uri, str) or is_token_string(uri):
        return None
    match = _ECR_URI_RE.match(uri)
    if match is None:
        if re.match(r"^\d{12}\.dkr[.-]ecr", uri):
            raise invalid(
                "image_uri",
                uri,
                "an ECR image URI <account>.dkr.ecr.<region>.<dns suffix>/<repository>"
                "[:<tag>|@sha256:<digest>]",
                see=IMAGES_REFERENCE,
            )
        return None
    repository, tag, digest = match["repository"], match["tag"], match["digest"]
    if not _ECR_REPOSITORY_RE.match(repository) or len(repository) > 256:
        raise invalid(
            "image_uri",
            uri,
            f"an ECR repository name of lower case letters, digits and ._-/ (got {repository!r})",
            see="https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html",
        )
    if tag is not None and not TAG_RE.match(tag):
        raise invalid("image_uri", uri, f"a valid image tag (got {tag!r})", see=IMAGES_REFERENCE)
    if digest is not None and not DIGEST_RE.match(digest):
        raise invalid(
            "image_uri",
            uri,
            f"a digest sha256:<64 hex digits> (got {digest!r})",
            see=IMAGES_REFERENCE,
        )
    return EcrImageReference(
        account=match["account"],
        region=match["region"],
        dns_suffix=match["suffix"],
        repository=repository,
        tag=tag,
        digest=digest,
    )
