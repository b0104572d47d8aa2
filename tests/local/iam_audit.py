"""IAM sufficiency and least privilege, checked on the requests of a real local deploy.

``tests/test_iam_lint.py`` checks the synthesized policies statically (valid actions, scoped
resources). It cannot tell whether a policy grants what the code actually calls, nor whether it
grants more than the job needs. This audit answers both from a recording of the emulator's
requests during the end-to-end local deploy and prediction:

Recording
    moto's recorder (``MOTO_ENABLE_RECORDING``, see :func:`recording_environment`) appends every
    request the emulator serves to a file from its start; :func:`fetch_recording` stops it and
    downloads it (``/moto-api/recorder/...``). The emulator's own ``/_local/...`` routes (custom
    resource responses, wait condition signals: presigned-URL PUTs that need no IAM) are not
    recorded; neither is what moto does in-process.

Attribution (who made the request)
    * a Lambda handler: the emulator runs it with ``AWS_SDK_UA_APP_ID`` naming the function, so
      botocore adds ``app/<id>`` to its User-Agent -> the function's execution role;
    * SageMaker on behalf of a training job or a model (the training runner's and the model
      server's S3 client): ``app/<id>`` names the job's ``RoleArn`` / the model's
      ``ExecutionRoleArn`` -> that role;
    * moto's Step Functions interpreter signs every request with the access key ``ak``
      (``moto.stepfunctions.parser.asl.utils.boto_client.boto_client_for``) and nothing in the
      request names the execution, so its requests are attributed to the role of the stack's
      state machine when the stack has exactly one (else they are reported as unattributable);
    * anything else (the cdk CLI deploying, the test's own client invoking the predict function)
      is the deployer, not a principal of the stack, and is only counted.
    The ids are :func:`cdk_sagemaker_rl.local._plugins.lambda_exec.app_id_for` of the function
    name / role ARN (botocore keeps at most 50 characters, so long names become a digest).

Mapping (what IAM evaluates)
    :func:`permissions_for` maps each request to (IAM action, resource ARN[, condition context])
    with an explicit table of the operations this library's principals use. A request of a
    principal that the table does not know is a finding: the table cannot silently miss a call.

Policies and evaluation
    Each principal's identity policies are read back from the emulator's IAM (inline and
    attached: what moto created from the deployed template, intrinsics resolved) and evaluated
    with moto's own evaluator, :class:`moto.iam.access_control.IAMPolicy` (explicit deny wins,
    else an allow is needed). One correction is made to the deployed documents: where a policy
    holds the ARN that moto returned for a SageMaker resource of the stack (``Ref`` of an
    endpoint, say), it is replaced by the ARN SageMaker returns, whose resource name is lower
    case; moto keeps the name's case. A policy that builds such an ARN from a mixed-case name
    itself is not corrected, and fails as it would on AWS.

Least privilege (negative probes)
    * *another resource*: every action a principal performed, on a sibling of the resource it
      used (another bucket, endpoint, state machine, function, log group, training job), must
      be denied;
    * *another principal's job*: every call with an action of :data:`EXCLUSIVE_ACTIONS` (start
      the training, create a training job, pass a role, invoke an endpoint or a function, write
      an object) must be denied, on the very resource it used, to every other role of the stack
      that did not make it (the predict function may not CreateTrainingJob, ...).

Open gaps
    A real finding that cannot be fixed in the same change is listed in :data:`OPEN_GAPS` with
    its cause and fix; the report shows it apart. A listed gap that no longer occurs is a
    finding, so the entry goes with the fix.

Limits (moto's evaluator and the emulator)
    * conditions: moto evaluates ``StringEquals`` only (other operators are treated as true);
      a condition key absent from the context counts as satisfied; a statement whose condition
      fails yields an explicit deny (not "not applicable"), so a role with two conditional
      statements for one action could be misjudged. Matching is case-sensitive (IAM actions
      are not): the table uses the documented spelling, as the policies do;
    * no resource policies, permission boundaries, SCPs or session policies;
    * calls moto or the plugins make in-process are not requests: Lambda writing a function's
      logs, SageMaker writing a training job's logs, CloudFormation invoking a custom resource;
      nor are calls a path of the run did not take (a failed training, a stack deletion).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# Imported here, at collection time, so that moto's in-process recorder (created when moto is
# first imported) never sees the recording variables the end-to-end test sets for the emulator.
from moto.iam.access_control import IAMPolicy, PermissionResult

from cdk_sagemaker_rl.local._plugins.lambda_exec import app_id_for

__all__ = [
    "EXCLUSIVE_ACTIONS",
    "AuditReport",
    "Deployment",
    "Permission",
    "Principal",
    "RecordedRequest",
    "UnmappedOperation",
    "audit",
    "audit_requests",
    "fetch_recording",
    "is_allowed",
    "load_deployment",
    "parse_recording",
    "permissions_for",
    "recording_environment",
    "sagemaker_arn_as_aws_returns_it",
    "sibling",
]

ACCOUNT = "123456789012"
PARTITION = "aws"
#: The access key moto's Step Functions interpreter signs its requests with.
INTERPRETER_ACCESS_KEY = "ak"

#: Actions that define one principal's job: no other role of the stack may perform them on the
#: resource the run used.
EXCLUSIVE_ACTIONS = frozenset(
    {
        "states:StartExecution",
        "sagemaker:CreateTrainingJob",
        "iam:PassRole",
        "sagemaker:InvokeEndpoint",
        "lambda:InvokeFunction",
        "s3:PutObject",
    }
)

#: Findings that are real and open: (principal fragment, action) -> why, and what fixes it.
#: The audit still reports each as a finding unless it is listed here; a listed gap that no
#: longer occurs is itself a finding, so that the entry is removed with the fix.
OPEN_GAPS: dict[tuple[str, str], str] = {}


# ============================================================================================
# Recording
# ============================================================================================


def recording_environment(path: Path) -> dict[str, str]:
    """Variables that make an emulator started with them record every request into ``path``."""
    return {"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(path)}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as moto's recorder stored it."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes = b""

    def header(self, name: str) -> str:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), "")

    @property
    def _credential(self) -> tuple[str, str, str] | None:
        match = re.search(
            r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request",
            self.header("Authorization"),
        )
        return None if match is None else (match[1], match[2], match[3])

    @property
    def access_key(self) -> str:
        credential = self._credential
        return "" if credential is None else credential[0]

    @property
    def region(self) -> str:
        credential = self._credential
        return "" if credential is None else credential[1]

    @property
    def signing_service(self) -> str:
        credential = self._credential
        return "" if credential is None else credential[2]

    @property
    def app_id(self) -> str | None:
        match = re.search(r"(?:^|\s)app/(\S+)", self.header("User-Agent"))
        return None if match is None else match[1]

    @property
    def json_body(self) -> dict[str, Any]:
        if not self.body:
            return {}
        value = json.loads(self.body)
        return value if isinstance(value, dict) else {}

    def describe(self) -> str:
        target = self.header("X-Amz-Target")
        path = urlsplit(self.url).path
        return f"{self.signing_service or '?'} {self.method} {path}{' ' + target if target else ''}"


def parse_recording(text: str) -> list[RecordedRequest]:
    """The requests of a recording (one JSON object per line)."""
    requests = []
    for line in text.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        raw = entry.get("body") or ""
        body = base64.b64decode(raw) if entry.get("body_encoded") else str(raw).encode()
        headers = {str(k): str(v) for k, v in (entry.get("headers") or {}).items()}
        requests.append(RecordedRequest(str(entry["method"]), str(entry["url"]), headers, body))
    return requests


def fetch_recording(endpoint_url: str) -> list[RecordedRequest]:
    """Stop the emulator's recorder and return what it recorded."""
    base = endpoint_url.rstrip("/") + "/moto-api/recorder"
    stop = urllib.request.Request(f"{base}/stop-recording", data=b"", method="POST")
    with urllib.request.urlopen(stop, timeout=30):
        pass
    with urllib.request.urlopen(f"{base}/download-recording", timeout=60) as response:
        return parse_recording(response.read().decode("utf-8"))


