"""The reference app synthesizes, and lints clean, for every partition it claims to support.

Region-bound synths (``-c region=...``) bake the region's image registry account, partition and
URL suffix into the template; cfn-lint with ``--regions`` then checks that every resource type,
property and value exists *in that region* (the CloudFormation registry differs per region:
China and GovCloud lack many SageMaker types). The environment-agnostic synth (the session's
``reference_out``) has to deploy anywhere, so it is linted against all of the regions at once.

To keep the suite fast, each region is synthesized once, in-process (``build_app``, as app.py
does), for the ``dev`` environment only; cfn-lint runs once per region, all in parallel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from app import build_app
from cdk_sagemaker_rl import ValidationError
from tests.conftest import ROOT, cdk_json_context, load_template

REGIONS = ("us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1")
STACK = "RLCartPole-dev"
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")
PARTITIONS = {
    "us-east-1": "aws",
    "eu-west-1": "aws",
    "cn-north-1": "aws-cn",
    "us-gov-west-1": "aws-us-gov",
}


def cfn_lint(templates: list[Path], regions: tuple[str, ...]) -> subprocess.Popen[str]:
    """cfn-lint started from the repo root (so .cfnlintrc.yaml applies); every level reported."""
    return subprocess.Popen(
        [CFN_LINT, "--format", "parseable", "--regions", *regions, "--", *map(str, templates)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout + stderr


@pytest.fixture(scope="module")
def regional_out(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """region -> the synth's output folder, or the error that stopped the synth."""
    outputs: dict[str, Path | str] = {}
    base = {**cdk_json_context(), "environment": "dev"}
    for region in REGIONS:
        outdir = tmp_path_factory.mktemp(f"synth-{region}")
        try:
            build_app({**base, "region": region}, outdir=str(outdir)).synth()
        except ValidationError as err:
            outputs[region] = f"ValidationError: {err}"
        except Exception as err:  # jsii wraps errors raised during synth
            outputs[region] = "".join(traceback.format_exception_only(err)).strip()
        else:
            outputs[region] = outdir
    return outputs


@pytest.fixture(scope="module")
def lint_results(
    regional_out: dict[str, Path | str], reference_out: Path
) -> dict[str, tuple[int, str]]:
    """cfn-lint of every regional template (its own region) and of the agnostic ones (all)."""
    running = {
        region: cfn_lint([out / f"{STACK}.template.json"], (region,))
        for region, out in regional_out.items()
        if isinstance(out, Path)
    }
    running["agnostic"] = cfn_lint(sorted(reference_out.glob("*.template.json")), REGIONS)
    return {name: finish(process) for name, process in running.items()}


@pytest.mark.parametrize("region", REGIONS)
def test_reference_app_synthesizes_for_the_region(
    regional_out: dict[str, Path | str], region: str
) -> None:
    out = regional_out[region]
    assert isinstance(out, Path), f"synth for {region} failed: {out}"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"][STACK]["environment"] == f"aws://unknown-account/{region}"
    assert not (out / "RLCartPole-prod.template.json").exists()


@pytest.mark.parametrize("region", REGIONS)
def test_regional_template_is_bound_to_its_partition(
    regional_out: dict[str, Path | str], region: str
) -> None:
    """No ARN of another partition and no endpoint of another region's URL suffix leaks in."""
    out = regional_out[region]
    assert isinstance(out, Path), out
    text = json.dumps(load_template(out, STACK))
    partition = PARTITIONS[region]
    for other in {"aws", "aws-cn", "aws-us-gov"} - {partition}:
        assert f"arn:{other}:" not in text, other
    if partition == "aws-cn":
        assert "amazonaws.com.cn" in text or "AWS::URLSuffix" in text


@pytest.mark.parametrize("target", [*REGIONS, "agnostic"])
def test_cfn_lint_is_clean_for_the_region(
    lint_results: dict[str, tuple[int, str]], target: str
) -> None:
    assert target in lint_results, f"no template for {target} (synth failed)"
    code, output = lint_results[target]
    assert (code, output.strip()) == (0, ""), output


# ------------------------------------------------------------------------- test the tests
def test_cfn_lint_catches_region_specific_errors_and_warnings(tmp_path: Path) -> None:
    """The same invocation (repo config, --regions) on a small template: SageMaker
    InferenceComponent exists in us-east-1 but not in cn-north-1 (E3006, an error only there);
    an unused parameter (W2001) is a warning in any region and fails the clean check too."""
    template = {
        "Parameters": {"Unused": {"Type": "String", "Default": "x"}},
        "Resources": {
            "Component": {
                "Type": "AWS::SageMaker::InferenceComponent",
                "Properties": {
                    "EndpointName": "cartpole",
                    "Specification": {"ModelName": "cartpole"},
                },
            }
        },
    }
    path = tmp_path / "mutated.template.json"
    path.write_text(json.dumps(template))
    china, virginia = cfn_lint([path], ("cn-north-1",)), cfn_lint([path], ("us-east-1",))
    (china_code, china_out), (virginia_code, virginia_out) = finish(china), finish(virginia)
    assert china_code != 0 and "E3006" in china_out and "W2001" in china_out, china_out
    assert virginia_code != 0 and "W2001" in virginia_out, virginia_out
    assert "E3006" not in virginia_out, virginia_out
