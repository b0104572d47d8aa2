"""cdk-sagemaker-rl: SageMaker reinforcement-learning train-and-serve as AWS CDK v2 constructs.

The maintained successor of the SageMaker Python SDK's ``RLEstimator``: the same arguments, but
``cdk deploy`` trains and then serves, and the result is reviewed as infrastructure code.
"""

from .errors import ValidationError
from .images import BoundImage, ContainerImage, Processor, RLFramework, RLToolkit
from .serving import RLEndpoint, ServingPlan
from .training import AttachedTrainingJob, InputMode, RLEstimator, encode_hyperparameters

__all__ = [
    "AttachedTrainingJob",
    "BoundImage",
    "ContainerImage",
    "InputMode",
    "Processor",
    "RLEndpoint",
    "RLEstimator",
    "RLFramework",
    "RLToolkit",
    "ServingPlan",
    "ValidationError",
    "encode_hyperparameters",
]