# ============================================================================================
# Request -> (action, resource)
# ============================================================================================


@dataclass(frozen=True, order=True)
class Permission:
    """What IAM evaluates for one request: an action on a resource, with a condition context."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        extra = "".join(f" [{k}={v}]" for k, v in self.context)
        return f"{self.action} on {self.resource}{extra}"


class UnmappedOperation(Exception):
    """A request that the mapping table does not know."""


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


_Mapper = Callable[[str, Mapping[str, Any], str, str], list[Permission]]


def _sagemaker(resource_type: str, name_key: str) -> _Mapper:
    def mapper(op: str, params: Mapping[str, Any], region: str, account: str) -> list[Permission]:
        # SageMaker ARNs carry the resource name in lower case.
        name = str(params[name_key]).lower()
        return [
            Permission(
                f"sagemaker:{op}", _arn("sagemaker", region, account, f"{resource_type}/{name}")
            )
        ]

    return mapper


def _by_arn(arn_key: str) -> _Mapper:
    """An operation whose request names its resource by ARN (as given, or a name in a group)."""

    def mapper(op: str, params: Mapping[str, Any], region: str, account: str) -> list[Permission]:
        value = str(params[arn_key])
        if not value.startswith("arn:"):
            value = _arn("sagemaker", region, account, f"model-package-group/{value.lower()}")
        return [Permission(f"sagemaker:{op}", value)]

    return mapper


def _create_model_package(
    op: str, params: Mapping[str, Any], region: str, account: str
) -> list[Permission]:
    """A new version of the group: IAM sees the version's ARN (its number is SageMaker's)."""
    group = str(params["ModelPackageGroupName"]).split("/")[-1].lower()
    version = _arn("sagemaker", region, account, f"model-package/{group}/1")
    return [Permission(f"sagemaker:{op}", version)]


def _create_training_job(
    op: str, params: Mapping[str, Any], region: str, account: str
) -> list[Permission]:
    job = _arn(
        "sagemaker", region, account, f"training-job/{str(params['TrainingJobName']).lower()}"
    )
    permissions = [Permission("sagemaker:CreateTrainingJob", job)]
    if params.get("Tags"):
        permissions.append(Permission("sagemaker:AddTags", job))
    permissions.append(
        Permission(
            "iam:PassRole",
            str(params["RoleArn"]),
            (("iam:PassedToService", "sagemaker.amazonaws.com"),),
        )
    )
    return permissions


def _states(arn_key: str) -> _Mapper:
    def mapper(op: str, params: Mapping[str, Any], region: str, account: str) -> list[Permission]:
        return [Permission(f"states:{op}", str(params[arn_key]))]

    return mapper


def _log_group_name(params: Mapping[str, Any]) -> str:
    name = str(params.get("logGroupName") or params.get("logGroupIdentifier") or "")
    if name.startswith("arn:"):
        name = name.split(":log-group:", 1)[1].removesuffix(":*")
    if not name:
        raise UnmappedOperation("no logGroupName")
    return name


def _logs(stream_level: bool) -> _Mapper:
    """CloudWatch Logs authorizes ``log-group:<group>:log-stream:<stream>`` (the stream empty
    for group-level actions), which is the resource its AccessDenied messages name."""

    def mapper(op: str, params: Mapping[str, Any], region: str, account: str) -> list[Permission]:
        stream = str(params.get("logStreamName") or "") if stream_level else ""
        if stream_level and not stream:
            raise UnmappedOperation("no logStreamName")
        resource = f"log-group:{_log_group_name(params)}:log-stream:{stream}"
        return [Permission(f"logs:{op}", _arn("logs", region, account, resource))]

    return mapper


#: JSON-protocol operations: (signing service, X-Amz-Target operation) -> permissions.
JSON_OPERATIONS: dict[tuple[str, str], _Mapper] = {
    ("sagemaker", "CreateTrainingJob"): _create_training_job,
    ("sagemaker", "DescribeTrainingJob"): _sagemaker("training-job", "TrainingJobName"),
    ("sagemaker", "StopTrainingJob"): _sagemaker("training-job", "TrainingJobName"),
    ("sagemaker", "DescribeEndpoint"): _sagemaker("endpoint", "EndpointName"),
    ("sagemaker", "CreateModelPackageGroup"): _sagemaker(
        "model-package-group", "ModelPackageGroupName"
    ),
    ("sagemaker", "DescribeModelPackageGroup"): _sagemaker(
        "model-package-group", "ModelPackageGroupName"
    ),
    ("sagemaker", "CreateModelPackage"): _create_model_package,
    ("sagemaker", "DescribeModelPackage"): _by_arn("ModelPackageName"),
    ("sagemaker", "UpdateModelPackage"): _by_arn("ModelPackageArn"),
    ("sagemaker", "ListModelPackages"): _by_arn("ModelPackageGroupName"),
    ("sagemaker", "ListTags"): _by_arn("ResourceArn"),
    ("sagemaker", "AddTags"): _by_arn("ResourceArn"),
    ("states", "StartExecution"): _states("stateMachineArn"),
    ("states", "ListExecutions"): _states("stateMachineArn"),
    ("states", "DescribeStateMachine"): _states("stateMachineArn"),
    ("states", "DescribeExecution"): _states("executionArn"),
    ("states", "StopExecution"): _states("executionArn"),
    ("logs", "CreateLogGroup"): _logs(stream_level=False),
    ("logs", "DescribeLogStreams"): _logs(stream_level=False),
    ("logs", "CreateLogStream"): _logs(stream_level=True),
    ("logs", "PutLogEvents"): _logs(stream_level=True),
    ("logs", "GetLogEvents"): _logs(stream_level=True),
}

#: S3 list parameters that keep a bucket GET a ListObjects(V2).
_S3_LIST_PARAMS = {
    "list-type",
    "prefix",
    "delimiter",
    "continuation-token",
    "max-keys",
    "start-after",
    "encoding-type",
    "fetch-owner",
    "marker",
}


def _s3(request: RecordedRequest) -> tuple[str, list[Permission]]:
    parts = urlsplit(request.url)
    query = parse_qs(parts.query, keep_blank_values=True)
    query.pop("x-id", None)  # an SDK's hint of the operation name, not a subresource
    keys = set(query)
    host = (request.header("Host") or parts.netloc).split(":")[0]
    path = parts.path
    if host in ("localhost", "127.0.0.1"):
        bucket, _, key = path.lstrip("/").partition("/")
    elif host.endswith(".localhost"):
        bucket, key = host.removesuffix(".localhost"), path.lstrip("/")
    else:
        raise UnmappedOperation(f"S3 host {host}")
    key = unquote(key)
    if not bucket:
        raise UnmappedOperation("S3 request without a bucket")
    bucket_arn = f"arn:{PARTITION}:s3:::{bucket}"
    object_arn = f"{bucket_arn}/{key}"
    method = request.method
    if not key:
        if method == "GET" and keys <= _S3_LIST_PARAMS:
            return "ListObjects", [Permission("s3:ListBucket", bucket_arn)]
        if method == "HEAD" and not keys:
            return "HeadBucket", [Permission("s3:ListBucket", bucket_arn)]
        raise UnmappedOperation(f"S3 bucket {method} ?{'&'.join(sorted(keys))}")
    if method in ("GET", "HEAD") and not keys - {"partNumber"}:
        return f"{method.title()}Object", [Permission("s3:GetObject", object_arn)]
    if method in ("GET", "HEAD") and not keys - {"partNumber", "versionId"}:
        return f"{method.title()}Object", [Permission("s3:GetObjectVersion", object_arn)]
    if method == "PUT" and not keys:
        source = request.header("x-amz-copy-source")
        if source:
            source_arn = f"arn:{PARTITION}:s3:::{unquote(source.lstrip('/').split('?')[0])}"
            return "CopyObject", [
                Permission("s3:PutObject", object_arn),
                Permission("s3:GetObject", source_arn),
            ]
        return "PutObject", [Permission("s3:PutObject", object_arn)]
    if method == "PUT" and keys == {"partNumber", "uploadId"}:
        return "UploadPart", [Permission("s3:PutObject", object_arn)]
    if method == "POST" and keys == {"uploads"}:
        return "CreateMultipartUpload", [Permission("s3:PutObject", object_arn)]
    if method == "POST" and keys == {"uploadId"}:
        return "CompleteMultipartUpload", [Permission("s3:PutObject", object_arn)]
    if method == "DELETE" and keys == {"uploadId"}:
        return "AbortMultipartUpload", [Permission("s3:AbortMultipartUpload", object_arn)]
    if method == "DELETE" and not keys:
        return "DeleteObject", [Permission("s3:DeleteObject", object_arn)]
    raise UnmappedOperation(f"S3 object {method} ?{'&'.join(sorted(keys))}")


def permissions_for(
    request: RecordedRequest, account: str = ACCOUNT
) -> tuple[str, list[Permission]]:
    """The operation a request performs and what IAM evaluates for it.

    Raises UnmappedOperation for anything the table does not know.
    """
    service, region = request.signing_service, request.region
    if not service:
        raise UnmappedOperation("unsigned request")
    target = request.header("X-Amz-Target")
    path = urlsplit(request.url).path
    if target:
        op = target.rpartition(".")[2]
        mapper = JSON_OPERATIONS.get((service, op))
        if mapper is None:
            raise UnmappedOperation(f"{service} {op}")
        try:
            return op, mapper(op, request.json_body, region, account)
        except (KeyError, ValueError) as error:
            raise UnmappedOperation(f"{service} {op}: {error}") from error
    if service == "s3":
        return _s3(request)
    if service == "lambda":
        match = re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations", path)
        if match and request.method == "POST":
            name = unquote(match[1])
            arn = (
                name
                if name.startswith("arn:")
                else _arn("lambda", region, account, f"function:{name}")
            )
            qualifier = parse_qs(urlsplit(request.url).query).get("Qualifier")
            if qualifier:
                arn = f"{arn}:{qualifier[0]}"
            return "Invoke", [Permission("lambda:InvokeFunction", arn)]
    if service == "sagemaker":  # sagemaker-runtime signs as sagemaker
        match = re.fullmatch(r"/endpoints/([^/]+)/invocations", path)
        if match and request.method == "POST":
            name = unquote(match[1]).lower()
            endpoint = _arn("sagemaker", region, account, f"endpoint/{name}")
            return "InvokeEndpoint", [Permission("sagemaker:InvokeEndpoint", endpoint)]
    raise UnmappedOperation(f"{service} {request.method} {path}")


def sibling(arn: str) -> str | None:
    """The same kind of resource under another name (another bucket, endpoint, state machine,
    function, log group, training job, role), or None for an ARN of another shape."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    resource = parts[5]
    if parts[2] == "s3":
        changed = f"another-{resource}"
    else:
        match = re.match(r"([A-Za-z-]+)([/:])(.+)", resource)
        if match is None:
            return None
        changed = f"{match[1]}{match[2]}another-{match[3]}"
    return ":".join([*parts[:5], changed])


