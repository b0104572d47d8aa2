"""cdk-sagemaker-rl: SageMaker reinforcement-learning train-and-serve as AWS CDK v2 constructs.

The maintained successor of the SageMaker Python SDK's ``RLEstimator``: the same arguments, but
``cdk deploy`` trains and then serves, and the result is reviewed as infrastructure code.

The public names are imported on first use, so that local mode's processes (the emulator, the
training runner, the model server), which import ``cdk_sagemaker_rl.local``, do not start the
jsii runtime behind aws-cdk-lib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
    from ._s3 import S3Location as S3Location
    from ._s3 import s3_location as s3_location
    from .distributed import RayCluster as RayCluster
    from .errors import ValidationError as ValidationError
    from .estimator import RLEstimator as RLEstimator
    from .gating import ApprovedPolicy as ApprovedPolicy
    from .gating import Comparison as Comparison
    from .gating import ModelPackageGroup as ModelPackageGroup
    from .gating import ModelRegistry as ModelRegistry
    from .gating import RewardGate as RewardGate
    from .images import BoundImage as BoundImage
    from .images import ContainerImage as ContainerImage
    from .images import Processor as Processor
    from .images import RLFramework as RLFramework
    from .images import RLToolkit as RLToolkit
    from .observability import EstimatorMonitoring as EstimatorMonitoring
    from .observability import Monitoring as Monitoring
    from .serving import AutoScaling as AutoScaling
    from .serving import Capacity as Capacity
    from .serving import DataCapture as DataCapture
    from .serving import EndpointUpdate as EndpointUpdate
    from .serving import RLEndpoint as RLEndpoint
    from .serving import RollbackThresholds as RollbackThresholds
    from .serving import ScheduledCapacity as ScheduledCapacity
    from .serving import ServerlessInference as ServerlessInference
    from .serving import ServingPlan as ServingPlan
    from .serving import TrafficShifting as TrafficShifting
    from .source import TrainingSource as TrainingSource
    from .training import InputMode as InputMode
    from .training import InstanceGroup as InstanceGroup
    from .training import RLTrainingStep as RLTrainingStep
    from .training import TrainingConfig as TrainingConfig
    from .training import TrainingInput as TrainingInput
    from .training import TrainingJobParts as TrainingJobParts
    from .training import TrainingNetwork as TrainingNetwork
    from .training import encode_hyperparameters as encode_hyperparameters
    from .training import training_job_parts as training_job_parts
    from .training import training_network as training_network
    from .training.attach import AttachedTrainingJob as AttachedTrainingJob

_EXPORTS = {
    "ApprovedPolicy": "gating",
    "Comparison": "gating",
    "ModelPackageGroup": "gating",
    "ModelRegistry": "gating",
    "RewardGate": "gating",
    "EstimatorMonitoring": "observability",
    "Monitoring": "observability",
    "TrafficShifting": "serving",
    "ServerlessInference": "serving",
    "ScheduledCapacity": "serving",
    "EndpointUpdate": "serving",
    "DataCapture": "serving",
    "Capacity": "serving",
    "AutoScaling": "serving",
    "AttachedTrainingJob": "training.attach",
    "BoundImage": "images",
    "ContainerImage": "images",
    "InputMode": "training",
    "InstanceGroup": "training",
    "RayCluster": "distributed",
    "TrainingInput": "training",
    "Processor": "images",
    "RLEndpoint": "serving",
    "RollbackThresholds": "serving",
    "RLEstimator": "estimator",
    "RLFramework": "images",
    "RLToolkit": "images",
    "S3Location": "_s3",
    "RLTrainingStep": "training",
    "ServingPlan": "serving",
    "TrainingConfig": "training",
    "TrainingJobParts": "training",
    "TrainingNetwork": "training",
    "TrainingSource": "source",
    "ValidationError": "errors",
    "encode_hyperparameters": "training",
    "s3_location": "_s3",
    "training_job_parts": "training",
    "training_network": "training",
}

__all__ = [
    "ApprovedPolicy",
    "AttachedTrainingJob",
    "AutoScaling",
    "BoundImage",
    "Capacity",
    "Comparison",
    "ContainerImage",
    "DataCapture",
    "EndpointUpdate",
    "EstimatorMonitoring",
    "InputMode",
    "InstanceGroup",
    "ModelPackageGroup",
    "ModelRegistry",
    "Monitoring",
    "Processor",
    "RLEndpoint",
    "RLEstimator",
    "RLFramework",
    "RLToolkit",
    "RLTrainingStep",
    "RayCluster",
    "RewardGate",
    "RollbackThresholds",
    "S3Location",
    "ScheduledCapacity",
    "ServerlessInference",
    "ServingPlan",
    "TrafficShifting",
    "TrainingConfig",
    "TrainingInput",
    "TrainingJobParts",
    "TrainingNetwork",
    "TrainingSource",
    "ValidationError",
    "encode_hyperparameters",
    "s3_location",
    "training_job_parts",
    "training_network",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
