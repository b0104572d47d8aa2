"""Only good policies reach traffic: the reward gate, the model registry, and promotion.

``gate.py`` (RewardGate, Comparison: the bar, checked at synth), ``registry.py`` (ModelRegistry
options, ModelPackageGroup), ``evaluation.py`` (PolicyGate: where the gate runs and its IAM),
``promotion.py`` (ApprovedPolicy: serve the latest approved version of a group elsewhere).
The judgement itself is the bundled function ``lambda/custom_resources/gate.py``.
"""

from __future__ import annotations

from .evaluation import PolicyGate, gated
from .gate import Comparison, RewardGate
from .promotion import ApprovedPolicy
from .registry import ModelPackageGroup, ModelPackageGroupBase, ModelRegistry, group_from

__all__ = [
    "ApprovedPolicy",
    "Comparison",
    "ModelPackageGroup",
    "ModelPackageGroupBase",
    "ModelRegistry",
    "PolicyGate",
    "RewardGate",
    "gated",
    "group_from",
]