# ============================================================================================
# The deployed principals and their policies
# ============================================================================================


@dataclass
class Principal:
    """One role of the stack and the identity policies it holds."""

    label: str
    role_arn: str
    policies: list[dict[str, Any]]


@dataclass
class Deployment:
    """The stack's roles, and how a request is attributed to one of them."""

    #: role ARN -> principal
    principals: dict[str, Principal]
    #: User-Agent app id -> (role ARN, what acts with it)
    app_ids: dict[str, tuple[str, str]]
    #: (role ARN, state machine) the Step Functions interpreter's requests are attributed to
    interpreter: tuple[str, str] | None = None


def is_allowed(policies: Iterable[Mapping[str, Any]], permission: Permission) -> bool:
    """moto's evaluation of identity policies: an explicit deny wins, else an allow is needed."""
    context = dict(permission.context)
    results = [
        IAMPolicy(json.dumps(policy)).is_action_permitted(
            permission.action, permission.resource, incoming_condition_values=context
        )
        for policy in policies
    ]
    return PermissionResult.DENIED not in results and PermissionResult.PERMITTED in results


def _clients(endpoint_url: str, region: str) -> Callable[[str], Any]:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        region_name=region,
    )
    return lambda service: session.client(service, endpoint_url=endpoint_url)


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(unquote(value))
    return dict(value)


