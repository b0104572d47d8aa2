"""Training: checked settings -> request -> a Task state -> the estimator's state machine -> the
deploy-time run.

``arguments`` / ``config`` / ``instance_groups`` / ``inputs`` (what a job is and reads),
``request`` (the SDK's CreateTrainingJob), ``outputs`` (where artifacts go), ``network`` (VPC),
``execution_role`` and ``artifacts`` (what the job may touch), ``step`` (the public Task state),
``state_machine`` (the estimator's workflow), ``deploy_time`` (``fit()``), ``attach`` (an
existing job).
"""

from __future__ import annotations

from .arguments import INJECTED_HYPERPARAMETERS, encode_hyperparameters
from .config import InputMode, TrainingConfig
from .inputs import TrainingInput
from .instance_groups import InstanceGroup
from .job import training_job_parts
from .network import TrainingNetwork, training_network
from .request import TrainingJobParts, training_request
from .step import RLTrainingStep

__all__ = [
    "INJECTED_HYPERPARAMETERS",
    "InputMode",
    "InstanceGroup",
    "RLTrainingStep",
    "TrainingConfig",
    "TrainingInput",
    "TrainingJobParts",
    "TrainingNetwork",
    "encode_hyperparameters",
    "training_job_parts",
    "training_network",
    "training_request",
]
