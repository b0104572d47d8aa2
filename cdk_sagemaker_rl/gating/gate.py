"""``RewardGate``: the bar a newly trained policy must clear before it may serve traffic.

In RL a training run that "succeeds" often yields a worse policy (too small a budget, an unlucky
seed). The gate states in code what "good enough" means, so that the deploy refuses to serve a
policy that is not, and says why with the metric, its value and the bar.

The metric is read after training from one of two places, chosen here at synth time so that a
gate that can never be evaluated is refused before anything is deployed:

* a metric definition of the estimator: SageMaker's final value of it for the job
  (``DescribeTrainingJob`` ``FinalMetricDataList``);
* an evaluation file the training script writes to ``/opt/ml/output/data/<file>`` (SageMaker
  uploads that folder as ``output/output.tar.gz``): a JSON object whose top-level number under
  the metric's name is the value. README.md#gating-and-promotion documents this contract.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError, invalid

_SEE = "README.md#gating-and-promotion"
#: What SageMaker's MetricDefinition Name allows (and what we look up in the evaluation file).
_METRIC_NAME = re.compile(r"^.{1,255}$")
#: A file name under /opt/ml/output/data (no directories: the gate reads one archive member).
_FILE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class Comparison(enum.Enum):
    """How the metric is compared with the threshold; the value is the operator shown in
    messages (``eval_reward_mean = 9.4, required >= 450``)."""

    GREATER_THAN_OR_EQUAL = ">="
    GREATER_THAN = ">"
    LESS_THAN_OR_EQUAL = "<="
    LESS_THAN = "<"

    @classmethod
    def parse(cls, value: object) -> Comparison:
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for member in cls:
                if value in (member.value, member.name):
                    return member
        raise invalid(
            "comparison",
            value,
            [f"Comparison.{m.name} ({m.value!r})" for m in cls],
            see=_SEE,
        )

    @property
    def higher_is_better(self) -> bool:
        return self in (Comparison.GREATER_THAN_OR_EQUAL, Comparison.GREATER_THAN)


def _number(value: object, argument: str, *, minimum: float | None = None) -> float:
    """A finite int or float (bool is refused: ``True`` is no threshold anyone means)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        allowed = "a finite number (int or float)"
        if minimum is not None:
            allowed += f" >= {minimum:g}"
        raise invalid(argument, value, allowed, see=_SEE)
    if minimum is not None and value < minimum:
        raise invalid(argument, value, f"a finite number >= {minimum:g}", see=_SEE)
    return float(value)


@dataclass(frozen=True)
class RewardGate:
    """Serve a newly trained policy only if ``metric`` ``comparison`` ``threshold`` holds.

    ``max_regression``: also require the new policy to be no worse than the policy the endpoint
    serves now by more than this amount of the same metric (champion/challenger). The first
    deploy has no champion; then only the threshold applies.

    ``evaluation_file``: read the metric from this JSON file, written by the training script to
    ``/opt/ml/output/data/``, instead of from the estimator's metric definitions.
    """

    metric: str
    threshold: float
    comparison: Comparison | str = Comparison.GREATER_THAN_OR_EQUAL
    max_regression: float | None = None
    evaluation_file: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not _METRIC_NAME.match(self.metric):
            raise invalid("metric", self.metric, "a metric name of 1-255 characters", see=_SEE)
        object.__setattr__(self, "threshold", _number(self.threshold, "threshold"))
        object.__setattr__(self, "comparison", Comparison.parse(self.comparison))
        if self.max_regression is not None:
            value = _number(self.max_regression, "max_regression", minimum=0)
            object.__setattr__(self, "max_regression", value)
        if self.evaluation_file is not None and (
            not isinstance(self.evaluation_file, str) or not _FILE_NAME.match(self.evaluation_file)
        ):
            raise invalid(
                "evaluation_file",
                self.evaluation_file,
                "a file name (letters, digits, '.', '_', '-') the training script writes to "
                "/opt/ml/output/data/, e.g. 'evaluation.json'",
                see=_SEE,
            )

    @property
    def operator(self) -> Comparison:
        assert isinstance(self.comparison, Comparison)  # parsed in __post_init__
        return self.comparison

    def check_source(self, metric_names: Sequence[str], where: str) -> None:
        """Refuse a gate whose metric nothing produces: no metric definition and no file."""
        if self.evaluation_file is not None or self.metric in metric_names:
            return
        known = ", ".join(repr(n) for n in metric_names) or "none"
        raise ValidationError(
            f"RewardGate(metric={self.metric!r}) is not valid for {where}: no metric definition "
            f"produces it (the estimator's metric definitions: {known}) and no evaluation_file "
            "is given. Allowed: the name of one of the metric definitions, or "
            "RewardGate(..., evaluation_file='evaluation.json') with a training script that "
            "writes that JSON file (top-level number under the metric's name) to "
            f"/opt/ml/output/data/. See {_SEE}."
        )

    def description(self) -> str:
        """The bar in words, as messages and the registry show it."""
        text = f"{self.metric} {self.operator.value} {self.threshold:g}"
        if self.max_regression is not None:
            text += f" and no more than {self.max_regression:g} worse than the serving policy"
        return text

    def properties(self) -> dict[str, Any]:
        """What the gate function receives (custom resource properties or task payload)."""
        source: dict[str, Any] = (
            {"Kind": "EvaluationFile", "File": self.evaluation_file}
            if self.evaluation_file is not None
            else {"Kind": "FinalMetric"}
        )
        gate: dict[str, Any] = {
            "Metric": self.metric,
            "Comparison": self.operator.value,
            # Strings: CloudFormation hands every custom resource property over as a string.
            "Threshold": repr(self.threshold),
            "Source": source,
        }
        if self.max_regression is not None:
            gate["MaxRegression"] = repr(self.max_regression)
        return gate