def _role_policies(iam: Any, role_name: str) -> list[dict[str, Any]]:
    documents = []
    for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        policy = iam.get_role_policy(RoleName=role_name, PolicyName=name)
        documents.append(_document(policy["PolicyDocument"]))
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        arn = attached["PolicyArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
        documents.append(_document(document["Document"]))
    return documents


def sagemaker_arn_as_aws_returns_it(arn: str) -> str:
    """SageMaker lower-cases the resource name in the ARNs it returns; moto keeps its case."""
    head, _, resource = arn.rpartition(":")
    return f"{head}:{resource.lower()}"


def load_deployment(endpoint_url: str, stack: str, region: str = "us-east-1") -> Deployment:
    """The stack's roles with their deployed policies, read from the emulator."""
    client = _clients(endpoint_url, region)
    cfn, iam = client("cloudformation"), client("iam")
    resources = [
        summary
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack)
        for summary in page["StackResourceSummaries"]
    ]
    by_type: dict[str, list[tuple[str, str]]] = {}
    for summary in resources:
        by_type.setdefault(summary["ResourceType"], []).append(
            (summary["LogicalResourceId"], str(summary.get("PhysicalResourceId") or ""))
        )
    # ARNs as SageMaker returns them, for the policies that hold moto's (Ref, GetAtt ...Arn).
    arn_fixes = {
        physical: sagemaker_arn_as_aws_returns_it(physical)
        for kind, items in by_type.items()
        if kind.startswith("AWS::SageMaker::")
        for _, physical in items
        if physical.startswith("arn:")
    }

    principals: dict[str, Principal] = {}

    def add_principal(role_arn: str, label: str) -> None:
        if role_arn in principals:
            return
        text = json.dumps(_role_policies(iam, role_arn.rpartition("/")[2]))
        for moto_arn, aws_arn in arn_fixes.items():
            text = text.replace(json.dumps(moto_arn)[1:-1], json.dumps(aws_arn)[1:-1])
        principals[role_arn] = Principal(label, role_arn, json.loads(text))

    app_ids: dict[str, tuple[str, str]] = {}

    def attribute(app_id: str, role_arn: str, via: str) -> None:
        if app_id in app_ids and app_ids[app_id][0] != role_arn:
            raise AssertionError(f"two principals share the User-Agent app id {app_id}")
        app_ids[app_id] = (role_arn, via)

    for logical_id, role_name in by_type.get("AWS::IAM::Role", []):
        role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
        add_principal(role_arn, logical_id)
        # Any role of the stack may be a training job's or a model's: SageMaker's requests name it.
        attribute(app_id_for(role_arn), role_arn, "SageMaker")
    lambda_client = client("lambda")
    for logical_id, name in by_type.get("AWS::Lambda::Function", []):
        role_arn = lambda_client.get_function_configuration(FunctionName=name)["Role"]
        add_principal(role_arn, role_arn.rpartition("/")[2])
        attribute(app_id_for(name), role_arn, f"Lambda {logical_id}")
    interpreter = None
    machines = by_type.get("AWS::StepFunctions::StateMachine", [])
    sfn = client("stepfunctions")
    for logical_id, arn in machines:
        role_arn = sfn.describe_state_machine(stateMachineArn=arn)["roleArn"]
        add_principal(role_arn, role_arn.rpartition("/")[2])
        if len(machines) == 1:
            interpreter = (role_arn, f"Step Functions {logical_id}")
    return Deployment(principals, app_ids, interpreter)


