"""CloudFormation that waits: synchronous custom resources, real wait conditions, async stacks.

What moto does and why it is not enough for deploy-time training:

- ``Custom::*`` resources invoke their Lambda on Create only, in a thread, and create the
  dependents before the answer arrives, so ``GetAtt`` on the custom resource is None for them;
  FAILED answers are ignored; Update and Delete are never sent.
- ``AWS::CloudFormation::WaitCondition(Handle)`` are ignored (``NULL_MODELS``): the handle's Ref is
  empty and nothing waits.
- CreateStack/UpdateStack/DeleteStack do all the work inside the HTTP call, in an order that only
  follows ``DependsOn`` (updates even remove old resources first and create new ones before
  modifying the ones they depend on), and a failure surfaces as a 500 instead of a rollback.

This plugin makes stack operations behave like CloudFormation's, as far as moto's model allows:

- every operation runs in a background thread; the stack is ``*_IN_PROGRESS`` meanwhile, so the
  CDK CLI's calls return at once and it polls, as against AWS (a wait condition may wait hours);
- resources are created, updated and deleted in dependency order (``DependsOn`` plus ``Ref``,
  ``Fn::GetAtt`` and ``Fn::Sub`` references), with resource events (``CREATE_IN_PROGRESS``,
  ``CREATE_FAILED`` with the reason, ...) in DescribeStackEvents, which the CLI prints;
- custom resources get Create, Update (when their properties change) and Delete, and the
  operation waits for the answer at a response URL on the emulator; a FAILED answer fails the
  resource with CloudFormation's message, and a replaced physical id gets its Delete at clean-up;
- the wait condition handle's Ref is a URL on the emulator that accepts the signal PUT; the wait
  condition waits (up to its Timeout) for ``Count`` SUCCESS signals, fails on a FAILURE signal,
  and its ``Data`` attribute is the JSON object of the signals' data by UniqueId;
- a failed create rolls back (deleting what was created, custom resources included) to
  ``ROLLBACK_COMPLETE``; a failed update rolls back to ``UPDATE_ROLLBACK_COMPLETE`` (custom
  resources get an Update with the old properties); ``DisableRollback`` leaves
  ``CREATE_FAILED``/``UPDATE_FAILED``; DeleteStack during an operation cancels it (waits end with
  "Resource creation cancelled") and then deletes.

Outputs and the resource list are only evaluated from what exists: moto evaluates both lazily and
would otherwise create missing resources inside a DescribeStacks call.

One module per part: :mod:`.api` (the calls that start operations), :mod:`.operation` (the
running operation's state and events), :mod:`.stack_operations` (create, update, delete and their
rollbacks), :mod:`.resource_map` (ordered resource changes, with :mod:`.ordering`),
:mod:`.custom_resources`, :mod:`.wait_conditions`, :mod:`.outputs`, :mod:`.ssm_parameters` and
:mod:`.errors`; resource types moto lacks: :mod:`.alarms`, :mod:`.model_package_groups`. This
package installs them and registers the local resource models with moto.
"""

from __future__ import annotations

from typing import Any

from . import api, outputs, resource_map, ssm_parameters
from .alarms import LocalAlarm
from .custom_resources import (
    CUSTOM_RESOURCE_RESPONSE_PATH,
    DEFAULT_CUSTOM_RESOURCE_TIMEOUT,
    LocalCustomResource,
    forget_pending,
    handle_custom_resource_response,
)
from .errors import ResourceFailedError
from .model_package_groups import LocalModelPackageGroup
from .operation import current_operation, forget_operations, stop_all
from .wait_conditions import (
    WAIT_CONDITION_PATH,
    LocalWaitCondition,
    LocalWaitConditionHandle,
    forget_handles,
    handle_wait_condition_signal,
)

__all__ = [
    "CUSTOM_RESOURCE_RESPONSE_PATH",
    "DEFAULT_CUSTOM_RESOURCE_TIMEOUT",
    "WAIT_CONDITION_PATH",
    "ResourceFailedError",
    "current_operation",
    "forget",
    "handle_custom_resource_response",
    "handle_wait_condition_signal",
    "install",
    "stop_all",
]


def forget() -> None:
    """Drop pending responses, wait condition handles and operations (emulator stop)."""
    forget_pending()
    forget_handles()
    forget_operations()


_installed = False


def install() -> None:
    """Patch moto's CloudFormation (once per process)."""
    global _installed
    if _installed:
        return
    from moto.cloudformation import parsing

    models: list[Any] = [
        LocalCustomResource,
        LocalWaitConditionHandle,
        LocalWaitCondition,
        LocalAlarm,
        LocalModelPackageGroup,
    ]
    for model in models:
        if model.cloudformation_type() in parsing.NULL_MODELS:
            parsing.NULL_MODELS.remove(model.cloudformation_type())
    # resource_class_from_type() answers this module global for every Custom:: type.
    setattr(parsing, "CustomModel", LocalCustomResource)  # noqa: B010
    original_map = parsing.get_model_map

    def get_model_map() -> dict[str, Any]:
        mapping = dict(original_map())
        mapping.update({model.cloudformation_type(): model for model in models})
        return mapping

    parsing.get_model_map = get_model_map  # type: ignore[assignment]
    resource_map.install()
    outputs.install()
    api.install()
    ssm_parameters.install()
    _installed = True
