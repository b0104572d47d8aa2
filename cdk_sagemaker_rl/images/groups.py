"""Which processor variant of an image a heterogeneous training job gets, and the checks behind it.

SageMaker runs one ``TrainingImage`` on every instance group of a job, so a job that mixes CPU
and GPU groups needs one image that runs on both. Whether an image does is a fact about how it
was built, which the catalogue records (``gpu_image_on_cpu_groups``) or a custom image declares
(``processors=``); a group the image cannot run on is refused at synth, naming the group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._tokens import is_token_string
from ..errors import invalid
from .toolkits import IMAGES_REFERENCE, Processor, processor_for


def check_instance_groups(groups: object) -> dict[str, str]:
    """``instance_groups`` as given to ``bind``: group name -> instance type, at least one."""
    if (
        not isinstance(groups, Mapping)
        or not groups
        or not all(isinstance(k, str) and k for k in groups)
        or not all(isinstance(v, str) for v in groups.values())
    ):
        raise invalid(
            "instance_groups",
            groups,
            "a non-empty mapping of instance group name to instance type, e.g. "
            "{'learner': 'ml.g5.xlarge', 'rollout': 'ml.c5.4xlarge'}",
            see=IMAGES_REFERENCE,
        )
    return dict(groups)


def group_argument(name: str) -> str:
    return f"instance_groups[{name!r}]"


def catalogue_processor(
    label: str,
    processors: tuple[Processor, ...],
    instance_type: str,
    groups: Mapping[str, str] | None,
    *,
    gpu_image_on_cpu_groups: bool,
) -> Processor:
    """The variant of a SageMaker-provided image for one instance type or for instance groups."""
    if groups is None:
        return processor_for(label, processors, instance_type)
    return processor_for_groups(
        label,
        processors,
        check_instance_groups(groups),
        gpu_image_on_cpu_groups=gpu_image_on_cpu_groups,
    )


def processor_for_groups(
    label: str,
    processors: tuple[Processor, ...],
    groups: Mapping[str, str],
    *,
    gpu_image_on_cpu_groups: bool,
) -> Processor:
    """The one variant of a SageMaker-provided image that all ``groups`` run.

    Every group's type is first checked on its own (Neuron, Arm, a variant that does not exist),
    the error naming the group. Groups that all need the same variant get it. CPU and GPU groups
    together get the GPU variant when ``gpu_image_on_cpu_groups``: the Deep Learning Containers
    ship CUDA builds of their framework that fall back to the CPU on an instance without a GPU,
    and that is how AWS runs them in heterogeneous jobs: the SageMaker Python SDK v2 resolves the
    image of a job with instance groups from its first GPU group (``EstimatorBase.
    _get_instance_type`` in 2.257.7), and AWS's heterogeneous-cluster guide runs
    ``ml.c5.18xlarge`` and ``ml.p3dn.24xlarge`` groups under one PyTorch or TensorFlow estimator
    (docs.aws.amazon.com/sagemaker/latest/dg/train-heterogeneous-cluster-configure-distributed.html;
    "All instance groups share the same Docker image": ...-configure.html).
    The SageMaker RL images are TensorFlow/PyTorch GPU builds of 2019-2021 that were only ever
    published and tested per processor, so mixing is refused for them, naming the CPU groups.
    """
    per_group = {
        name: processor_for(label, processors, instance_type, argument=group_argument(name))
        for name, instance_type in groups.items()
    }
    kinds = set(per_group.values())
    if len(kinds) == 1:
        return kinds.pop()
    if gpu_image_on_cpu_groups:
        return Processor.GPU
    cpu_group = next(name for name, p in per_group.items() if p is Processor.CPU)
    gpu_groups = sorted(name for name, p in per_group.items() if p is Processor.GPU)
    raise invalid(
        group_argument(cpu_group),
        groups[cpu_group],
        f"a GPU instance type like group(s) {', '.join(gpu_groups)}: SageMaker runs one image on "
        f"every group and {label} comes in separate CPU and GPU builds, whose GPU build is not "
        "meant for CPU instances; keep all groups on one processor kind, or train with a Deep "
        "Learning Container (e.g. toolkit ray 2.60.0 with pytorch), whose GPU image also runs on "
        "CPU groups",
        see=IMAGES_REFERENCE,
    )


def parse_processors(value: object) -> tuple[Processor, ...] | None:
    """A custom image's ``processors=`` declaration: None (unknown) or a non-empty sequence."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise invalid(
            "processors",
            value,
            "None (not declared, nothing is checked) or a non-empty tuple of 'cpu' and/or "
            "'gpu', e.g. ('cpu',) or ('cpu', 'gpu')",
            see=IMAGES_REFERENCE,
        )
    parsed = tuple(Processor.parse(p, "processors") for p in value)
    return tuple(p for p in Processor if p in parsed)


def check_declared(
    label: str,
    declared: tuple[Processor, ...] | None,
    instance_type: str,
    groups: Mapping[str, str] | None,
) -> Processor | None:
    """Check a custom image against the instances it is bound to, when the user declared what
    it runs on; returns the processor kind it serves (GPU when any group has a GPU), or None
    when nothing was declared or the instance type is only known at deploy time."""
    targets = {None: instance_type} if groups is None else dict(groups)
    if declared is None or any(is_token_string(t) for t in targets.values()):
        return None
    found: set[Processor] = set()
    for name, instance_type_here in targets.items():
        argument = "instance_type" if name is None else group_argument(name)
        processor = Processor.for_instance_type(instance_type_here, argument)
        if processor not in declared:
            kinds = " or ".join(p.value.upper() for p in declared)
            raise invalid(
                argument,
                instance_type_here,
                f"a {kinds} instance type: {label} is declared with processors="
                f"{tuple(p.value for p in declared)} (GPU instance families start with g or p); "
                "declare processors=('cpu', 'gpu') if the image runs on both",
                see=IMAGES_REFERENCE,
            )
        found.add(processor)
    return Processor.GPU if Processor.GPU in found else Processor.CPU
