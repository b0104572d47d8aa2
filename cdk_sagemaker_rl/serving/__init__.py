"""Serving a trained policy: a SageMaker endpoint, its model role and the predict function.

``plan`` (which image serves the policy, what its container needs) -> ``options`` (``deploy()``'s
checked options) -> ``endpoint`` (:class:`RLEndpoint`), which builds ``model_role`` and either the
``cloudformation`` resources (the model exists at deploy time) or the ``workflow`` (TrainAndServe,
after ``fit(wait=False)``: ``workflow_definition``, ``tags``, ``cleanup``), then ``predict`` (the
function and its URL); ``metrics`` are the endpoint's CloudWatch metrics.
"""

from __future__ import annotations

from .endpoint import RLEndpoint
from .plan import ServingPlan, serving_plan, serving_plan_for_attached
from .workflow import ServingWorkflow, WorkflowTarget

__all__ = [
    "RLEndpoint",
    "ServingPlan",
    "ServingWorkflow",
    "WorkflowTarget",
    "serving_plan",
    "serving_plan_for_attached",
]
