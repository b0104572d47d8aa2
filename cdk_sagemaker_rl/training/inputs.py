"""The channels of ``fit(inputs=...)``: S3 data, and (SDK v2's ``TrainingInput``) which instance
groups receive it.

A plain ``s3://`` string stays what it always was (an ``S3Prefix``, ``FullyReplicated`` channel
every instance downloads). :class:`TrainingInput` adds what heterogeneous clusters need: a channel
only some groups download (``S3DataSource.InstanceGroupNames``), so that a simulator group does
not pull the learner's data. Group names are checked against the job's groups at synth.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._limits import limits
from .._s3 import S3Location, parse_s3_uri
from ..errors import invalid
from .instance_groups import DISTRIBUTED, InstanceGroup, check_group_names

_ALLOWED = (
    "None, an s3:// URI, a TrainingInput, or a dict of channel name -> s3:// URI or TrainingInput"
)


@dataclass(frozen=True)
class TrainingInput:
    """One channel's data: ``s3_data`` (an ``s3://`` URI or an ``S3Location``) and, for a
    heterogeneous cluster, the ``instance_groups`` that download it (all of them when None)."""

    s3_data: str | S3Location
    instance_groups: Sequence[str] | None = None

    @property
    def uri(self) -> str:
        return self.s3_data.uri if isinstance(self.s3_data, S3Location) else self.s3_data

    def s3_data_source(self) -> dict[str, Any]:
        """The request's ``S3DataSource``: as the SDK sent it, plus the groups when named."""
        source: dict[str, Any] = {
            "S3DataType": "S3Prefix",
            "S3Uri": self.uri,
            "S3DataDistributionType": "FullyReplicated",
        }
        if self.instance_groups:
            source["InstanceGroupNames"] = list(self.instance_groups)
        return source


def channels(
    inputs: str | TrainingInput | Mapping[str, str | TrainingInput] | None,
) -> dict[str, TrainingInput]:
    """``fit(inputs=...)``: one URI or TrainingInput is the ``training`` channel; a dict names
    the channels. Every URI is checked; group names are checked by :func:`check_channel_groups`
    once the job's groups are known."""
    if inputs is None:
        return {}
    if isinstance(inputs, str | TrainingInput):
        return {"training": _one(inputs, "inputs")}
    if not isinstance(inputs, Mapping):
        raise invalid("inputs", inputs, _ALLOWED)
    pattern = re.compile(limits()["channel_name_pattern"])
    result = {}
    for name, item in inputs.items():
        if not pattern.match(str(name)):
            raise invalid(
                "inputs channel name",
                name,
                "1-64 letters, digits, '.', '-' or '_' (SageMaker ChannelName)",
            )
        result[str(name)] = _one(item, f"inputs[{name!r}]")
    return result


def _one(item: object, argument: str) -> TrainingInput:
    if isinstance(item, str):
        parse_s3_uri(item, argument)
        return TrainingInput(item)
    if not isinstance(item, TrainingInput):
        raise invalid(argument, item, "an s3:// URI or a TrainingInput")
    if isinstance(item.s3_data, str):
        parse_s3_uri(item.s3_data, f"{argument}.s3_data")
    elif not isinstance(item.s3_data, S3Location):
        raise invalid(f"{argument}.s3_data", item.s3_data, "an s3:// URI or an S3Location")
    if item.instance_groups is not None:
        groups = item.instance_groups
        if isinstance(groups, str | bytes) or not isinstance(groups, Sequence) or not groups:
            raise invalid(
                f"{argument}.instance_groups",
                groups,
                "None (every group) or a non-empty list of instance group names",
                see=DISTRIBUTED,
            )
        item = TrainingInput(item.s3_data, tuple(groups))
    return item


def check_channel_groups(
    inputs: Mapping[str, TrainingInput], groups: Sequence[InstanceGroup]
) -> None:
    """Every group a channel names is one of the job's ``instance_groups``."""
    for name, item in inputs.items():
        if item.instance_groups is not None:
            check_group_names(item.instance_groups, groups, f"inputs[{name!r}].instance_groups")


def uris(inputs: Mapping[str, TrainingInput]) -> dict[str, str]:
    """Channel name -> S3 URI (what the execution role is granted to read)."""
    return {name: item.uri for name, item in inputs.items()}
