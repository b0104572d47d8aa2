"""How a trained policy is served: the serving image, and what its container needs to be told.

The image itself is chosen in one place, :meth:`ContainerImage.serving_image` (TensorFlow Serving
for TensorFlow policies, MXNet serving for MXNet, the PyTorch inference container for PyTorch, the
training image itself for custom images). This module only adds what each of those containers needs
from ``deploy()``: the MXNet container runs the training entry point, the PyTorch container an
inference script, TensorFlow Serving no script at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct

from .._tokens import REGION
from ..errors import ValidationError, invalid
from ..images import BoundImage, ContainerImage, RLFramework

JSON = "application/json"
_DEPLOYING = "README.md#deploying"


@dataclass(frozen=True)
class ServingPlan:
    """How one trained policy is served: the image and what the container needs to know.

    ``kind`` is ``"tensorflow-serving"``, ``"mxnet"``, ``"pytorch"`` or ``"custom"``. Without an
    ``image``, ``image_uri`` names one only known at deploy time (an attached job's own image).
    """

    kind: str
    image: ContainerImage | None
    image_uri: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    needs_entry_point: bool = False
    content_type: str = JSON
    accept: str = JSON

    def container_environment(self, entry_point: str | None) -> dict[str, str]:
        """The container's environment with ``deploy(entry_point=...)`` applied.

        The PyTorch container cannot serve without an inference script; TensorFlow Serving never
        runs one, so a script given for it would be silently ignored: both are refused.
        """
        if entry_point is not None and not isinstance(entry_point, str):
            raise invalid("entry_point", entry_point, "a .py file name (str) or None")
        environment = dict(self.environment)
        if self.needs_entry_point and not entry_point:
            raise ValidationError(
                f"deploy() of a {self.kind} policy needs entry_point: the name of the "
                "inference script (model_fn/input_fn/predict_fn/output_fn) that your training "
                "script saved under <model dir>/code/, e.g. entry_point='inference.py'. "
                f"See {_DEPLOYING}."
            )
        if entry_point is not None:
            if self.kind == "tensorflow-serving":
                raise invalid(
                    "entry_point",
                    entry_point,
                    "None: TensorFlow Serving serves the SavedModel without a script",
                )
            if "/" in entry_point or not entry_point.endswith(".py"):
                raise invalid(
                    "entry_point", entry_point, "a .py file name inside the model's code/ directory"
                )
            environment["SAGEMAKER_PROGRAM"] = entry_point
        return environment


def as_image(image: ContainerImage | str) -> ContainerImage:
    """``deploy(image=...)`` as given: a ContainerImage, or any image URI."""
    return image if isinstance(image, ContainerImage) else ContainerImage.from_uri(image)


def serving_plan(
    training_image: ContainerImage,
    bound: BoundImage,
    override: ContainerImage | str | None,
    *,
    program: str | None = None,
    submit_directory: str | None = None,
    container_log_level: int = 20,
) -> ServingPlan:
    """Serve a policy trained with ``training_image`` (bound as ``bound``) in its serving image.

    ``override`` (``deploy(image=...)``) wins. ``program`` and ``submit_directory`` are the
    training entry point and source archive, which the MXNet serving container runs.
    """
    if override is not None:
        return ServingPlan("custom", as_image(override))
    try:
        image = training_image.serving_image()
    except ValidationError as error:
        raise _no_serving_image(bound, error) from None
    if image.is_custom:
        return ServingPlan("custom", image)
    framework = image.framework
    if framework is RLFramework.TENSORFLOW:
        # Coach and Ray both export a TensorFlow SavedModel; TensorFlow Serving speaks
        # {"instances": ...} -> {"predictions": ...}.
        return ServingPlan("tensorflow-serving", image)
    if framework is RLFramework.MXNET:
        environment = {
            "SAGEMAKER_PROGRAM": program or "",
            "SAGEMAKER_SUBMIT_DIRECTORY": submit_directory or "",
            "SAGEMAKER_REGION": REGION,
            "SAGEMAKER_CONTAINER_LOG_LEVEL": str(container_log_level),
        }
        return ServingPlan("mxnet", image, environment=environment)
    if framework is RLFramework.PYTORCH:
        return ServingPlan("pytorch", image, needs_entry_point=True)
    raise _no_serving_image(bound, None)  # pragma: no cover - serving images have a framework


def _no_serving_image(bound: BoundImage, error: ValidationError | None) -> ValidationError:
    """Why ``deploy()`` cannot serve the policy, and what to pass instead."""
    reason = f" ({error})" if error is not None else ""
    if bound.framework is RLFramework.PYTORCH:
        return ValidationError(
            f"A PyTorch policy trained with torch {bound.framework_version} has no way to be "
            f"served: the catalogue has no PyTorch inference image for it{reason}. Pass "
            "image=ContainerImage.pytorch_inference('<version>') (or any image) and "
            f"entry_point='<inference script>' to deploy(). See {_DEPLOYING}."
        )
    return ValidationError(
        f"No serving image is known for a policy trained with toolkit={bound.toolkit!r} and "
        f"framework={bound.framework!r}{reason}; pass image=ContainerImage.from_uri(...) to "
        f"deploy(). See {_DEPLOYING}."
    )


def serving_plan_for_attached(
    scope: Construct,
    image_spec: ContainerImage | None,
    training_image_uri: str,
    instance_type: str,
    override: ContainerImage | str | None,
) -> ServingPlan:
    """Serving for an attached job: the given toolkit's image, or the job's own training image."""
    if override is not None:
        return ServingPlan("custom", as_image(override))
    if image_spec is None:
        return ServingPlan("custom", None, image_uri=training_image_uri)
    bound = image_spec.bind(scope, instance_type=instance_type)
    return serving_plan(image_spec, bound, None)
