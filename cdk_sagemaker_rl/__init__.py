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

if TYPE_CHECKING:
    from .errors import ValidationError
    from .images import BoundImage, ContainerImage, Processor, RLFramework, RLToolkit
    from .serving import RLEndpoint, ServingPlan
    from .training import AttachedTrainingJob, InputMode, RLEstimator, encode_hyperparameters

_EXPORTS = {
    "AttachedTrainingJob": "training",
    "BoundImage": "images",
    "ContainerImage": "images",
    "InputMode": "training",
    "Processor": "images",
    "RLEndpoint": "serving",
    "RLEstimator": "training",
    "RLFramework": "images",
    "RLToolkit": "images",
    "ServingPlan": "serving",
    "ValidationError": "errors",
    "encode_hyperparameters": "training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
