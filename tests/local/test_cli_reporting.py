"""The local-mode CLI's reporting and options, without a deploy (fast: no emulator, no cdk).

What a deploy prints (the reward gate's verdicts, a failure's reasons in full), how ``--context``
reaches ``cdk deploy``, and when ``cdk bootstrap`` is skipped. The end-to-end runs are
tests/local/test_local_mode.py and test_serving_updates.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cdk_sagemaker_rl.local import cli
from cdk_sagemaker_rl.local.cli import bootstrap, commands
from cdk_sagemaker_rl.local.cli.arguments import parse_args
from cdk_sagemaker_rl.local.cli.deployed_stack import (
    failure_message,
    gate_verdict_lines,
    reasons_of_events,
)
from cdk_sagemaker_rl.local.cli.messages import LocalModeError
from cdk_sagemaker_rl.local.cli.state import State

PASSED = "passed: eval_reward_mean = 500.0, required >= 450 (20 episodes, seed 0)"
#: A reward gate's failure as its custom resource reports it: ~400 characters, to be kept whole.
GATE_FAILED = (
    "Reward gate failed for training job cartpole-dev-2026-11-30-19-58-19-307: "
    "eval_reward_mean = 9.35, required >= 450. The endpoint keeps serving the model of the "
    "previous deployment; the candidate model stays in the artifact bucket for inspection. "
    "Retrain with more timesteps (e.g. --hyperparameters '{\"total_timesteps\": 10240}') or "
    "lower the threshold with --context gate_threshold=<reward> to accept it. END"
)
OUTPUTS = {
    "CartPoleServingEndpointName5E0639CF": "RLCartPoledev-CartPole-Serving-58C18C56",
    "CartPoleServingPredictFunctionNameBB0926F3": "RLCartPole-dev-Predict",
    "CartPoleGateVerdict1A2B3C4D": PASSED,
}


def _event(logical_id: str, status: str, reason: str | None = None, **extra: str) -> dict[str, Any]:
    event = {"LogicalResourceId": logical_id, "ResourceStatus": status, **extra}
    if reason is not None:
        event["ResourceStatusReason"] = reason
    event.setdefault("ResourceType", "Custom::RLRewardGate")
    return event


def _stack_event(status: str, reason: str | None = None) -> dict[str, Any]:
    return _event("RLCartPole-dev", status, reason, ResourceType="AWS::CloudFormation::Stack")


def test_gate_verdicts_are_printed_one_line_each() -> None:
    outputs = {**OUTPUTS, "OtherGateVerdictFFFF0000": "failed: not evaluated"}
    assert gate_verdict_lines(outputs) == [
        f"gate verdict: {PASSED}",
        "gate verdict: failed: not evaluated",
    ]
    assert gate_verdict_lines({"CartPoleServingEndpointName5E0639CF": "e"}) == []


def test_deploy_and_demo_print_the_gate_verdict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    deployed: list[dict[str, Any]] = []

    def fake_deploy(state: State, **options: Any) -> dict[str, str]:
        deployed.append(options)
        return dict(OUTPUTS)

    monkeypatch.setattr(cli, "deploy", fake_deploy)
    monkeypatch.setattr(cli, "predict", lambda state, observation: {"predictions": [0]})
    monkeypatch.setattr(cli, "play", lambda state, episodes: [500.0] * episodes)
    for command in ("deploy", "demo"):
        code = cli.main([command, "--state-dir", str(tmp_path), "--context", "gate_threshold=450"])
        assert code == 0
        assert f"gate verdict: {PASSED}" in capsys.readouterr().out.splitlines()
    assert deployed[0]["context"] == {"gate_threshold": "450"}


def test_a_failed_deploy_shows_the_cause_in_full(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert len(GATE_FAILED) >= 400
    custom = (
        f"Received response status [FAILED] from custom resource. Message returned: {GATE_FAILED}"
    )
    events = [  # newest first, as DescribeStackEvents returns them
        _stack_event("UPDATE_ROLLBACK_COMPLETE"),
        _event("CartPoleGate1234ABCD", "UPDATE_COMPLETE"),
        _stack_event("UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: "),
        _event("CartPoleServingEndpoint", "UPDATE_FAILED", "Resource update cancelled"),
        _event("CartPoleGate1234ABCD", "UPDATE_FAILED", f"{custom} (RequestId: 1)"),
        _event("CartPoleGate1234ABCD", "UPDATE_IN_PROGRESS"),
        _stack_event("UPDATE_IN_PROGRESS", "User Initiated"),
        # an earlier deploy's failure: not this one's reason
        _event("CartPoleDeployTimeCompletion", "CREATE_FAILED", "an old training error"),
        _stack_event("CREATE_IN_PROGRESS", "User Initiated"),
    ]
    reasons = reasons_of_events(events)
    assert reasons == [f"CartPoleGate1234ABCD: {custom} (RequestId: 1)"]
    message = failure_message(1, reasons)
    assert GATE_FAILED in message

    def failing_deploy(state: State, **options: Any) -> dict[str, str]:
        raise LocalModeError(message)

    monkeypatch.setattr(cli, "deploy", failing_deploy)
    assert cli.main(["deploy", "--state-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert GATE_FAILED in captured.out + captured.err


def test_the_stack_summary_is_the_reason_only_when_no_resource_gave_one() -> None:
    events = [
        _stack_event("ROLLBACK_FAILED", "The following resource(s) failed to delete: [A]. "),
        _event("B", "CREATE_FAILED", "Resource creation cancelled"),
        _stack_event("CREATE_IN_PROGRESS", "User Initiated"),
    ]
    # A cancelled resource is all there is: shown rather than nothing.
    assert reasons_of_events(events) == ["B: Resource creation cancelled"]
    assert reasons_of_events([events[0], events[2]]) == [
        "RLCartPole-dev: The following resource(s) failed to delete: [A]. "
    ]
    many = [f"R{i}: {'x' * 500}" for i in range(12)]
    message = failure_message(1, many)
    assert all(reason in message for reason in many[:10])
    assert "2 more" in message


def test_context_options_reach_cdk_deploy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[Sequence[str]] = []

    def fake_run_cdk(state: State, args: Sequence[str], **options: Any) -> tuple[int, list[str]]:
        calls.append(list(args))
        state.outputs.write_text('{"RLCartPole-dev": {}}')
        return 0, []

    monkeypatch.setattr(commands, "require_local_extra", lambda: None)
    monkeypatch.setattr(commands, "start_emulator", lambda state: 1)
    monkeypatch.setattr(commands, "bootstrap", lambda state, pid, fresh: None)
    monkeypatch.setattr(commands, "run_cdk", fake_run_cdk)
    args = parse_args(
        [
            "deploy",
            "--context",
            "gate_threshold=450",
            "--context",
            "note=a=b",
            "--hyperparameters",
            '{"total_timesteps": 1024}',
            "--source-dir",
            str(tmp_path),
        ]
    )
    commands.deploy(
        State(tmp_path / "state", 1),
        hyperparameters=args.hyperparameters,
        source_dir=args.source_dir,
        context=args.context,
    )
    [deploy_args] = calls
    pairs = [deploy_args[i + 1] for i, arg in enumerate(deploy_args) if arg == "--context"]
    assert pairs == [
        "gate_threshold=450",
        "note=a=b",
        'hyperparameters={"total_timesteps": 1024}',
        f"source_dir={tmp_path.resolve()}",
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["--context", "target=aws"],
        ["--context", "environment=prod"],
        ["--context", "no-equals"],
        ["--context", "a=1", "--context", "a=2"],
        ["--context", 'hyperparameters={"x": 1}', "--hyperparameters", "{}"],
    ],
)
def test_context_options_local_mode_cannot_honour_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["deploy", *argv])


def test_the_expected_bootstrap_version_is_read_from_the_cli(tmp_path: Path) -> None:
    if bootstrap.BOOTSTRAP_TEMPLATE.exists():
        version = bootstrap.expected_bootstrap_version()
        assert version is not None and version > 0
        assert f"Value: '{version}'" in bootstrap.BOOTSTRAP_TEMPLATE.read_text()
    template = tmp_path / "bootstrap-template.yaml"
    template.write_text(
        "Resources:\n  CdkBootstrapVersion:\n    Properties:\n      Value: '7'\n"
        "Outputs:\n  BucketName:\n    Value: b\n"
        "  BootstrapVersion:\n    Description: the version\n    # a comment\n    Value: '41'\n"
    )
    assert bootstrap.expected_bootstrap_version(template) == 41
    assert bootstrap.expected_bootstrap_version(tmp_path / "missing.yaml") is None


@pytest.mark.parametrize(
    ("held", "fresh", "runs"),
    [(33, False, False), (32, False, True), (None, False, True), (33, True, True)],
)
def test_cdk_bootstrap_runs_unless_the_emulator_holds_the_expected_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, held: int | None, fresh: bool, runs: bool
) -> None:
    calls: list[Sequence[str]] = []

    def fake_run_cdk(state: State, args: Sequence[str], **options: Any) -> tuple[int, list[str]]:
        calls.append(args)
        return 0, []

    monkeypatch.setattr(bootstrap, "expected_bootstrap_version", lambda: 33)
    monkeypatch.setattr(bootstrap, "bootstrapped_version", lambda state: held)
    monkeypatch.setattr(bootstrap, "run_cdk", fake_run_cdk)
    bootstrap.bootstrap(State(tmp_path, 1), 1, fresh=fresh)
    assert bool(calls) == runs
