"""Container images: the SageMaker RL catalogue, Deep Learning Containers and your own images.

``toolkits`` (what an image is made of) -> ``catalogue`` (the data and the SDK's selection rules)
-> ``container_image`` (what users hold) -> ``bound`` (one image resolved for one stack), with
``registry`` (region -> account in environment-agnostic stacks) and ``ecr_uri`` beside them.
"""

from __future__ import annotations

from .bound import BoundImage
from .catalogue import RLImageSpec, dns_suffix_for_region, rl_image_specs
from .container_image import ContainerImage, RLToolkitImage
from .ecr_uri import EcrImageReference, parse_ecr_uri
from .toolkits import Processor, RLFramework, RLToolkit

__all__ = [
    "BoundImage",
    "ContainerImage",
    "EcrImageReference",
    "Processor",
    "RLFramework",
    "RLImageSpec",
    "RLToolkit",
    "RLToolkitImage",
    "dns_suffix_for_region",
    "parse_ecr_uri",
    "rl_image_specs",
]
