"""The local-mode CLI's reporting and options, without a deploy (fast: no emulator, no cdk).

When ``cdk bootstrap`` is skipped. The end-to-end runs are
tests/local/test_local_mode.py and test_serving_updates.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cdk_sagemaker_rl.local.cli import bootstrap
from cdk_sagemaker_rl.local.cli.state import State


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
