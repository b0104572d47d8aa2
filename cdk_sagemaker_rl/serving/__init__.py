"""Serving a trained policy: a SageMaker endpoint, its model role and the predict function.

``plan`` (which image serves the policy, what its container needs) -> ``options`` (``deploy()``'s
checked options) -> ``endpoint`` (:class:`RLEndpoint`), which builds ``model_role`` and either the
``cloudformation`` resources (the model exists at deploy time) or the ``workflow`` (TrainAndServe,
after ``fit(wait=False)``: ``workflow_definition``, ``tags``, ``cleanup``), then ``predict`` (the
function and its URL); ``metrics`` are the endpoint's CloudWatch metrics.

Production serving options, each one concept: ``deployment`` (how an update reaches traffic,
with ``rollback_alarms``), ``autoscaling``, ``serverless``, ``data_capture``, and ``variant``
(the production variant request both modes send; limits checked by ``_checks``).
"""

from __future__ import annotations

from .autoscaling import AutoScaling, ScheduledCapacity
from .data_capture import DataCapture
from .deployment import Capacity, EndpointUpdate, RollbackThresholds, TrafficShifting
from .endpoint import RLEndpoint
from .gate_states import TRAINING_JOB_TAG, WorkflowGate
from .options import DeployOptions, check_deploy_options
from .plan import ServingPlan, serving_plan, serving_plan_for_attached
from .serverless import ServerlessInference
from .workflow import ServingWorkflow, WorkflowTarget

__all__ = [
    "TRAINING_JOB_TAG",
    "AutoScaling",
    "Capacity",
    "DataCapture",
    "DeployOptions",
    "EndpointUpdate",
    "RLEndpoint",
    "RollbackThresholds",
    "ScheduledCapacity",
    "ServerlessInference",
    "ServingPlan",
    "ServingWorkflow",
    "TrafficShifting",
    "WorkflowGate",
    "WorkflowTarget",
    "check_deploy_options",
    "serving_plan",
    "serving_plan_for_attached",
]
