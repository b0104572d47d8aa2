"""Every Task of every synthesized state machine, and every SageMaker resource CloudFormation
creates, sends a request the AWS API accepts.

cfn-lint only sees a state machine definition as a string; a misspelt SageMaker parameter, a
string where the API wants an integer or a 64-character job name would only fail hours into a
deploy. Here the definitions of the synthesized reference app are resolved as CloudFormation
would resolve them (intrinsics -> realistic ARNs, bucket names, image URIs for a concrete
region), then *executed symbolically*: a small interpreter walks every path (training succeeds,
training fails; with and without a waiting deploy), builds each Task's request exactly as Step
Functions does (``.$`` keys, ``$``/``$$`` paths, ``States.Format``), maps the Task's
``Resource`` to the botocore operation it calls and validates the request with botocore's own
``ParamValidator`` plus the constraints botocore's validator skips (enums, patterns, maximum
lengths). Payloads sent to our own Lambda functions are checked against the handler contract
of docs/architecture.md and parsed by the real handler code.

The SageMaker resources of every template (the models, endpoint configs and endpoints, the model
package group of the registry) are checked the same way, as the Create* requests CloudFormation
makes from their resolved properties, plus the AddTags request of a tag update.

The resolver defined here (``TemplateResolver``) is reused by tests/test_iam_lint.py.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import botocore.session
import pytest
from botocore.model import OperationModel, Shape
from botocore.validate import ParamValidator

from tests.conftest import ROOT, load_template

#: Every stack of the reference app: dev and prod train and serve, staging serves dev's latest
#: approved version (no state machine; its model comes from Custom::RLApprovedModelVersion).
STACKS = ("RLCartPole-dev", "RLCartPole-prod", "RLCartPole-staging")
ACCOUNT = "111122223333"
#: When the imagined deploy starts the training (the job name's timestamp).
DEPLOY_TIME = datetime(2026, 3, 14, 15, 9, 26, 535000, tzinfo=UTC)
HANDLER_ROOT = ROOT / "lambda"

_BOTOCORE = botocore.session.get_session()


# ============================================================================================
# Intrinsic functions -> the values CloudFormation would produce in a real account
# ============================================================================================


@dataclass(frozen=True)
class Deployment:
    """Where a template is imagined to be deployed."""

    region: str
    account: str = ACCOUNT
    stack_name: str = "RLCartPole-dev"

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"

    @property
    def url_suffix(self) -> str:
        return "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return ":".join(
            [
                "arn",
                self.partition,
                service,
                self.region if region else "",
                self.account if account else "",
                resource,
            ]
        )


def _suffix(*parts: str, lower: bool = False) -> str:
    """The 12-13 character random-looking suffix CloudFormation appends to generated names."""
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest().upper()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    text = "".join(alphabet[int(digest[i : i + 2], 16) % 36] for i in range(0, 26, 2))
    return text.lower() if lower else text


def generated_name(stack: str, logical_id: str, max_length: int, *, lower: bool = False) -> str:
    """A CloudFormation-generated physical name: ``<stack>-<logical id>-<SUFFIX>``, truncated."""
    suffix = _suffix(stack, logical_id, lower=lower)
    prefix = f"{stack}-{logical_id}"
    prefix = prefix[: max_length - len(suffix) - 1]
    name = f"{prefix}-{suffix}"
    return name.lower() if lower else name


class UnresolvedIntrinsic(AssertionError):
    """The template uses an intrinsic (or a Ref/GetAtt target) this resolver does not know."""


class TemplateResolver:
    """Resolves CloudFormation intrinsics to realistic values for one deployment."""

    #: (resource type, attribute) -> how to compute it; "Ref" is the Ref value.
    def __init__(self, template: Mapping[str, Any], deployment: Deployment) -> None:
        self.template = template
        self.deployment = deployment
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self._attribute_cache: dict[tuple[str, str], str] = {}
        self._resolving: set[tuple[str, str]] = set()

    # ---------------------------------------------------------------------- physical names
    def _name(self, logical_id: str, max_length: int, *, lower: bool = False) -> str:
        return generated_name(self.deployment.stack_name, logical_id, max_length, lower=lower)

    def _type(self, logical_id: str) -> str:
        if logical_id not in self.resources:
            raise UnresolvedIntrinsic(f"Ref/GetAtt to unknown resource {logical_id!r}")
        return str(self.resources[logical_id]["Type"])

    def attribute(self, logical_id: str, attribute: str) -> str:
        """The value of ``Ref`` (attribute ``"Ref"``) or ``Fn::GetAtt`` of a resource."""
        key = (logical_id, attribute)
        if key not in self._attribute_cache:
            if key in self._resolving:
                raise UnresolvedIntrinsic(f"circular reference through {key}")
            self._resolving.add(key)
            try:
                self._attribute_cache[key] = self._compute(logical_id, attribute)
            finally:
                self._resolving.discard(key)
        return self._attribute_cache[key]

    def _compute(self, logical_id: str, attribute: str) -> str:
        d = self.deployment
        kind = self._type(logical_id)
        props = self.resources[logical_id].get("Properties", {})
        if kind == "AWS::S3::Bucket":
            name = self._name(logical_id, 63, lower=True)
            return {
                "Ref": name,
                "Arn": d.arn("s3", name, region=False, account=False),
                "DomainName": f"{name}.s3.{d.url_suffix}",
                "RegionalDomainName": f"{name}.s3.{d.region}.{d.url_suffix}",
            }[attribute]
        if kind == "AWS::IAM::Role":
            name = self._name(logical_id, 64)
            return {
                "Ref": name,
                "Arn": d.arn("iam", f"role/{name}", region=False),
                "RoleId": "AROA" + _suffix(logical_id)[:17],
            }[attribute]
        if kind == "AWS::IAM::Policy":
            return {"Ref": self._name(logical_id, 128)}[attribute]
        if kind == "AWS::Logs::LogGroup":
            name = str(self.resolve(props.get("LogGroupName") or self._name(logical_id, 512)))
            return {"Ref": name, "Arn": d.arn("logs", f"log-group:{name}:*")}[attribute]
        if kind == "AWS::Lambda::Function":
            name = str(self.resolve(props.get("FunctionName") or self._name(logical_id, 64)))
            return {"Ref": name, "Arn": d.arn("lambda", f"function:{name}")}[attribute]
        if kind == "AWS::StepFunctions::StateMachine":
            name = str(self.resolve(props.get("StateMachineName") or self._name(logical_id, 80)))
            arn = d.arn("states", f"stateMachine:{name}")
            return {"Ref": arn, "Arn": arn, "Name": name}[attribute]
        if kind == "AWS::CloudFormation::WaitConditionHandle":
            stack_id = d.arn("cloudformation", f"stack/{d.stack_name}/{_uuid(d.stack_name)}")
            return (
                (
                    f"https://cloudformation-waitcondition-{d.region}.s3.{d.region}.{d.url_suffix}/"
                    f"{quote(stack_id, safe='')}/{quote(logical_id)}"
                    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260314T150926Z"
                    "&X-Amz-SignedHeaders=host&X-Amz-Expires=86399"
                    f"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260314%2F{d.region}%2Fs3%2Faws4_request"
                    "&X-Amz-Signature=" + hashlib.sha256(logical_id.encode()).hexdigest()
                )
                if attribute == "Ref"
                else _unknown_attribute(kind, attribute)
            )
        if kind == "AWS::SNS::Topic":
            name = str(self.resolve(props.get("TopicName") or self._name(logical_id, 256)))
            arn = d.arn("sns", name)
            return {"Ref": arn, "TopicArn": arn, "TopicName": name}[attribute]
        if kind == "AWS::CloudWatch::Alarm":
            name = str(self.resolve(props.get("AlarmName") or self._name(logical_id, 255)))
            return {"Ref": name, "Arn": d.arn("cloudwatch", f"alarm:{name}")}[attribute]
        if kind == "AWS::KMS::Key":
            key_id = str(_uuid(logical_id))
            return {"Ref": key_id, "Arn": d.arn("kms", f"key/{key_id}")}[attribute]
        if kind == "Custom::RLTrainingRun":
            return self._training_run_attribute(logical_id, attribute)
        if kind == "Custom::RLApprovedModelVersion":
            return self._approved_version_attribute(logical_id, attribute)
        if kind in SAGEMAKER_NAMED:
            resource_type, name_attribute = SAGEMAKER_NAMED[kind]
            # The name the template gives (a fixed endpoint name, the group's name), else one
            # CloudFormation generates.
            given = props.get(name_attribute)
            name = (
                str(self.resolve(given))
                if given is not None
                else self._name(logical_id, 63).replace(f"{d.stack_name}-", "", 1)
            )
            arn = d.arn("sagemaker", f"{resource_type}/{name.lower()}")
            values = {"Ref": arn, name_attribute: name}
            if kind == "AWS::SageMaker::ModelPackageGroup":
                values["ModelPackageGroupArn"] = arn
            return values[attribute] if attribute in values else _unknown_attribute(kind, attribute)
        raise UnresolvedIntrinsic(f"no realistic value for {kind} {logical_id}.{attribute}")

    def _training_run_attribute(self, logical_id: str, attribute: str) -> str:
        """Custom::RLTrainingRun's data, as docs/architecture.md specifies it."""
        props = self.resolve(self.resources[logical_id]["Properties"])
        name = training_job_name(props["JobNameBase"], DEPLOY_TIME)
        if attribute in ("Ref", "TrainingJobName"):
            return name
        if attribute == "ModelDataUrl":
            return f"{props['OutputPath'].rstrip('/')}/{name}/output/model.tar.gz"
        if attribute == "ExecutionArn":
            machine = props["StateMachineArn"].split(":")
            return ":".join([*machine[:5], "execution", machine[6], name])
        return _unknown_attribute("Custom::RLTrainingRun", attribute)

    def _approved_version_attribute(self, logical_id: str, attribute: str) -> str:
        """Custom::RLApprovedModelVersion's data (lambda/custom_resources/approved_version.py): the
        version the source environment's gate registered, its image and its model artifact."""
        d = self.deployment
        props = self.resolve(self.resources[logical_id]["Properties"])
        group = str(props["ModelPackageGroup"])
        version = str(props.get("Version", "1"))
        name = group.rsplit("/", 1)[-1]
        bucket = f"{name}-artifacts-{_suffix(name, lower=True)}"
        job = training_job_name(name, DEPLOY_TIME)
        values = {
            "ModelPackageArn": (
                group.replace(":model-package-group/", ":model-package/")
                if group.startswith("arn:")
                else d.arn("sagemaker", f"model-package/{name.lower()}")
            )
            + f"/{version}",
            "ModelPackageVersion": version,
            # What the source's deploy() serves, and so registers: a Deep Learning Container.
            "Image": f"{DLC_ACCOUNTS[d.partition]}.dkr.ecr.{d.region}.{d.url_suffix}/"
            "pytorch-inference:2.6-cpu-py312",
            "ModelDataUrl": f"s3://{bucket}/training/{job}/output/model.tar.gz",
            "Description": f"Trained by {job}",
        }
        values["Ref"] = values["ModelPackageArn"]
        if attribute not in values:
            return _unknown_attribute("Custom::RLApprovedModelVersion", attribute)
        return values[attribute]

    # ---------------------------------------------------------------------- intrinsics
    def pseudo(self, name: str) -> str:
        d = self.deployment
        values = {
            "AWS::Partition": d.partition,
            "AWS::Region": d.region,
            "AWS::AccountId": d.account,
            "AWS::URLSuffix": d.url_suffix,
            "AWS::StackName": d.stack_name,
            "AWS::StackId": d.arn("cloudformation", f"stack/{d.stack_name}/{_uuid(d.stack_name)}"),
        }
        if name not in values:
            raise UnresolvedIntrinsic(f"unknown pseudo parameter {name}")
        return values[name]

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            if "Default" not in parameters[name]:
                raise UnresolvedIntrinsic(f"parameter {name} has no default")
            if str(parameters[name].get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
                return self.ssm_value(str(parameters[name]["Default"]))
            return parameters[name]["Default"]
        return self.attribute(name, "Ref")

    def ssm_value(self, parameter_name: str) -> str:
        """What an SSM parameter the template reads at deploy time holds (by its name)."""
        if parameter_name.endswith("-key-arn"):  # the reference app's published key ARNs
            return self.deployment.arn("kms", f"key/{_uuid(parameter_name)}")
        raise UnresolvedIntrinsic(f"no realistic value for SSM parameter {parameter_name}")

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function replaced by its realistic result."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attribute(logical_id, attribute)
            if key == "Fn::Join":
                separator, parts = arg
                return str(separator).join(str(self.resolve(part)) for part in self.resolve(parts))
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::FindInMap":
                mapping, top, second = (self.resolve(part) for part in arg[:3])
                try:
                    return self.template["Mappings"][mapping][top][second]
                except KeyError as err:
                    raise UnresolvedIntrinsic(f"Fn::FindInMap {mapping}/{top}/{second}") from err
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, source = arg
                return str(self.resolve(source)).split(separator)
            if key == "Fn::GetAZs":
                return [f"{self.deployment.region}{zone}" for zone in "abc"]
            if key == "Fn::Base64":
                raise UnresolvedIntrinsic("Fn::Base64 is not expected in these templates")
            if key.startswith("Fn::") or key == "Condition":
                raise UnresolvedIntrinsic(f"unsupported intrinsic {key}")
        return {key: self.resolve(item) for key, item in value.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        resolved_variables = {name: self.resolve(v) for name, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in resolved_variables:
                return str(resolved_variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return self.attribute(logical_id, attribute)
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))

    def logical_id_of(self, kind: str, attribute: str, value: str) -> str | None:
        """The resource of type ``kind`` whose ``attribute`` resolves to ``value``, if any."""
        for logical_id, resource in self.resources.items():
            if resource["Type"] == kind and self.attribute(logical_id, attribute) == value:
                return str(logical_id)
        return None


#: SageMaker resource types whose Ref is the ARN, with their ARN resource type and the property
#: (and, but for the group, GetAtt attribute) that holds the name.
SAGEMAKER_NAMED = {
    "AWS::SageMaker::Model": ("model", "ModelName"),
    "AWS::SageMaker::EndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "AWS::SageMaker::Endpoint": ("endpoint", "EndpointName"),
    "AWS::SageMaker::ModelPackageGroup": ("model-package-group", "ModelPackageGroupName"),
}
#: The Deep Learning Containers registry account per partition (of the regions tested here).
DLC_ACCOUNTS = {"aws": "763104351884", "aws-cn": "727897471807", "aws-us-gov": "442386744353"}


def _unknown_attribute(kind: str, attribute: str) -> str:
    raise UnresolvedIntrinsic(f"{kind} has no attribute {attribute} known to this resolver")


def _uuid(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def training_job_name(base: str, now: datetime) -> str:
    """The job (and execution) name, docs/architecture.md: ``<base>-<YYYY-MM-DD-HH-MM-SS-mmm>``."""
    return f"{base}-{now:%Y-%m-%d-%H-%M-%S}-{now.microsecond // 1000:03d}"


def state_machine_definition(resolver: TemplateResolver, logical_id: str) -> dict[str, Any]:
    """The definition as Step Functions receives it (string or object form, substitutions)."""
    props = resolver.resources[logical_id]["Properties"]
    if "DefinitionString" in props:
        text = resolver.resolve(props["DefinitionString"])
    elif "Definition" in props:
        text = json.dumps(resolver.resolve(props["Definition"]))
    else:
        raise AssertionError(f"{logical_id}: definition from S3 is not supported by this test")
    for key, value in resolver.resolve(props.get("DefinitionSubstitutions", {})).items():
        text = text.replace("${" + key + "}", str(value))
    assert isinstance(text, str)
    return dict(json.loads(text))


# ============================================================================================
# Step Functions semantics: paths, payload templates, intrinsic functions
# ============================================================================================


class StatesRuntimeError(AssertionError):
    """What Step Functions would fail the execution with (States.Runtime)."""


_MISSING = object()


def read_path(path: str, document: Any) -> Any:
    """A reference path (``$``, ``$.a.b``, ``$['a'].b``) evaluated as Step Functions does."""
    if not path.startswith("$"):
        raise StatesRuntimeError(f"{path!r} is not a path")
    current = document
    for raw in re.findall(r"\.([^.\[]+)|\['([^']+)'\]", path[1:]):
        key = raw[0] or raw[1]
        if isinstance(current, dict) and key in current:
            current = current[key]
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            raise StatesRuntimeError(f"the path {path!r} does not exist in the input")
    rebuilt = "".join(
        f".{a}" if a else f"['{b}']" for a, b in re.findall(r"\.([^.\[]+)|\['([^']+)'\]", path[1:])
    )
    if "$" + rebuilt != path:
        raise StatesRuntimeError(f"unsupported path syntax {path!r}")
    return current


def write_path(path: str | None, document: Any, value: Any) -> Any:
    """ResultPath semantics: ``None`` discards, ``$`` replaces, ``$.a.b`` sets (making objects)."""
    if path is None:
        return document
    if path == "$":
        return value
    keys = re.findall(r"\.([^.\[]+)", path[1:])
    if "$" + "".join(f".{key}" for key in keys) != path:
        raise StatesRuntimeError(f"unsupported ResultPath {path!r}")
    result = copy.deepcopy(document) if isinstance(document, dict) else {}
    target = result
    for key in keys[:-1]:
        target = target.setdefault(key, {})
        if not isinstance(target, dict):
            raise StatesRuntimeError(f"ResultPath {path!r} runs through a non-object")
    target[keys[-1]] = value
    return result


def _split_arguments(text: str) -> list[str]:
    """Top-level comma-separated arguments of an intrinsic function call."""
    arguments, depth, quoted, start, index = [], 0, False, 0, 0
    while index < len(text):
        char = text[index]
        if quoted:
            if char == "\\":
                index += 1
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            arguments.append(text[start:index].strip())
            start = index + 1
        index += 1
    if text.strip():
        arguments.append(text[start:].strip())
    return arguments


def _literal(text: str) -> str:
    """A single-quoted intrinsic string literal; ``\\'``, ``\\{``, ``\\}``, ``\\\\`` are escapes."""
    body = text[1:-1]
    out, index = [], 0
    while index < len(body):
        if body[index] == "\\" and index + 1 < len(body):
            out.append(body[index + 1])
            index += 2
        else:
            out.append(body[index])
            index += 1
    return "".join(out)


def evaluate(expression: str, state_input: Any, context: Any) -> Any:
    """The value of a ``.$`` field: a path, a context path or an intrinsic function."""
    expression = expression.strip()
    if expression.startswith("$$"):
        return read_path(expression[1:], context)
    if expression.startswith("$"):
        return read_path(expression, state_input)
    match = re.fullmatch(r"(States\.[A-Za-z]+)\((.*)\)", expression, re.DOTALL)
    if not match:
        raise StatesRuntimeError(f"{expression!r} is neither a path nor an intrinsic function")
    function, raw_arguments = match.groups()
    arguments: list[Any] = []
    for raw in _split_arguments(raw_arguments):
        if raw.startswith("'"):
            arguments.append(_literal(raw))
        elif raw.startswith(("$", "States.")):
            arguments.append(evaluate(raw, state_input, context))
        else:
            arguments.append(json.loads(raw))
    if function == "States.Format":
        template, *values = arguments
        pieces = re.split(r"(?<!\\)\{\}", template)
        if len(pieces) - 1 != len(values):
            raise StatesRuntimeError(
                f"{expression}: {len(values)} values for {len(pieces) - 1} {{}}"
            )
        rendered = pieces[0]
        for value, piece in zip(values, pieces[1:], strict=True):
            if isinstance(value, dict | list):
                raise StatesRuntimeError(f"{expression}: States.Format takes no objects/arrays")
            text = json.dumps(value) if isinstance(value, bool) or value is None else str(value)
            rendered += text + piece
        return rendered
    if function == "States.JsonToString":
        (value,) = arguments
        return json.dumps(value, separators=(",", ":"))
    if function == "States.StringToJson":
        (value,) = arguments
        return json.loads(value)
    if function == "States.Array":
        return arguments
    raise StatesRuntimeError(f"intrinsic {function} is not supported by this test's interpreter")


def render_payload(template: Any, state_input: Any, context: Any) -> Any:
    """A payload template (Parameters, ResultSelector) rendered against the input."""
    if isinstance(template, dict):
        rendered: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    raise StatesRuntimeError(f"{key} must hold a path or intrinsic, got {value!r}")
                rendered[key[:-2]] = evaluate(value, state_input, context)
            else:
                rendered[key] = render_payload(value, state_input, context)
        return rendered
    if isinstance(template, list):
        return [render_payload(item, state_input, context) for item in template]
    return template


# ============================================================================================
# Task resources -> botocore operations
# ============================================================================================

#: Optimized integrations (``arn:<p>:states:::<service>:<action>``) this library may use, and
#: the botocore service/operation each one calls. An unknown integration fails the test.
OPTIMIZED = {
    ("sagemaker", "createTrainingJob"): ("sagemaker", "CreateTrainingJob"),
    ("sagemaker", "createModel"): ("sagemaker", "CreateModel"),
    ("sagemaker", "createEndpointConfig"): ("sagemaker", "CreateEndpointConfig"),
    ("sagemaker", "createEndpoint"): ("sagemaker", "CreateEndpoint"),
    ("sagemaker", "updateEndpoint"): ("sagemaker", "UpdateEndpoint"),
    ("sagemaker", "createTransformJob"): ("sagemaker", "CreateTransformJob"),
    ("sagemaker", "createProcessingJob"): ("sagemaker", "CreateProcessingJob"),
    ("sagemaker", "createHyperParameterTuningJob"): ("sagemaker", "CreateHyperParameterTuningJob"),
    ("lambda", "invoke"): ("lambda", "Invoke"),
    ("states", "startExecution"): ("stepfunctions", "StartExecution"),
    ("sns", "publish"): ("sns", "Publish"),
    ("sqs", "sendMessage"): ("sqs", "SendMessage"),
    ("events", "putEvents"): ("events", "PutEvents"),
}
#: Step Functions' aws-sdk service names that differ from botocore's.
SDK_SERVICE_NAMES = {
    "sfn": "stepfunctions",
    "cloudwatchlogs": "logs",
    "sagemakerruntime": "sagemaker-runtime",
    "applicationautoscaling": "application-autoscaling",
}


@dataclass(frozen=True)
class Integration:
    service: str
    operation: str
    #: "optimized", "aws-sdk" or "lambda-arn" (a bare function ARN: a Lambda Invoke).
    kind: str
    #: "", ".sync", ".sync:2" or ".waitForTaskToken".
    pattern: str = ""


def integration_of(resource: str) -> Integration:
    parts = resource.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == "lambda" and parts[5] == "function":
        return Integration("lambda", "Invoke", "lambda-arn")
    match = re.fullmatch(
        r"arn:aws[a-z-]*:states:::(.+?)(\.sync(?::2)?|\.waitForTaskToken)?", resource
    )
    if not match:
        raise AssertionError(f"Task Resource {resource!r} is no integration this test knows")
    target, pattern = match.group(1), match.group(2) or ""
    if target.startswith("aws-sdk:"):
        _, service, action = target.split(":")
        return Integration(
            SDK_SERVICE_NAMES.get(service, service),
            action[0].upper() + action[1:],
            "aws-sdk",
            pattern,
        )
    service, _, action = target.partition(":")
    if (service, action) not in OPTIMIZED:
        raise AssertionError(f"optimized integration {service}:{action} is unknown to this test")
    return Integration(*OPTIMIZED[(service, action)], "optimized", pattern)


def operation_model(integration: Integration) -> OperationModel:
    service = _BOTOCORE.get_service_model(integration.service)
    return service.operation_model(integration.operation)


def _convert(value: Any, shape: Shape | None, exact_names: bool) -> Any:
    """Parameters as Step Functions hands them to the API.

    SageMaker optimized integrations use the API's PascalCase member names as they are; other
    integrations (aws-sdk) take PascalCase names that Step Functions maps onto the API's
    member names by their first letter. JSON objects given for blob members are serialised.
    Unknown names are kept as they are, so that the validator reports them.
    """
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        converted: dict[str, Any] = {}
        members = shape.members
        for key, item in value.items():
            name = key
            if not exact_names and key not in members:
                lowered = key[:1].lower() + key[1:]
                name = lowered if lowered in members else key
            converted[name] = _convert(item, members.get(name), exact_names)
        return converted
    if shape.type_name == "list" and isinstance(value, list):
        return [_convert(item, shape.member, exact_names) for item in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: _convert(v, shape.value, exact_names) for k, v in value.items()}
    if shape.type_name == "blob" and not isinstance(value, str | bytes):
        return json.dumps(value).encode()
    return value


def api_request(integration: Integration, parameters: Any) -> dict[str, Any]:
    """The API request a Task with these (rendered) Parameters makes."""
    shape = operation_model(integration).input_shape
    if integration.kind == "lambda-arn":
        raise AssertionError("use lambda_arn_request for bare Lambda ARNs")
    exact = integration.kind == "optimized" and integration.service == "sagemaker"
    return dict(_convert(parameters, shape, exact))


def lambda_arn_request(function_arn: str, payload: Any) -> dict[str, Any]:
    """A bare Lambda ARN as Resource: Invoke(FunctionName=arn, Payload=the rendered input)."""
    return {"FunctionName": function_arn, "Payload": json.dumps(payload).encode()}


# ============================================================================================
# Validation: botocore's ParamValidator plus the constraints it skips
# ============================================================================================


def constraint_problems(value: Any, shape: Shape, where: str = "") -> list[str]:
    """Enum, pattern and maximum violations (botocore's validator checks types, required
    members and minimums only). Patterns are AWS's (Java) regexes, matched in full; the few
    that Python cannot compile (``\\p{L}`` classes) are skipped."""
    problems: list[str] = []
    metadata = shape.metadata
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members:
                problems += constraint_problems(item, shape.members[key], f"{where}.{key}")
        return problems
    if shape.type_name == "list" and isinstance(value, list):
        if "max" in metadata and len(value) > metadata["max"]:
            problems.append(f"{where}: {len(value)} items, at most {metadata['max']} allowed")
        for index, item in enumerate(value):
            problems += constraint_problems(item, shape.member, f"{where}[{index}]")
        return problems
    if shape.type_name == "map" and isinstance(value, dict):
        if "max" in metadata and len(value) > metadata["max"]:
            problems.append(f"{where}: {len(value)} entries, at most {metadata['max']} allowed")
        for key, item in value.items():
            problems += constraint_problems(key, shape.key, f"{where} key {key!r}")
            problems += constraint_problems(item, shape.value, f"{where}[{key!r}]")
        return problems
    if shape.type_name == "string" and isinstance(value, str):
        enum = getattr(shape, "enum", None) or []
        if enum and value not in enum:
            problems.append(f"{where}: {value!r} is not one of the {len(enum)} allowed values")
        if "max" in metadata and len(value) > metadata["max"]:
            problems.append(f"{where}: {len(value)} characters, at most {metadata['max']}")
        pattern = metadata.get("pattern")
        if pattern:
            try:
                compiled = re.compile(pattern)
            except re.error:
                compiled = None
            if compiled is not None and not compiled.fullmatch(value):
                problems.append(f"{where}: {value!r} does not match {pattern!r}")
    if (
        shape.type_name in ("integer", "long")
        and isinstance(value, int)
        and "max" in metadata
        and value > metadata["max"]
    ):
        problems.append(f"{where}: {value} is above the maximum {metadata['max']}")
    return problems


def request_problems(integration: Integration, request: Mapping[str, Any]) -> list[str]:
    """Everything the API would reject in ``request`` (empty when it is valid)."""
    shape = operation_model(integration).input_shape
    report = ParamValidator().validate(dict(request), shape)
    problems = [line for line in report.generate_report().splitlines() if line.strip()]
    problems = [p for p in problems if not p.startswith("Parameter validation failed")]
    return problems + constraint_problems(request, shape)


# ============================================================================================
# A small interpreter that walks every path of a definition
# ============================================================================================


@dataclass
class TaskCall:
    state: str
    resource: str
    integration: Integration
    request: dict[str, Any]
    trail: tuple[str, ...]


@dataclass
class Walk:
    calls: list[TaskCall] = field(default_factory=list)
    #: Final states reached, as (state name, "Succeed"|"Fail").
    ends: list[tuple[str, str]] = field(default_factory=list)


def simulated_result(integration: Integration, request: Mapping[str, Any], d: Deployment) -> Any:
    """What a successful call returns, shaped as the service's response."""
    if (integration.service, integration.operation) == ("sagemaker", "CreateTrainingJob"):
        name = request["TrainingJobName"]
        arn = d.arn("sagemaker", f"training-job/{name}")
        if not integration.pattern:
            return {"TrainingJobArn": arn}
        # .sync answers with DescribeTrainingJob's output once the job is Completed.
        output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return {
            **copy.deepcopy(dict(request)),
            "TrainingJobArn": arn,
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": f"{output}/{name}/output/model.tar.gz"},
            "CreationTime": "2026-03-14T15:09:27.000Z",
            "TrainingStartTime": "2026-03-14T15:11:02.000Z",
            "TrainingEndTime": "2026-03-14T15:40:44.000Z",
            "BillableTimeInSeconds": 1782,
        }
    if integration.service == "lambda":
        if integration.kind == "lambda-arn":
            return {"Status": "SUCCESS"}
        return {"StatusCode": 200, "Payload": {"Status": "SUCCESS"}, "ExecutedVersion": "$LATEST"}
    return {}


def _choice_matches(rule: Mapping[str, Any], state_input: Any, context: Any) -> bool:
    if "And" in rule:
        return all(_choice_matches(r, state_input, context) for r in rule["And"])
    if "Or" in rule:
        return any(_choice_matches(r, state_input, context) for r in rule["Or"])
    if "Not" in rule:
        return not _choice_matches(rule["Not"], state_input, context)
    variable = rule["Variable"]
    try:
        value = evaluate(variable, state_input, context)
    except StatesRuntimeError:
        value = _MISSING
    if "IsPresent" in rule:
        return (value is not _MISSING) == bool(rule["IsPresent"])
    if value is _MISSING:
        raise StatesRuntimeError(f"Choice rule reads missing {variable}")
    for operator, test in (
        ("StringEquals", lambda v, x: v == x),
        ("BooleanEquals", lambda v, x: v is x),
        ("NumericEquals", lambda v, x: v == x),
        ("IsNull", lambda v, x: (v is None) == x),
        ("IsString", lambda v, x: isinstance(v, str) == x),
    ):
        if operator in rule:
            return bool(test(value, rule[operator]))
    raise AssertionError(f"Choice operator in {rule} is not supported by this test's interpreter")


def walk(
    definition: Mapping[str, Any],
    execution_input: Any,
    context: Mapping[str, Any],
    deployment: Deployment,
    *,
    failing_tasks: frozenset[str] = frozenset(),
) -> Walk:
    """Runs every path of the definition: each Task with a Catch both succeeds and fails.

    Tasks named in ``failing_tasks`` only fail (so a path without Catch can be forced to end).
    """
    result = Walk()
    states: Mapping[str, Any] = definition["States"]
    pending: list[tuple[str, Any, tuple[str, ...]]] = [(definition["StartAt"], execution_input, ())]
    while pending:
        name, document, trail = pending.pop()
        trail = (*trail, name)
        if len(trail) > 50:
            raise AssertionError(f"path too long (a loop?): {trail}")
        state = states[name]
        ctx = {**context, "State": {"Name": name, "EnteredTime": "2026-03-14T15:09:27.000Z"}}
        kind = state["Type"]

        def advance(
            output: Any, st: Mapping[str, Any] = state, tr: tuple[str, ...] = trail
        ) -> None:
            output = read_path(st.get("OutputPath", "$"), output)
            if st.get("End"):
                result.ends.append((tr[-1], "Succeed"))
            else:
                pending.append((st["Next"], output, tr))

        if kind == "Task":
            effective = read_path(state.get("InputPath", "$"), document)
            parameters = (
                render_payload(state["Parameters"], effective, ctx)
                if "Parameters" in state
                else effective
            )
            integration = integration_of(state["Resource"])
            request = (
                lambda_arn_request(state["Resource"], parameters)
                if integration.kind == "lambda-arn"
                else api_request(integration, parameters)
            )
            result.calls.append(TaskCall(name, state["Resource"], integration, request, trail))
            if name not in failing_tasks:
                raw = simulated_result(integration, request, deployment)
                selected = (
                    render_payload(state["ResultSelector"], raw, ctx)
                    if "ResultSelector" in state
                    else raw
                )
                advance(write_path(state.get("ResultPath", "$"), document, selected))
            for catcher in state.get("Catch", []):
                error = {
                    "Error": "SageMaker.AmazonSageMakerException"
                    if integration.service == "sagemaker"
                    else "States.TaskFailed",
                    "Cause": "ClientError: ResourceLimitExceeded: The account-level service "
                    "limit 'ml.m5.large for training job usage' is 0 Instances",
                }
                caught = write_path(catcher.get("ResultPath", "$"), document, error)
                pending.append((catcher["Next"], caught, trail))
        elif kind == "Choice":
            for rule in state["Choices"]:
                if _choice_matches(rule, document, ctx):
                    pending.append((rule["Next"], document, trail))
                    break
            else:
                if "Default" not in state:
                    raise StatesRuntimeError(f"{name}: no Choice matched and no Default")
                pending.append((state["Default"], document, trail))
        elif kind == "Pass":
            output = document
            if "Parameters" in state:
                output = render_payload(state["Parameters"], document, ctx)
            if "Result" in state:
                output = state["Result"]
            advance(write_path(state.get("ResultPath", "$"), document, output))
        elif kind == "Wait":
            advance(document)
        elif kind == "Succeed":
            result.ends.append((name, "Succeed"))
        elif kind == "Fail":
            for key in ("ErrorPath", "CausePath"):
                if key in state:
                    value = evaluate(state[key], document, ctx)
                    if not isinstance(value, str):
                        raise StatesRuntimeError(f"{name}.{key} must yield a string: {value!r}")
            result.ends.append((name, "Fail"))
        else:
            raise AssertionError(f"state type {kind} is not supported by this test's interpreter")
    return result


# ============================================================================================
# The handler contract of docs/architecture.md ("Signal event")
# ============================================================================================

SIGNAL_KEYS = {"Status", "WaitHandleUrl", "TrainingJobName", "ModelDataUrl", "Error"}


def signal_event_problems(event: Any) -> list[str]:
    """Deviations of an event from the documented signal contract."""
    if not isinstance(event, dict):
        return [f"the signal event must be an object, got {type(event).__name__}"]
    problems = [f"undocumented key {key!r}" for key in sorted(set(event) - SIGNAL_KEYS)]
    if event.get("Status") not in ("SUCCESS", "FAILURE"):
        problems.append(f"Status must be SUCCESS or FAILURE: {event.get('Status')!r}")
    for key in ("WaitHandleUrl", "TrainingJobName"):
        if not isinstance(event.get(key), str) or not event[key]:
            problems.append(f"{key} must be a non-empty string: {event.get(key)!r}")
    if "ModelDataUrl" in event and not str(event["ModelDataUrl"]).startswith("s3://"):
        problems.append(f"ModelDataUrl must be an s3:// URI: {event['ModelDataUrl']!r}")
    if "Error" in event:
        error = event["Error"]
        if not isinstance(error, dict) or not all(
            isinstance(error.get(k), str) for k in ("Error", "Cause")
        ):
            problems.append(f"Error must be {{'Error': str, 'Cause': str}}: {error!r}")
    if event.get("Status") == "SUCCESS" and "ModelDataUrl" not in event:
        problems.append("a SUCCESS signal must carry ModelDataUrl (the model it trained)")
    if event.get("Status") == "FAILURE" and "Error" not in event:
        problems.append("a FAILURE signal must carry the Error that was caught")
    return problems


@pytest.fixture(scope="module")
def signal_parser() -> Iterator[Callable[[Any], Any]]:
    """``training_run.SignalEvent.parse`` from the Lambda asset, imported as Lambda would."""
    packages = ("_shared", "custom_resources")

    def ours(name: str) -> bool:
        return name.partition(".")[0] in packages

    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if ours(name)}
    sys.path.insert(0, str(HANDLER_ROOT))
    try:
        training_run = importlib.import_module("custom_resources.training_run")
        yield training_run.SignalEvent.parse
    finally:
        sys.path.remove(str(HANDLER_ROOT))
        for name in [name for name in sys.modules if ours(name)]:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


# ============================================================================================
# CloudFormation's own requests: the SageMaker resources of a template
# ============================================================================================

#: Resource type -> (the operation CloudFormation creates it with, the request member holding
#: its name, the properties that are CloudFormation's own and not members of that request).
CLOUDFORMATION_CREATES = {
    "AWS::SageMaker::Model": ("CreateModel", "ModelName", ()),
    "AWS::SageMaker::EndpointConfig": ("CreateEndpointConfig", "EndpointConfigName", ()),
    "AWS::SageMaker::Endpoint": (
        "CreateEndpoint",
        "EndpointName",
        # How CloudFormation updates the endpoint (UpdateEndpoint's own members).
        (
            "RetainAllVariantProperties",
            "RetainDeploymentConfig",
            "ExcludeRetainedVariantProperties",
        ),
    ),
    # The group's resource policy is a request of its own (PutModelPackageGroupPolicy).
    "AWS::SageMaker::ModelPackageGroup": (
        "CreateModelPackageGroup",
        "ModelPackageGroupName",
        ("ModelPackageGroupPolicy",),
    ),
}


@dataclass(frozen=True)
class ResourceRequest:
    stack: str
    logical_id: str
    integration: Integration
    request: dict[str, Any]
    resolver: TemplateResolver

    @property
    def operation(self) -> str:
        return self.integration.operation


def _sagemaker(operation: str) -> Integration:
    return Integration("sagemaker", operation, "cloudformation")


def cloudformation_requests(resolver: TemplateResolver, stack: str) -> list[ResourceRequest]:
    """The requests CloudFormation makes for the template's SageMaker resources: the Create*
    call (with the name CloudFormation generates when the template gives none), AddTags when a
    resource's Tags change on update (what keeps the endpoint's serving-job tag current), and
    PutModelPackageGroupPolicy for a group's policy."""
    found = []
    for logical_id, resource in resolver.resources.items():
        kind = resource["Type"]
        if kind not in CLOUDFORMATION_CREATES:
            continue
        operation, name_member, own = CLOUDFORMATION_CREATES[kind]
        properties = resolver.resolve(resource.get("Properties", {}))
        request = {k: v for k, v in properties.items() if k not in own}
        request.setdefault(name_member, resolver.attribute(logical_id, SAGEMAKER_NAMED[kind][1]))
        found.append(ResourceRequest(stack, logical_id, _sagemaker(operation), request, resolver))
        if "Tags" in properties:
            arn = resolver.attribute(logical_id, "Ref")
            tags = {"ResourceArn": arn, "Tags": properties["Tags"]}
            found.append(ResourceRequest(stack, logical_id, _sagemaker("AddTags"), tags, resolver))
        if "ModelPackageGroupPolicy" in properties:
            policy = properties["ModelPackageGroupPolicy"]
            put = {
                "ModelPackageGroupName": request[name_member],
                "ResourcePolicy": policy if isinstance(policy, str) else json.dumps(policy),
            }
            found.append(
                ResourceRequest(
                    stack, logical_id, _sagemaker("PutModelPackageGroupPolicy"), put, resolver
                )
            )
    return found


# ============================================================================================
# Fixtures: every state machine, walked, for a few realistic deployments
# ============================================================================================

DEPLOYMENTS = ("us-east-1", "cn-north-1", "us-gov-west-1")


@dataclass
class Machine:
    stack: str
    logical_id: str
    resolver: TemplateResolver
    definition: dict[str, Any]


def machines(out: Path, region: str) -> list[Machine]:
    found = []
    for stack in STACKS:
        template = load_template(out, stack)
        resolver = TemplateResolver(template, Deployment(region, stack_name=stack))
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::StepFunctions::StateMachine":
                found.append(
                    Machine(
                        stack, logical_id, resolver, state_machine_definition(resolver, logical_id)
                    )
                )
    return found


def execution_inputs(machine: Machine) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(label, input, context) of the executions a deploy (and a manual retrain) starts."""
    resolver = machine.resolver
    d = resolver.deployment
    machine_arn = resolver.attribute(machine.logical_id, "Ref")
    runs = [
        logical_id
        for logical_id, resource in resolver.resources.items()
        if resource["Type"] == "Custom::RLTrainingRun"
        and resolver.resolve(resource["Properties"]["StateMachineArn"]) == machine_arn
    ]
    role = resolver.resolve(resolver.resources[machine.logical_id]["Properties"]["RoleArn"])

    def context(name: str, execution_input: dict[str, Any]) -> dict[str, Any]:
        parts = machine_arn.split(":")
        return {
            "Execution": {
                "Id": ":".join([*parts[:5], "execution", parts[6], name]),
                "Name": name,
                "Input": execution_input,
                "StartTime": "2026-03-14T15:09:26.535Z",
                "RoleArn": role,
            },
            "StateMachine": {"Id": machine_arn, "Name": parts[6]},
        }

    cases = []
    for run in runs:
        name = resolver.attribute(run, "TrainingJobName")
        url = resolver.resolve(resolver.resources[run]["Properties"].get("WaitHandleUrl"))
        if url:
            cases.append(("deploy", {"WaitHandleUrl": url}, context(name, {"WaitHandleUrl": url})))
    # A retrain started from the console: no input, the console's default name (a UUID).
    console_name = _uuid(f"{d.stack_name}/{machine.logical_id}")
    cases.append(("manual", {}, context(console_name, {})))
    return cases


@dataclass
class WalkedMachine:
    machine: Machine
    label: str
    execution_input: dict[str, Any]
    walk: Walk


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def walked(request: pytest.FixtureRequest, reference_out: Path) -> list[WalkedMachine]:
    region = str(request.param)
    result = []
    for machine in machines(reference_out, region):
        for label, execution_input, context in execution_inputs(machine):
            result.append(
                WalkedMachine(
                    machine,
                    label,
                    execution_input,
                    walk(machine.definition, execution_input, context, machine.resolver.deployment),
                )
            )
    assert result, "the reference app has no state machine"
    return result


# ============================================================================================
# Tests
# ============================================================================================


def test_every_task_state_is_reached_and_sends_a_valid_api_request(
    walked: list[WalkedMachine],
) -> None:
    reached: dict[tuple[str, str], set[str]] = {}
    for item in walked:
        key = (item.machine.stack, item.machine.logical_id)
        reached.setdefault(key, set())
        for call in item.walk.calls:
            reached[key].add(call.state)
            problems = request_problems(call.integration, call.request)
            assert problems == [], (item.machine.stack, call.state, call.trail, problems)
    for item in walked:
        key = (item.machine.stack, item.machine.logical_id)
        tasks = {n for n, s in item.machine.definition["States"].items() if s["Type"] == "Task"}
        assert tasks, key
        assert tasks <= reached[key], f"{key}: Task states never reached: {tasks - reached[key]}"


def test_training_request_is_the_one_the_deploy_promises(walked: list[WalkedMachine]) -> None:
    """The job the state machine creates is the one Custom::RLTrainingRun reports to the stack."""
    for item in walked:
        resolver = item.machine.resolver
        trainings = [
            c
            for c in item.walk.calls
            if (c.integration.service, c.integration.operation)
            == ("sagemaker", "CreateTrainingJob")
        ]
        assert trainings, item.machine.stack
        for call in trainings:
            request = call.request
            d = resolver.deployment
            image = request["AlgorithmSpecification"]["TrainingImage"]
            assert re.fullmatch(
                rf"\d{{12}}\.dkr\.ecr\.{d.region}\.{re.escape(d.url_suffix)}/[a-z0-9-]+:[\w.-]+",
                image,
            ), image
            assert request["RoleArn"].startswith(f"arn:{d.partition}:iam::{d.account}:role/")
            if item.label != "deploy":
                continue
            (run,) = [
                k for k, r in resolver.resources.items() if r["Type"] == "Custom::RLTrainingRun"
            ]
            assert request["TrainingJobName"] == resolver.attribute(run, "TrainingJobName")
            # The SDK JSON-encodes every hyperparameter; the job name one is built at run time.
            hyperparameters = request["HyperParameters"]
            assert json.loads(hyperparameters["sagemaker_job_name"]) == request["TrainingJobName"]
            assert json.loads(hyperparameters["sagemaker_region"]) == d.region
            submit = json.loads(hyperparameters["sagemaker_submit_directory"])
            assert submit.startswith(f"s3://cdk-hnb659fds-assets-{d.account}-{d.region}/")
            output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
            assert json.loads(hyperparameters["sagemaker_s3_output"]).rstrip("/") == output


def _signal_calls(item: WalkedMachine) -> list[tuple[TaskCall, Any]]:
    resolver = item.machine.resolver
    calls = []
    for call in item.walk.calls:
        if call.integration.service != "lambda":
            continue
        function = call.request["FunctionName"]
        logical_id = resolver.logical_id_of("AWS::Lambda::Function", "Arn", function)
        if logical_id is None:
            logical_id = resolver.logical_id_of("AWS::Lambda::Function", "Ref", function)
        assert logical_id is not None, f"{call.state} invokes {function}, not in the stack"
        handler = resolver.resources[logical_id]["Properties"]["Handler"]
        payload = call.request.get("Payload", b"{}")
        event = json.loads(payload)
        assert handler == "custom_resources.training_run.signal", (
            f"{call.state}: unexpected handler {handler}"
        )
        calls.append((call, event))
    return calls


def test_signal_payloads_follow_the_handler_contract(
    walked: list[WalkedMachine], signal_parser: Callable[[Any], Any]
) -> None:
    for item in walked:
        resolver = item.machine.resolver
        signals = _signal_calls(item)
        if item.label == "manual":
            # Nobody waits: the execution ends without signalling.
            assert signals == [], [c.state for c, _ in signals]
            assert {kind for _, kind in item.walk.ends} == {"Succeed", "Fail"}
            continue
        statuses = sorted(event["Status"] for _, event in signals)
        assert statuses == ["FAILURE", "SUCCESS"], statuses
        (run,) = [k for k, r in resolver.resources.items() if r["Type"] == "Custom::RLTrainingRun"]
        for call, event in signals:
            assert signal_event_problems(event) == [], (call.state, event)
            assert event["WaitHandleUrl"] == item.execution_input["WaitHandleUrl"]
            assert event["TrainingJobName"] == resolver.attribute(run, "TrainingJobName")
            if event["Status"] == "SUCCESS":
                # The model CloudFormation serves (GetAtt TrainingRun.ModelDataUrl) is the one
                # the training wrote.
                assert event["ModelDataUrl"] == resolver.attribute(run, "ModelDataUrl")
            parsed = signal_parser(event)
            assert parsed.status == event["Status"]
            assert parsed.training_job_name == event["TrainingJobName"]


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def resource_requests(request: pytest.FixtureRequest, reference_out: Path) -> list[ResourceRequest]:
    found = []
    for stack in STACKS:
        template = load_template(reference_out, stack)
        resolver = TemplateResolver(template, Deployment(str(request.param), stack_name=stack))
        found += cloudformation_requests(resolver, stack)
    return found


def test_every_sagemaker_resource_is_a_valid_api_request(
    resource_requests: list[ResourceRequest],
) -> None:
    for item in resource_requests:
        problems = request_problems(item.integration, item.request)
        assert problems == [], (item.stack, item.logical_id, item.operation, problems)
    per_stack = {
        stack: {item.operation for item in resource_requests if item.stack == stack}
        for stack in STACKS
    }
    serving = {"CreateModel", "CreateEndpointConfig", "CreateEndpoint"}
    for stack in STACKS:
        assert serving <= per_stack[stack], (stack, per_stack[stack])
    for stack in ("RLCartPole-dev", "RLCartPole-prod"):
        # The endpoint's tag naming the job it serves (the next gate's champion), which
        # CloudFormation sets with AddTags on every update. (The registry's group is created by
        # the gate on its first registration, not by CloudFormation.)
        assert "AddTags" in per_stack[stack], per_stack[stack]


def test_the_staging_model_is_the_approved_version(
    resource_requests: list[ResourceRequest],
) -> None:
    """Staging's CreateModel serves what Custom::RLApprovedModelVersion resolved."""
    (item,) = [
        r
        for r in resource_requests
        if r.stack == "RLCartPole-staging" and r.operation == "CreateModel"
    ]
    resources = item.resolver.resources
    (lookup,) = [k for k, r in resources.items() if r["Type"] == "Custom::RLApprovedModelVersion"]
    container = item.request["PrimaryContainer"]
    assert container["Image"] == item.resolver.attribute(lookup, "Image")
    assert container["ModelDataUrl"] == item.resolver.attribute(lookup, "ModelDataUrl")


# ------------------------------------------------------------------------- test the tests
@pytest.fixture(scope="module")
def dev_machine(reference_out: Path) -> Machine:
    (machine,) = [m for m in machines(reference_out, "us-east-1") if m.stack == "RLCartPole-dev"]
    return machine


def _train_request(machine: Machine, mutate: Callable[[dict[str, Any]], None]) -> list[str]:
    definition = copy.deepcopy(machine.definition)
    mutate(definition["States"]["Train"]["Parameters"])
    label, execution_input, context = execution_inputs(machine)[0]
    assert label == "deploy"
    result = walk(definition, execution_input, context, machine.resolver.deployment)
    (call,) = [c for c in result.calls if c.state == "Train"]
    return request_problems(call.integration, call.request)


def test_unmutated_train_request_is_valid(dev_machine: Machine) -> None:
    assert _train_request(dev_machine, lambda params: None) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda p: p["ResourceConfig"].update(
                InstanceCont=p["ResourceConfig"].pop("InstanceCount")
            ),
            'Unknown parameter in ResourceConfig: "InstanceCont"',
        ),
        (lambda p: p["ResourceConfig"].update(InstanceCount="1"), "Invalid type for parameter"),
        (lambda p: p.pop("RoleArn"), 'Missing required parameter in input: "RoleArn"'),
        (
            lambda p: p["ResourceConfig"].update(InstanceType="ml.m5.huge"),
            "'ml.m5.huge' is not one",
        ),
        (lambda p: p["HyperParameters"].update(big="x" * 2501), "2501 characters, at most 2500"),
        (
            lambda p: p.update({"TrainingJobName.$": "States.Format('{}_x', $$.Execution.Name)"}),
            "does not match",
        ),
        (
            lambda p: p.update(
                {
                    "TrainingJobName.$": "States.Format('{}-{}', $$.Execution.Name, "
                    "$$.Execution.Name)"
                }
            ),
            "characters, at most 63",
        ),
        (lambda p: p["OutputDataConfig"].update(S3OutputPath="/tmp/out"), "does not match"),
    ],
    ids=[
        "misspelt-member",
        "wrong-type",
        "missing-required",
        "bad-enum",
        "hyperparameter-length",
        "job-name-pattern",
        "job-name-length",
        "s3-uri",
    ],
)
def test_validation_catches_a_broken_request(
    dev_machine: Machine, mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    problems = _train_request(dev_machine, mutate)
    assert any(expected in problem for problem in problems), problems


def test_a_path_missing_from_the_input_is_a_runtime_error(dev_machine: Machine) -> None:
    def mutate(params: dict[str, Any]) -> None:
        params["ResourceConfig"]["InstanceType.$"] = "$.InstanceType"

    with pytest.raises(StatesRuntimeError, match=r"\$\.InstanceType"):
        _train_request(dev_machine, mutate)


def test_a_resource_without_integration_is_refused() -> None:
    with pytest.raises(AssertionError, match="unknown to this test"):
        integration_of("arn:aws:states:::sagemaker:createTrainingJobs.sync")
    sdk = integration_of("arn:aws:states:::aws-sdk:sfn:describeExecution")
    assert (sdk.service, sdk.operation) == ("stepfunctions", "DescribeExecution")
    # Step Functions' PascalCase parameters map onto the API's camelCase names.
    request = api_request(
        sdk, {"ExecutionArn": "arn:aws:states:us-east-1:111122223333:execution:m:e"}
    )
    assert request_problems(sdk, request) == []
    assert request_problems(sdk, api_request(sdk, {"ExecutionArns": "x"})) != []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e.pop("WaitHandleUrl"), "WaitHandleUrl must be"),
        (lambda e: e.update(status=e.pop("Status")), "undocumented key 'status'"),
        (lambda e: e.update(Status="SUCCEEDED"), "Status must be"),
        (lambda e: e.pop("ModelDataUrl", None) or e.pop("Error", None), "must carry"),
    ],
    ids=["missing-url", "misspelt-key", "bad-status", "missing-outcome"],
)
def test_contract_check_catches_a_broken_signal(
    dev_machine: Machine, mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    label, execution_input, context = execution_inputs(dev_machine)[0]
    result = walk(dev_machine.definition, execution_input, context, dev_machine.resolver.deployment)
    item = WalkedMachine(dev_machine, label, execution_input, result)
    for _, event in _signal_calls(item):
        mutate(event)
        assert any(expected in p for p in signal_event_problems(event)), event


def test_resolver_refuses_what_it_cannot_resolve(dev_machine: Machine) -> None:
    resolver = dev_machine.resolver
    with pytest.raises(UnresolvedIntrinsic):
        resolver.resolve({"Fn::ImportValue": "SharedBucket"})
    with pytest.raises(UnresolvedIntrinsic):
        resolver.resolve({"Ref": "NoSuchResource"})
    assert resolver.resolve({"Fn::Sub": "${AWS::Partition}:${!Literal}"}) == "aws:${Literal}"


def _dev_resource_requests(
    reference_out: Path, kind: str, mutate: Callable[[dict[str, Any]], None]
) -> list[ResourceRequest]:
    template = copy.deepcopy(load_template(reference_out, "RLCartPole-dev"))
    (resource,) = [r for r in template["Resources"].values() if r["Type"] == kind]
    mutate(resource["Properties"])
    resolver = TemplateResolver(template, Deployment("us-east-1"))
    return cloudformation_requests(resolver, "RLCartPole-dev")


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"),
    [
        (
            "AWS::SageMaker::EndpointConfig",
            lambda p: p.update(KmsKeyID=p.pop("KmsKeyId")),
            'Unknown parameter in input: "KmsKeyID"',
        ),
        (
            "AWS::SageMaker::Endpoint",
            lambda p: p["Tags"][0].update(Value="x" * 257),
            "257 characters, at most 256",
        ),
        (
            "AWS::SageMaker::Model",
            lambda p: p["PrimaryContainer"].update(ModelDataUrl="/opt/ml/model.tar.gz"),
            "does not match",
        ),
    ],
    ids=["misspelt-config-member", "tag-value-length", "model-url"],
)
def test_validation_catches_a_broken_resource(
    reference_out: Path, kind: str, mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    unmutated = _dev_resource_requests(reference_out, kind, lambda p: None)
    assert [p for r in unmutated for p in request_problems(r.integration, r.request)] == []
    broken = _dev_resource_requests(reference_out, kind, mutate)
    problems = [p for r in broken for p in request_problems(r.integration, r.request)]
    assert any(expected in problem for problem in problems), problems
