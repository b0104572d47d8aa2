"""Names of what an estimator creates at run time, and the one SageMaker name rule.

SageMaker names are account-wide, and every permission of an estimator is scoped by its job-name
base (``<base>-*``). So the base must be unique per estimator: the default one is derived from the
stack name and the construct path, and anything shortened keeps a hash of what was cut, so that two
distinct inputs never end up as the same name.
"""

from __future__ import annotations

import hashlib
import re
import weakref

from aws_cdk import Names, Stack
from constructs import IConstruct

from ._tokens import is_token_string
from .errors import ValidationError, invalid

#: SageMaker's rule for training job, model, endpoint config, endpoint and variant names.
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
SAGEMAKER_NAME_RULE = "1-63 letters, digits and hyphens, starting with a letter or digit"
#: ``-YYYY-MM-DD-HH-MM-SS-mmm``: the SDK-style suffix each deploy-time run appends to the base.
JOB_NAME_SUFFIX_LENGTH = 24
MAX_JOB_NAME_BASE = 63 - JOB_NAME_SUFFIX_LENGTH
_HASH_LENGTH = 8


def check_sagemaker_name(value: object, argument: str) -> str:
    """A literal SageMaker name (tokens pass: they are checked by SageMaker at deploy time)."""
    if isinstance(value, str) and (is_token_string(value) or SAGEMAKER_NAME.match(value)):
        return value
    raise invalid(argument, value, f"{SAGEMAKER_NAME_RULE} (^[a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}})")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_LENGTH]


def shorten(name: str, max_length: int, *, identity: str) -> str:
    """``name`` if it fits, else its head plus a hash of ``identity`` (distinct stays distinct)."""
    if len(name) <= max_length:
        return name
    head = name[: max_length - _HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{_digest(identity)}"


def _readable(text: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-zA-Z0-9]+", "-", text)).strip("-") or "rl"


def default_job_name_base(scope: IConstruct) -> str:
    """``<stack>-<construct id>-<hash of stack name and path>``, at most 39 characters.

    The stack name is part of the hash because it, not the construct path, is what is unique in
    an account and region: two apps may use the same path under different stack names.
    """
    stack = Stack.of(scope)
    stack_name = stack.stack_name
    if is_token_string(stack_name):
        stack_name = ""
    identity = f"{stack_name}\0{scope.node.path}"
    readable = _readable(f"{stack_name}-{scope.node.id}")
    head = readable[: MAX_JOB_NAME_BASE - _HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{_digest(identity)}"


def job_name_base(scope: IConstruct, given: str | None, argument: str) -> str:
    """The base every job (and model, endpoint config) of one estimator is named after."""
    if given is None:
        base = default_job_name_base(scope)
    else:
        check_sagemaker_name(given, argument)
        base = shorten(given, MAX_JOB_NAME_BASE, identity=given)
    _claim(scope, base, argument)
    return base


_CLAIMED: weakref.WeakKeyDictionary[IConstruct, dict[str, str]] = weakref.WeakKeyDictionary()


def _claim(scope: IConstruct, base: str, argument: str) -> None:
    """Refuse a base whose ``<base>-*`` permissions would cover another estimator's jobs.

    Only estimators of one app can be compared; across apps the default (hashed) bases differ.
    SageMaker compares names case-insensitively in ARNs, so this does too.
    """
    claimed = _CLAIMED.setdefault(scope.node.root, {})
    lowered = base.lower()
    for other, path in claimed.items():
        if other == lowered or other.startswith(f"{lowered}-") or lowered.startswith(f"{other}-"):
            raise ValidationError(
                f"{argument}={base!r} of {scope.node.path} overlaps the job-name base {other!r} "
                f"of {path}: the permissions of one (scoped to '<base>-*') would cover the "
                "other's training jobs. Allowed: a base that is not another's base followed by "
                "'-...' (or leave it unset for a unique default). See README.md#isolation."
            )
    claimed[lowered] = scope.node.path


def unique_physical_name(scope: IConstruct, max_length: int = 63) -> str:
    """A SageMaker name unique to ``scope`` in its stack, known at synth time."""
    name = Names.unique_resource_name(scope, max_length=max_length, separator="-").strip("-")
    name = re.sub(r"-{2,}", "-", name)
    return check_sagemaker_name(name, f"the name derived from {scope.node.path}")
