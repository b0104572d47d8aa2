"""The state machine sends what the SDK v2's ``fit()`` sent, for every recorded configuration.

``tests/parity/sdk_training_requests.json`` holds CreateTrainingJob requests recorded from
sagemaker 2.257.7 (see tests/parity/README.md). For each configuration we build the same
``RLEstimator`` in a stack of the same region, resolve the request its task sends, and compare.

Two differences are deliberate and normalised here, each checked on its own:
- the job name: the SDK names one job per ``fit()``; the state machine names one per execution
  (``$$.Execution.Name``, ``<base>-<timestamp>`` when the deploy starts it);
- the source location: the SDK uploads ``sourcedir.tar.gz`` under the job name, we upload a
  content-addressed CDK asset; the archive's members must be the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from cdk_sagemaker_rl import RLEstimator
from cdk_sagemaker_rl.training.arguments import channels

PARITY = Path(__file__).resolve().parent / "parity" / "sdk_training_requests.json"
FIXTURE = json.loads(PARITY.read_text())
CASES = {case["name"]: case for case in FIXTURE["configurations"]}
JOB = "<JOB_NAME>"
SOURCE = "<SOURCE>"
PARTITIONS = {"cn-": ("aws-cn", "amazonaws.com.cn"), "us-gov-": ("aws-us-gov", "amazonaws.com")}


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parity-src")
    for relative in FIXTURE["fixture_files"]:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {relative}\n")
    return root


def materialise(value: Any, region: str) -> Any:
    """Resolve the intrinsics our template uses, the way CloudFormation would in ``region``."""
    partition, suffix = next(
        (v for prefix, v in PARTITIONS.items() if region.startswith(prefix)),
        ("aws", "amazonaws.com"),
    )
    if isinstance(value, list):
        return [materialise(v, region) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and str(value["Ref"]).startswith("AWS::"):
        return {"AWS::Region": region, "AWS::Partition": partition, "AWS::URLSuffix": suffix}[
            value["Ref"]
        ]
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return str(separator).join(str(materialise(p, region)) for p in parts)
    if set(value) == {"Fn::Sub"} and "cdk-hnb659fds-assets" in value["Fn::Sub"]:
        return SOURCE
    return {k: materialise(v, region) for k, v in value.items()}


def our_request(case: dict[str, Any], tree: Path) -> tuple[dict[str, Any], RLEstimator]:
    kwargs = dict(case["estimator_kwargs"])
    if "source_dir" in kwargs:
        kwargs["source_dir"] = str(tree / kwargs["source_dir"])
    else:
        kwargs["entry_point"] = str(tree / kwargs["entry_point"])
    if "dependencies" in kwargs:
        kwargs["dependencies"] = [str(tree / d) for d in kwargs["dependencies"]]
    kwargs.setdefault("output_path", f"s3://{case['session_default_bucket']}/")
    if case["fit"]["job_name"]:
        kwargs["job_name"] = case["fit"]["job_name"]
    app = cdk.App()
    stack = cdk.Stack(
        app, "Parity", env=cdk.Environment(account=FIXTURE["account"], region=case["region"])
    )
    # Parity concerns the request, not a deploy-time wait: allow the SDK's 24 h default.
    estimator = RLEstimator(stack, "Estimator", role=case["role"], **kwargs)
    estimator.step.add_inputs(channels(case["fit"]["inputs"]))
    request = materialise(stack.resolve(estimator.training_request()), case["region"])
    assert request.pop("TrainingJobName.$") == "$$.Execution.Name"
    request["TrainingJobName"] = JOB
    hps = request["HyperParameters"]
    assert hps.pop("sagemaker_job_name.$") == "States.Format('\"{}\"', $$.Execution.Name)"
    hps["sagemaker_job_name"] = json.dumps(JOB)
    return request, estimator


def sdk_request(case: dict[str, Any]) -> dict[str, Any]:
    request = json.loads(json.dumps(case["request"]))
    request["TrainingJobName"] = JOB
    request["HyperParameters"]["sagemaker_job_name"] = json.dumps(JOB)
    return dict(request)


def normalise_source(request: dict[str, Any], *, ours: bool) -> None:
    def is_source(uri: str) -> bool:
        if ours:  # the CDK asset in the bootstrap bucket, or its unresolved Fn::Sub
            return uri == SOURCE or uri.startswith("s3://cdk-hnb659fds-assets-")
        return uri.startswith("s3://") and uri.endswith("/source/sourcedir.tar.gz")

    hps = request["HyperParameters"]
    submit = json.loads(hps["sagemaker_submit_directory"])
    if submit.startswith("s3://") or submit == SOURCE:
        assert is_source(submit), submit
        hps["sagemaker_submit_directory"] = json.dumps(SOURCE)
    for channel in request.get("InputDataConfig", []):
        if channel["ChannelName"] == "code":
            s3 = channel["DataSource"]["S3DataSource"]
            assert is_source(s3["S3Uri"]), s3
            s3["S3Uri"] = SOURCE
    request.get("InputDataConfig", []).sort(key=lambda c: c["ChannelName"])


def test_the_fixture_covers_enough_configurations() -> None:
    assert len(CASES) >= 20
    toolkits = {c["estimator_kwargs"].get("toolkit") for c in CASES.values()}
    assert {"coach", "ray", None} <= toolkits
    assert len({c["region"] for c in CASES.values()}) >= 6


@pytest.mark.parametrize("name", sorted(CASES))
def test_create_training_job_request_equals_the_sdk(name: str, source_tree: Path) -> None:
    case = CASES[name]
    ours, estimator = our_request(case, source_tree)
    theirs = sdk_request(case)
    normalise_source(ours, ours=True)
    normalise_source(theirs, ours=False)
    # Hyperparameter values: identical strings; containers compared decoded, because the fixture
    # stores the arguments with sorted keys and a dict's key order is part of its JSON text.
    our_hps, sdk_hps = ours.pop("HyperParameters"), theirs.pop("HyperParameters")
    assert our_hps.keys() == sdk_hps.keys()
    for key, value in sdk_hps.items():
        if isinstance(json.loads(value), dict):
            assert json.loads(our_hps[key]) == json.loads(value), key
        else:
            assert our_hps[key] == value, key
    assert ours == theirs

    uploads = case["source_uploads"]
    if uploads:
        expected = {m.rstrip("/") for m in uploads[0]["archive_members"]}
        assert set(estimator.source_bundle.members) == expected
