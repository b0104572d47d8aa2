"""The tags on what the serving workflow creates, built in one place.

CloudFormation does not know the models, endpoint configs and endpoint that the TrainAndServe
workflow creates, so it cannot tag them or delete them. The workflow tags each with the endpoint it
belongs to, and the cleanup deletes only what carries that tag, never another stack's resources.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsii
from aws_cdk import IAnyProducer, IResolveContext, Lazy

#: Tag on every model, endpoint config and endpoint the workflow creates: the endpoint's name.
#: The cleanup deletes only models and configs carrying it, never another stack's.
SERVING_TAG_KEY = "cdk-sagemaker-rl:endpoint"
#: Tag naming the training job whose model a resource serves (traceability in the console).
TRAINING_JOB_TAG_KEY = "cdk-sagemaker-rl:training-job"

#: More tags for what the workflow creates (e.g. the stack's ``Tags.of(...)``), asked for when
#: the template is rendered, so that tags added after the workflow was built are included.
ExtraTags = Callable[[], list[dict[str, str]]]


@jsii.implements(IAnyProducer)
class _Rendered:
    """Produces the tag list at every resolution: tags may still be added after the first one
    (a fingerprint resolves the requests while the app is being built)."""

    def __init__(self, produce: Callable[[], list[dict[str, str]]]) -> None:
        self._produce = produce

    def produce(self, context: IResolveContext) -> Any:
        return self._produce()


def workflow_tags(
    endpoint_name: str, *, training_job: bool, extra_tags: ExtraTags | None = None
) -> Any:
    """The ``Tags`` of a CreateModel, CreateEndpointConfig or CreateEndpoint request.

    ``training_job`` adds the tag naming the execution's training job; the endpoint does not get
    it, because an update would leave it naming the first job. ``extra_tags`` come after ours;
    one with a key of ours is dropped (SageMaker refuses a key twice, and the cleanup relies on
    our value).
    """
    tags: list[dict[str, str]] = [{"Key": SERVING_TAG_KEY, "Value": endpoint_name}]
    if training_job:
        tags.append({"Key": TRAINING_JOB_TAG_KEY, "Value.$": "$$.Execution.Name"})
    if extra_tags is None:
        return tags
    own = {tag["Key"] for tag in tags}
    return Lazy.uncached_any(
        _Rendered(lambda: [*tags, *(tag for tag in extra_tags() if tag.get("Key") not in own)])
    )
