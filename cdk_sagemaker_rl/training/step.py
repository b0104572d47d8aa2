"""One RL training job as a Task state that users put into their own state machines.

A ``createTrainingJob.sync`` Task written as Amazon States Language, so that its request is
exactly the SDK's (the stepfunctions-tasks construct renders a different request and grants
broader permissions). It brings its permissions with it: when a state machine binds it, its
role may create, follow and stop the jobs named ``<job_name_base>-*`` and pass the execution
role to SageMaker, nothing else. Like aws-cdk-lib's SageMaker task it is ``IGrantable``: grants to
the step go to the role the training job runs as.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import jsii
from aws_cdk import Aws, ITaggable, Lazy, Stack, TagManager, TagType
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from .._arns import named_after
from .._iam import acknowledge_wildcard, pass_role_to_sagemaker, sync_events_rule
from .._lazy import Later
from .._naming import check_sagemaker_name
from ..errors import invalid
from . import arguments
from .inputs import TrainingInput, channels, check_channel_groups, uris
from .request import TrainingJobParts, input_data_config, stopping_condition, training_request

#: The EventBridge rule Step Functions manages for ``createTrainingJob.sync``.
SYNC_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"


@jsii.implements(iam.IGrantable, ITaggable)
class RLTrainingStep(sfn.CustomState):
    """Run one training job and wait for it (``sagemaker:createTrainingJob.sync``).

    ``job_name`` is a JSONPath into the state input or context (the execution name by default);
    the names it yields must start with ``<job_name_base>-``, because that is what the state
    machine's role is allowed to create. The output keeps ``TrainingJobName``, ``TrainingJobArn``
    and ``ModelDataUrl`` under ``result_path``. Tags from ``Tags.of(...)`` reach the job.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        parts: TrainingJobParts,
        job_name_base: str | None = None,
        job_name: str = "$$.Execution.Name",
        inputs: Mapping[str, str | TrainingInput] | None = None,
        result_path: str = "$.Training",
    ) -> None:
        if not isinstance(job_name, str) or not job_name.startswith("$"):
            raise invalid(
                "job_name",
                job_name,
                "a JSONPath such as '$$.Execution.Name' or '$.jobName' (the state input field "
                "holding the job name)",
            )
        self.parts = parts
        # Every permission is scoped to '<base>-*': a base SageMaker refuses would grant nothing.
        base = job_name_base if job_name_base is not None else parts.job_name_base
        if base is None:
            raise invalid(
                "job_name_base",
                None,
                "the name base of the jobs this step starts (names must start with '<base>-'); "
                "training_job_parts() sets it",
            )
        self.job_name_base = check_sagemaker_name(base, "job_name_base")
        self.job_name_path = job_name
        self._inputs: dict[str, TrainingInput] = {}
        self.add_inputs(inputs or {})
        self._tags = TagManager(TagType.KEY_VALUE, "AWS::SageMaker::TrainingJob")
        request = training_request(parts, job_name_path=job_name)
        # Channels, the run time and tags may change after construction (fit(), Tags.of()).
        request["InputDataConfig"] = Lazy.any(
            Later(lambda: input_data_config(self.parts, self._inputs) or None),
            omit_empty_array=True,
        )
        request["StoppingCondition"] = Lazy.any(
            Later(lambda: stopping_condition(self.parts.config))
        )
        request["Tags"] = Lazy.any(Later(lambda: self.tag_list() or None), omit_empty_array=True)
        super().__init__(
            scope,
            construct_id,
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createTrainingJob.sync",
                "Parameters": request,
                "ResultSelector": {
                    "TrainingJobName.$": "$.TrainingJobName",
                    "TrainingJobArn.$": "$.TrainingJobArn",
                    "ModelDataUrl.$": "$.ModelArtifacts.S3ModelArtifacts",
                },
                "ResultPath": result_path,
            },
        )
        stack = Stack.of(self)
        self.training_job_arns = named_after(stack, "training-job", self.job_name_base)
        self._statements = [
            iam.PolicyStatement(
                sid="RunTrainingJobs",
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=[self.training_job_arns],
            ),
            pass_role_to_sagemaker("PassExecutionRole", parts.role.role_arn),
            sync_events_rule("SyncTrainingJobEvents", stack, SYNC_RULE),
        ]
        acknowledge_wildcard(
            stack,
            self.training_job_arns,
            "Each execution names its job <base>-<timestamp>; the ARN is fixed up to the base.",
        )

    # ------------------------------------------------------------------ grants and tags
    @property
    def grant_principal(self) -> iam.IPrincipal:
        """The role the training job runs as (grant it access to your data)."""
        return self.parts.role.grant_principal

    @property
    def tags(self) -> TagManager:
        return self._tags

    def tag_list(self) -> list[dict[str, str]]:
        """Explicit ``tags`` first; ``Tags.of(...)`` adds the keys they do not set."""
        explicit = list(self.parts.config.tags)
        keys = {tag["Key"] for tag in explicit}
        return explicit + [t for t in self.inherited_tags() if t["Key"] not in keys]

    def inherited_tags(self) -> list[dict[str, str]]:
        """The tags ``Tags.of(...)`` gives this step (complete once aspects have run)."""
        rendered: Any = self._tags.render_tags() or []
        return [
            arguments.check_tag(str(t["Key"]), str(t["Value"]), "Tags.of(...)") for t in rendered
        ]

    def add_inputs(self, inputs: Mapping[str, str | TrainingInput]) -> None:
        """Channels known only later (``RLEstimator.fit(inputs=...)``); the instance groups a
        ``TrainingInput`` names must be the job's."""
        added = channels(dict(inputs))
        check_channel_groups(added, self.parts.config.instance_groups)
        self._inputs.update(added)

    @property
    def inputs(self) -> dict[str, str]:
        """Channel name -> S3 URI."""
        return uris(self._inputs)

    @property
    def channels(self) -> dict[str, TrainingInput]:
        """Channel name -> its data and instance groups, as the request sends them."""
        return dict(self._inputs)

    def bind_to_graph(self, graph: sfn.StateGraph) -> None:
        """Hand this step's permissions to whatever state machine it becomes part of."""
        super().bind_to_graph(graph)
        for statement in self._statements:
            graph.register_policy_statement(statement)

    def fingerprint(self, revision: str | None = None) -> str:
        """A hash of everything that defines the training (request, channels, code, revision):
        any change means a new training job, no change means none."""
        resolved = Stack.of(self).resolve(
            {
                "request": self.request(),
                "inputs": input_data_config(self.parts, self._inputs),
                "source": self.parts.source.bundle.tar_sha256,
                "revision": revision,
            }
        )
        text = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def request(self) -> dict[str, Any]:
        """The CreateTrainingJob request with every late value as it is now (for fingerprints)."""
        return training_request(self.parts, job_name_path=self.job_name_path, inputs=self._inputs)
