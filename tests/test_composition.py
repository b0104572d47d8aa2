"""The library composed the way platform teams ship: stages, CDK Pipelines, cross-stack grants.

One app, synthesized once: a ``Stage`` with a model stack (an estimator with the team's own
execution role and key) and a consumer stack whose function is granted the endpoint and the
training workflow across stacks, deployed by a CDK Pipelines ``CodePipeline``. Every template of
the stage must lint clean, and the cross-stack references must be real exports/imports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import pipelines
from constructs import Construct

from cdk_sagemaker_rl import ContainerImage, RLEndpoint, RLEstimator
from tests.test_reference_app import cfn_lint

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cartpole"
ENV = cdk.Environment(account="123456789012", region="eu-west-1")


class ModelStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = kms.Key(self, "Key", enable_key_rotation=True)
        role = iam.Role(
            self, "TeamRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")
        )
        self.estimator = RLEstimator(
            self,
            "Policy",
            entry_point="train.py",
            source_dir=str(EXAMPLE),
            image_uri=ContainerImage.pytorch_training("2.8"),
            train_instance_type="ml.m5.large",
            train_max_run=cdk.Duration.hours(1),
            role=role,
            output_kms_key=key,
            bucket_encryption_key=key,
        )
        self.estimator.fit()
        self.endpoint: RLEndpoint = self.estimator.deploy(
            "ml.c5.large",
            image=ContainerImage.pytorch_inference("2.6"),
            entry_point="inference.py",
            kms_key=key,
        )


class ConsumerStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, model: ModelStack, **kw: Any
    ) -> None:
        super().__init__(scope, construct_id, **kw)
        self.function = lambda_.Function(
            self,
            "Caller",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
        )
        model.endpoint.grant_invoke(self.function)
        model.endpoint.grant_predict(self.function)
        model.estimator.grant_start_training(self.function)


class RLStage(cdk.Stage):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.model = ModelStack(self, "Model")
        self.consumer = ConsumerStack(self, "Consumer", model=self.model)


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    outdir = tmp_path_factory.mktemp("composition")
    app = cdk.App(outdir=str(outdir))
    pipeline_stack = cdk.Stack(app, "Delivery", env=ENV)
    pipeline = pipelines.CodePipeline(
        pipeline_stack,
        "Pipeline",
        synth=pipelines.ShellStep(
            "Synth",
            input=pipelines.CodePipelineSource.connection(
                "example/rl-app",
                "main",
                connection_arn="arn:aws:codestar-connections:eu-west-1:123456789012:connection/x",
            ),
            commands=["pip install -r requirements.txt", "npx cdk synth"],
        ),
    )
    pipeline.add_stage(RLStage(app, "Prod", env=ENV))
    app.synth()
    yield outdir


def _template(assembly: Path, stack: str) -> dict[str, Any]:
    [path] = list(assembly.rglob(f"{stack}*.template.json"))
    return dict(json.loads(path.read_text()))


def _policies(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_pipeline_deploys_the_stage_and_publishes_our_assets(assembly: Path) -> None:
    pipeline = _template(assembly, "Delivery")
    stages = next(
        r for r in pipeline["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"
    )["Properties"]["Stages"]
    names = [stage["Name"] for stage in stages]
    assert "Assets" in names and "Prod" in names
    deploys = [a["Name"] for s in stages if s["Name"] == "Prod" for a in s["Actions"]]
    assert any(name.startswith("Model") for name in deploys)
    assert any(name.startswith("Consumer") for name in deploys)
    assets = {a["Name"] for s in stages if s["Name"] == "Assets" for a in s["Actions"]}
    # The source bundle and the bundled functions are file assets the pipeline publishes; every
    # function runs from the one handler asset, published once (named after its first user).
    assert "Policy_SourceCode_Default" in assets
    assert len([name for name in assets if name.endswith("Function_Code")]) == 1, sorted(assets)


def test_grants_cross_the_stack_boundary_as_imports(assembly: Path) -> None:
    consumer = _policies(_template(assembly, "ProdConsumer"))
    by_action = {
        json.dumps(s["Action"]): json.dumps(s["Resource"]) for s in consumer if "Resource" in s
    }
    assert "Fn::ImportValue" in by_action['"sagemaker:InvokeEndpoint"']
    assert "Fn::ImportValue" in by_action['"lambda:InvokeFunction"'] or any(
        "lambda:InvokeFunction" in k and "Fn::ImportValue" in v for k, v in by_action.items()
    )
    assert any(
        "states:StartExecution" in k and "Fn::ImportValue" in v for k, v in by_action.items()
    )


def test_the_teams_own_role_gets_no_policy_from_us(assembly: Path) -> None:
    model = _template(assembly, "ProdModel")
    team_role = next(k for k in model["Resources"] if k.startswith("TeamRole"))
    attached = [
        r
        for r in model["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": team_role} in r["Properties"]["Roles"]
    ]
    assert attached == []
    training = json.dumps(model["Resources"])
    assert '"RoleArn":"' in training.replace("\\", "") and team_role in training


def test_every_template_of_the_stage_lints_clean(assembly: Path) -> None:
    # The pipeline's own stack is aws-cdk-lib's (cfn-lint finds E3703 style notes in it).
    templates = sorted(str(p) for p in assembly.rglob("Prod*.template.json"))
    assert len(templates) == 2
    result = cfn_lint([Path(t) for t in templates])
    assert result.returncode == 0, result.stdout + result.stderr
