"""Heterogeneous clusters: a training job made of named groups of instances (SDK v2's
``instance_groups``).

SageMaker runs one image and one script on every instance of every group; a script tells its group
from ``resourceconfig.json``, and a channel may go to some groups only (``TrainingInput(...,
instance_groups=[...])``). The groups replace ``InstanceType``/``InstanceCount`` in the request,
so giving both is refused here rather than by SageMaker an hour into a deploy. The limits are
SageMaker's, kept as data in ``_data/limits.json``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._limits import limits
from .._tokens import is_token_string
from ..errors import invalid
from ..instance_types import validate_training_instance_type

DISTRIBUTED = "README.md#distributed-rl"


@dataclass(frozen=True)
class InstanceGroup:
    """One named group of identical instances, as the SDK v2's ``sagemaker.InstanceGroup``.

    Checked where it is used (``RLEstimator(instance_groups=...)``, ``TrainingConfig``), so that
    the error names the argument the user wrote.
    """

    instance_group_name: str
    instance_type: str
    instance_count: int

    def request(self) -> dict[str, Any]:
        """The ``ResourceConfig.InstanceGroups`` entry."""
        return {
            "InstanceGroupName": self.instance_group_name,
            "InstanceType": self.instance_type,
            "InstanceCount": self.instance_count,
        }


def instance_groups(value: object, argument: str = "instance_groups") -> tuple[InstanceGroup, ...]:
    """The checked groups: 1 to SageMaker's maximum, distinct names, known types, >= 1 instance."""
    rules = limits()["instance_groups"]
    allowed = "a list of InstanceGroup(instance_group_name, instance_type, instance_count)"
    if isinstance(value, str | bytes | InstanceGroup) or not isinstance(value, Sequence):
        raise invalid(argument, value, allowed, see=DISTRIBUTED)
    if not value:
        raise invalid(argument, value, f"{allowed}, at least one", see=DISTRIBUTED)
    most = rules["max_entries"]
    if len(value) > most:
        raise invalid(
            argument,
            f"<{len(value)} groups>",
            f"at most {most} instance groups (SageMaker's ResourceConfig.InstanceGroups)",
            see=DISTRIBUTED,
        )
    seen: set[str] = set()
    for index, group in enumerate(value):
        where = f"{argument}[{index}]"
        if not isinstance(group, InstanceGroup):
            raise invalid(where, group, allowed, see=DISTRIBUTED)
        _check_name(group.instance_group_name, f"{where}.instance_group_name")
        validate_training_instance_type(group.instance_type, f"{where}.instance_type")
        count, low = group.instance_count, rules["instance_count_min"]
        if isinstance(count, bool) or not isinstance(count, int) or count < low:
            raise invalid(
                f"{where}.instance_count",
                count,
                f"an integer >= {low} (a group without instances runs nothing; SageMaker sets "
                "no maximum, your account's instance quotas apply)",
                see=DISTRIBUTED,
            )
        if group.instance_group_name in seen:
            raise invalid(
                f"{where}.instance_group_name",
                group.instance_group_name,
                "a name no other group has (channels and the Ray head name groups by it)",
                see=DISTRIBUTED,
            )
        seen.add(group.instance_group_name)
    return tuple(value)


def refuse_with_groups(given: Mapping[str, object]) -> None:
    """The single-type arguments (``train_instance_type`` ..., their SDK v2 aliases): refused
    beside ``instance_groups``, which say each group's type and count."""
    for argument, value in given.items():
        if value is not None:
            raise invalid(
                argument,
                value,
                "None when instance_groups is given (each group has its own instance type and "
                "count)",
                see=DISTRIBUTED,
            )


def _check_name(name: object, argument: str) -> None:
    rules = limits()["instance_groups"]
    low, high = rules["name_min_length"], rules["name_max_length"]
    if not isinstance(name, str):
        raise invalid(argument, name, f"a string of {low} to {high} characters", see=DISTRIBUTED)
    if is_token_string(name):
        raise invalid(
            argument,
            name,
            "a literal name (channels and the Ray head are matched to it at synth)",
            see=DISTRIBUTED,
        )
    if not low <= len(name) <= high or not re.fullmatch(rules["name_pattern"], name):
        raise invalid(
            argument,
            name,
            f"{low} to {high} characters on one line (SageMaker's InstanceGroupName)",
            see=DISTRIBUTED,
        )


def check_group_names(
    names: object, known: Sequence[InstanceGroup], argument: str
) -> tuple[str, ...]:
    """Group names a channel (or the Ray head) refers to: each must be one of ``known``."""
    rules = limits()["instance_groups"]
    groups = {group.instance_group_name for group in known}
    if isinstance(names, str | bytes) or not isinstance(names, Sequence) or not names:
        raise invalid(argument, names, "a non-empty list of instance group names", see=DISTRIBUTED)
    if len(names) > rules["channel_max_groups"]:
        raise invalid(
            argument,
            names,
            f"at most {rules['channel_max_groups']} group names (SageMaker's InstanceGroupNames)",
            see=DISTRIBUTED,
        )
    for name in names:
        if name not in groups:
            allowed = (
                f"names of the job's instance_groups: {', '.join(sorted(groups))}"
                if groups
                else "nothing: the job has no instance_groups (give instance_groups=[...] to "
                "the estimator or TrainingConfig)"
            )
            raise invalid(argument, name, allowed, see=DISTRIBUTED)
    if len(set(names)) != len(names):
        raise invalid(argument, names, "each group named once", see=DISTRIBUTED)
    return tuple(names)
