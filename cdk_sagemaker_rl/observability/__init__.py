"""Observability of one estimator: its training reward and endpoint health on one dashboard.

``options`` (:class:`Monitoring`, the switches) -> ``training_metrics`` (the metric definitions as
CloudWatch search expressions) and ``endpoint_metrics`` (what is read from an endpoint, through the
:class:`MonitoredEndpoint` protocol so that ``serving`` and this package never import each other)
-> ``alarms`` (training failed, endpoint errors, the SNS topic) and ``dashboard`` (the widgets) ->
``monitoring`` (:class:`EstimatorMonitoring`, the construct that puts them together).
"""

from __future__ import annotations

from .endpoint_metrics import MonitoredEndpoint
from .monitoring import EstimatorMonitoring
from .options import Monitoring
from .training_metrics import search_expression, training_metric

__all__ = [
    "EstimatorMonitoring",
    "MonitoredEndpoint",
    "Monitoring",
    "search_expression",
    "training_metric",
]
