"""The states of TrainAndServe: train, create model and config, create or update the endpoint.

SageMaker's CreateEndpoint and UpdateEndpoint have no ``.sync`` integration, and an endpoint may be
in any state when a run starts (missing, changing, ``Failed``, serving an older config), so the
endpoint half is an explicit loop over ``DescribeEndpoint``. Every Task is written as Amazon States
Language, so each request is exactly what we mean; :mod:`.workflow` grants what they need.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from .._tokens import PARTITION
from .gate_states import WorkflowGate, gate_states, tag_champion

#: Seconds between two DescribeEndpoint calls while an endpoint is changing: an endpoint takes
#: minutes on AWS, where 10 s costs a few cents of state transitions a year; locally it takes
#: seconds, and a longer wait would only be idle time after the model already serves.
POLL_SECONDS = 10
#: Endpoint states that end by themselves: wait for them before acting on the endpoint.
TRANSITIONAL_STATUSES = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
#: What SageMaker's DescribeEndpoint error says when the endpoint does not exist. Matching the
#: message (not an error name) keeps the create-or-update decision independent of how Step
#: Functions names SageMaker's unmodelled ValidationException.
ENDPOINT_NOT_FOUND = "*Could not find endpoint*"


def _task(scope: Construct, state_id: str, resource: str, **fields: Any) -> sfn.CustomState:
    """A Task state written as Amazon States Language, so its request is exactly what we mean.

    The stepfunctions-tasks constructs would add their own, broader IAM statements; here every
    permission is granted by :class:`~.workflow.ServingWorkflow` next to the resource it names.
    """
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": f"arn:{PARTITION}:states:::{resource}",
        **fields,
    }
    return sfn.CustomState(scope, state_id, state_json=state)


def _status_in(path: str, statuses: tuple[str, ...]) -> sfn.Condition:
    return sfn.Condition.or_(*(sfn.Condition.string_equals(path, s) for s in statuses))


def train_and_serve(
    scope: Construct,
    *,
    training_machine_arn: str,
    endpoint_name: str,
    model_request: dict[str, Any],
    endpoint_config_request: dict[str, Any],
    endpoint_tags: Any,
    update_request: dict[str, Any],
    autoscaling_requests: dict[str, Any] | None,
    gate: WorkflowGate | None = None,
    endpoint_arn: str | None = None,
) -> sfn.IChainable:
    """The whole definition, its states created in ``scope``; returns the first state.

    ``model_request`` / ``endpoint_config_request`` are the CreateModel / CreateEndpointConfig
    parameters; the names of both come from ``$.Serving`` (the execution's name).
    ``update_request`` is what UpdateEndpoint adds (``DeploymentConfig``, retained variant
    properties); ``autoscaling_requests`` registers the variant once it serves.
    """
    train = _task(
        scope,
        "Train",
        "states:startExecution.sync:2",
        Parameters={
            "StateMachineArn": training_machine_arn,
            # The job is named after the execution: the name the deploy reported.
            "Name.$": "$$.Execution.Name",
            "Input": {"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"},
        },
        ResultSelector={
            "TrainingJobName.$": "$.Output.Training.TrainingJobName",
            "ModelDataUrl.$": "$.Output.Training.ModelDataUrl",
            "ExecutionArn.$": "$.ExecutionArn",
        },
        ResultPath="$.Training",
    )
    names = sfn.Pass(
        scope,
        "NameServingResources",
        comment="Model and endpoint config are named after the execution (and its job)",
        parameters={
            "ModelName": sfn.JsonPath.string_at("$$.Execution.Name"),
            "EndpointConfigName": sfn.JsonPath.string_at("$$.Execution.Name"),
        },
        result_path="$.Serving",
    )
    create_model = _task(
        scope,
        "CreateModel",
        "sagemaker:createModel",
        Parameters=model_request,
        ResultPath=sfn.JsonPath.DISCARD,
    )
    create_config = _task(
        scope,
        "CreateEndpointConfig",
        "sagemaker:createEndpointConfig",
        Parameters=endpoint_config_request,
        ResultPath=sfn.JsonPath.DISCARD,
    )
    find_endpoint = _task(
        scope,
        "FindEndpoint",
        "aws-sdk:sagemaker:describeEndpoint",
        Parameters={"EndpointName": endpoint_name},
        ResultSelector={"Status.$": "$.EndpointStatus"},
        ResultPath="$.Existing",
    )
    wait_existing = sfn.Wait(
        scope,
        "WaitForExistingEndpoint",
        comment="The endpoint is changing (or being deleted); act on it once it settled",
        time=sfn.WaitTime.duration(Duration.seconds(POLL_SECONDS)),
    )
    delete_failed = _task(
        scope,
        "DeleteFailedEndpoint",
        "aws-sdk:sagemaker:deleteEndpoint",
        Comment="A Failed endpoint cannot be updated: delete it, then create it again",
        Parameters={"EndpointName": endpoint_name},
        ResultPath=sfn.JsonPath.DISCARD,
    )
    create_endpoint = _task(
        scope,
        "CreateEndpoint",
        "sagemaker:createEndpoint",
        Parameters={
            "EndpointName": endpoint_name,
            "EndpointConfigName.$": "$.Serving.EndpointConfigName",
            "Tags": endpoint_tags,
        },
        ResultPath=sfn.JsonPath.DISCARD,
    )
    update_endpoint = _task(
        scope,
        "UpdateEndpoint",
        "sagemaker:updateEndpoint",
        Parameters={
            "EndpointName": endpoint_name,
            "EndpointConfigName.$": "$.Serving.EndpointConfigName",
            **update_request,
        },
        ResultPath=sfn.JsonPath.DISCARD,
    )
    wait_endpoint = sfn.Wait(
        scope,
        "WaitForEndpoint",
        comment="Create/UpdateEndpoint have no .sync integration: poll DescribeEndpoint",
        time=sfn.WaitTime.duration(Duration.seconds(POLL_SECONDS)),
    )
    check_endpoint = _task(
        scope,
        "CheckEndpoint",
        "aws-sdk:sagemaker:describeEndpoint",
        Parameters={"EndpointName": endpoint_name},
        ResultSelector={
            "Status.$": "$.EndpointStatus",
            "EndpointConfigName.$": "$.EndpointConfigName",
            # The whole answer as text: it carries FailureReason when SageMaker gave one.
            "Described.$": "States.JsonToString($)",
        },
        ResultPath="$.Endpoint",
    )
    check_endpoint.add_retry(
        errors=["States.TaskFailed"],
        interval=Duration.seconds(10),
        max_attempts=5,
        backoff_rate=2,
    )
    served: sfn.IChainable = sfn.Succeed(
        scope, "Served", comment="The endpoint serves the new model"
    )
    scaling_states: list[sfn.CustomState] = []
    if gate is not None and endpoint_arn is not None:
        tag = tag_champion(scope, endpoint_arn)
        scaling_states.append(tag)
    if autoscaling_requests is not None:
        scaling_states += _autoscaling_states(scope, autoscaling_requests)
    if scaling_states:
        chain = sfn.Chain.start(scaling_states[0])
        for state in scaling_states[1:]:
            chain = chain.next(state)
        served = chain.next(served)
    training_failed = sfn.Fail(
        scope, "TrainingFailed", error_path="$.Error.Error", cause_path="$.Error.Cause"
    )
    serving_failed = sfn.Fail(
        scope, "ServingFailed", error_path="$.Error.Error", cause_path="$.Error.Cause"
    )
    endpoint_failed = sfn.Fail(
        scope, "EndpointFailed", error="EndpointFailed", cause_path="$.Endpoint.Described"
    )
    rolled_back = sfn.Fail(
        scope,
        "EndpointUpdateRolledBack",
        comment="SageMaker rolled the update back: the endpoint still serves the old model",
        error="EndpointUpdateRolledBack",
        cause_path="$.Endpoint.Described",
    )

    for state in (
        create_model,
        create_config,
        delete_failed,
        create_endpoint,
        update_endpoint,
        check_endpoint,
        *scaling_states,
    ):
        state.add_catch(serving_failed, errors=["States.ALL"], result_path="$.Error")
    train.add_catch(training_failed, errors=["States.ALL"], result_path="$.Error")
    find_endpoint.add_catch(
        sfn.Choice(scope, "EndpointMissing?")
        .when(sfn.Condition.string_matches("$.Error.Cause", ENDPOINT_NOT_FOUND), create_endpoint)
        .otherwise(serving_failed),
        errors=["States.ALL"],
        result_path="$.Error",
    )

    wait_existing.next(find_endpoint)
    delete_failed.next(wait_existing)
    create_endpoint.next(wait_endpoint)
    update_endpoint.next(wait_endpoint)
    wait_endpoint.next(check_endpoint)
    find_endpoint.next(
        sfn.Choice(scope, "ExistingEndpoint?")
        .when(_status_in("$.Existing.Status", TRANSITIONAL_STATUSES), wait_existing)
        .when(sfn.Condition.string_equals("$.Existing.Status", "Failed"), delete_failed)
        # InService, OutOfService, UpdateRollbackFailed: UpdateEndpoint is what SageMaker
        # allows on each of them.
        .otherwise(update_endpoint)
    )
    check_endpoint.next(
        sfn.Choice(scope, "EndpointReady?")
        .when(
            sfn.Condition.and_(
                sfn.Condition.string_equals("$.Endpoint.Status", "InService"),
                sfn.Condition.string_equals_json_path(
                    "$.Endpoint.EndpointConfigName", "$.Serving.EndpointConfigName"
                ),
            ),
            served,
        )
        # InService with another configuration: the update failed and was rolled back.
        .when(sfn.Condition.string_equals("$.Endpoint.Status", "InService"), rolled_back)
        .when(_status_in("$.Endpoint.Status", TRANSITIONAL_STATUSES), wait_endpoint)
        .otherwise(endpoint_failed)
    )
    names.next(create_model).next(create_config).next(find_endpoint)
    if gate is None:
        return train.next(names)
    not_judged = sfn.Fail(
        scope, "GateNotEvaluated", error_path="$.Error.Error", cause_path="$.Error.Cause"
    )
    return train.next(gate_states(scope, gate, names, not_judged))


def _autoscaling_states(scope: Construct, requests: dict[str, Any]) -> list[sfn.CustomState]:
    """Register the variant with Application Auto Scaling (idempotent: each run sends it again)."""
    service = "aws-sdk:applicationautoscaling"
    states = [
        _task(
            scope,
            "RegisterScalableTarget",
            f"{service}:registerScalableTarget",
            Parameters=requests["RegisterScalableTarget"],
            ResultPath=sfn.JsonPath.DISCARD,
        ),
        _task(
            scope,
            "PutScalingPolicy",
            f"{service}:putScalingPolicy",
            Parameters=requests["PutScalingPolicy"],
            ResultPath=sfn.JsonPath.DISCARD,
        ),
    ]
    for index, action in enumerate(requests["PutScheduledAction"]):
        states.append(
            _task(
                scope,
                f"PutScheduledAction{index + 1}",
                f"{service}:putScheduledAction",
                Parameters=action,
                ResultPath=sfn.JsonPath.DISCARD,
            )
        )
    return states