# ============================================================================================
# The audit
# ============================================================================================


@dataclass(frozen=True, order=True)
class Check:
    principal: str
    via: str
    operation: str
    permission: Permission
    allowed: bool


@dataclass
class AuditReport:
    #: (principal, via, operation, permission) of each distinct recorded call -> count
    calls: Counter[tuple[str, str, str, Permission]] = field(default_factory=Counter)
    #: recorded calls, evaluated (must be allowed)
    call_checks: list[Check] = field(default_factory=list)
    #: negative probes, evaluated (must be denied): (principal, why, permission, allowed)
    probes: list[tuple[str, str, Permission, bool]] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    #: findings listed in OPEN_GAPS
    open_gaps: list[str] = field(default_factory=list)
    #: requests of no principal of the stack (the deployer), by User-Agent product
    deployer_requests: Counter[str] = field(default_factory=Counter)

    @property
    def principals_with_calls(self) -> set[str]:
        return {principal for principal, *_ in self.calls}

    def render(self) -> str:
        lines = ["IAM audit of the recorded requests", "", "Calls (must be allowed):"]
        width = max((len(f"{c.principal} ({c.via})") for c in self.call_checks), default=10)
        for check in sorted(self.call_checks):
            count = self.calls[(check.principal, check.via, check.operation, check.permission)]
            verdict = "allowed" if check.allowed else "DENIED"
            who = f"{check.principal} ({check.via})".ljust(width)
            lines.append(f"  {who}  {check.operation} x{count}: {check.permission} -> {verdict}")
        lines += ["", "Probes (must be denied):"]
        for principal, why, permission, allowed in sorted(self.probes):
            verdict = "ALLOWED" if allowed else "denied"
            lines.append(f"  {principal}: {why}: {permission} -> {verdict}")
        deployer = ", ".join(f"{k} x{v}" for k, v in sorted(self.deployer_requests.items()))
        lines += ["", f"Not audited (the deployer's requests): {deployer or 'none'}"]
        if self.open_gaps:
            lines += ["", "Open gaps (OPEN_GAPS):", *(f"  {gap}" for gap in self.open_gaps)]
        lines += ["", "Findings:", *(f"  {f}" for f in self.findings or ["none"])]
        return "\n".join(lines)


