"""SageMaker's limits on a training request, read from ``_data/limits.json`` (data, not code)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def limits() -> dict[str, Any]:
    text = resources.files("cdk_sagemaker_rl").joinpath("_data/limits.json").read_text("utf-8")
    return dict(json.loads(text))


def limit(section: str, key: str) -> Any:
    return limits()[section][key]