def _open_gap(principal: str, action: str) -> tuple[str, str] | None:
    """The OPEN_GAPS entry for ``action`` denied to ``principal``, if listed."""
    return next(
        (key for key in OPEN_GAPS if key[0] in principal and key[1] == action),
        None,
    )


def audit_requests(
    requests: Sequence[RecordedRequest],
    deployment: Deployment,
    account: str = ACCOUNT,
    *,
    open_gaps: bool = True,
) -> AuditReport:
    """Attribute, map and evaluate ``requests``; probe what each principal must not do.

    With ``open_gaps`` the findings listed in :data:`OPEN_GAPS` are reported apart (and a
    listed gap that does not occur is a finding).
    """
    report = AuditReport()
    for request in requests:
        attributed = None
        app_id = request.app_id
        if app_id is not None:
            attributed = deployment.app_ids.get(app_id)
            if attributed is None:
                report.findings.append(
                    f"request by an unknown principal (User-Agent app/{app_id}): "
                    f"{request.describe()}"
                )
                continue
        elif request.access_key == INTERPRETER_ACCESS_KEY:
            attributed = deployment.interpreter
            if attributed is None:
                report.findings.append(
                    "request by the Step Functions interpreter, whose state machine cannot be "
                    f"told (the stack has no single state machine): {request.describe()}"
                )
                continue
        else:
            product = request.header("User-Agent").split(" ", 1)[0] or "(no User-Agent)"
            report.deployer_requests[product] += 1
            continue
        role_arn, via = attributed
        label = deployment.principals[role_arn].label
        try:
            operation, permissions = permissions_for(request, account)
        except UnmappedOperation as error:
            report.findings.append(
                f"{label} ({via}) made a request the audit cannot map to IAM ({error}): add it "
                f"to JSON_OPERATIONS or permissions_for: {request.describe()}"
            )
            continue
        for permission in permissions:
            report.calls[(label, via, operation, permission)] += 1

    by_label = {p.label: p for p in deployment.principals.values()}
    seen_gaps: set[tuple[str, str]] = set()
    performed: dict[str, set[Permission]] = {}
    for label, via, operation, permission in report.calls:
        performed.setdefault(label, set()).add(permission)
        allowed = is_allowed(by_label[label].policies, permission)
        report.call_checks.append(Check(label, via, operation, permission, allowed))
        if allowed:
            continue
        message = f"NOT ALLOWED: {label} ({via}) calls {operation}: {permission}"
        gap = _open_gap(label, permission.action) if open_gaps else None
        if gap is None:
            report.findings.append(message)
        else:
            seen_gaps.add(gap)
            report.open_gaps.append(f"{message} -- {OPEN_GAPS[gap]}")

    def probe(label: str, why: str, permission: Permission) -> None:
        allowed = is_allowed(by_label[label].policies, permission)
        report.probes.append((label, why, permission, allowed))
        if allowed:
            report.findings.append(f"TOO BROAD: {label} may {permission} ({why})")

    for label, done in sorted(performed.items()):
        for permission in sorted(done):
            other = sibling(permission.resource)
            if other is not None:
                probe(
                    label,
                    "another resource",
                    Permission(permission.action, other, permission.context),
                )
    exclusive = {
        (label, permission)
        for label, done in performed.items()
        for permission in done
        if permission.action in EXCLUSIVE_ACTIONS
    }
    for owner, permission in sorted(exclusive):
        for label in sorted(by_label):
            if label != owner and permission not in performed.get(label, set()):
                probe(label, f"the job of {owner}", permission)

    if open_gaps:
        for key in OPEN_GAPS:
            if key not in seen_gaps:
                report.findings.append(
                    f"OPEN_GAPS lists {key} but the audit no longer finds it: remove the entry"
                )
    return report


def audit(endpoint_url: str, stack: str, region: str = "us-east-1") -> AuditReport:
    """Stop the emulator's recording and audit it against the stack's deployed policies."""
    requests = fetch_recording(endpoint_url)
    return audit_requests(requests, load_deployment(endpoint_url, stack, region))
