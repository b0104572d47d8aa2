"""Local mode from the CLI: failures a user meets, each with a clear message and no process left.

A deploy whose training script raises fails with the script's error; a second deploy while one
runs, a port in use, a missing ``local`` extra and an emulator that dies mid-deploy are each
refused or reported clearly. The happy path (deploy, serve, redeploy under load, destroy) is
tests/local/test_serving_updates.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from local_cli import ROOT, deploy, free_port, local, processes_using, wait_until_gone

pytestmark = pytest.mark.integration


def test_a_failing_training_script_fails_the_deploy_with_its_error(tmp_path: Path) -> None:
    source = tmp_path / "broken"
    source.mkdir()
    (source / "train.py").write_text(
        "import sys\n"
        "print('starting', flush=True)\n"
        "raise ValueError('reward shaping is broken: expected 4 observations, got 3')\n"
    )
    (source / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")
    state = tmp_path / "state"
    deployed, port = deploy(state, "--source-dir", str(source))
    try:
        assert deployed.returncode != 0
        assert "reward shaping is broken: expected 4 observations, got 3" in deployed.stderr
        assert "ValueError" in deployed.stderr
    finally:
        local(state, port, "destroy")
    assert wait_until_gone(state) == []


def test_a_second_deploy_while_one_runs_is_refused(tmp_path: Path) -> None:
    import fcntl

    state = tmp_path / "state"
    state.mkdir()
    with open(state / "deploy.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("pid 1: deploy")
        lock.flush()
        result = local(state, free_port(), "deploy", timeout=60)
    assert result.returncode == 1
    assert "already running" in result.stderr
    assert processes_using(state) == []


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = int(busy.getsockname()[1])
        result = local(state, port, "deploy", timeout=120)
    assert result.returncode == 1
    assert str(port) in result.stderr
    assert "--port" in result.stderr
    assert wait_until_gone(state) == []


def test_a_missing_local_extra_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from cdk_sagemaker_rl.local import cli

    real_find_spec = importlib.util.find_spec

    def without_rl_toolkit(name: str, *args: object) -> object:
        return None if name == "stable_baselines3" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without_rl_toolkit)
    code = cli.main(["deploy", "--state-dir", str(tmp_path / "state"), "--port", str(free_port())])
    assert code == 1
    error = capsys.readouterr().err
    assert "stable_baselines3" in error
    assert "pip install -e '.[local]'" in error
    assert processes_using(tmp_path / "state") == []


def test_an_emulator_that_dies_mid_deploy_fails_the_deploy_clearly(tmp_path: Path) -> None:
    import signal

    state, port = tmp_path / "state", free_port()
    env = {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    deploy = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cdk_sagemaker_rl.local",
            "deploy",
            "--state-dir",
            str(state),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert deploy.stdout is not None
    for line in deploy.stdout:  # wait until the emulator is up and cdk talks to it
        if "bootstrapping" in line:
            break
    pid_file = state / "emulator" / "emulator.pid"
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
    _, err = deploy.communicate(timeout=180)
    assert deploy.returncode == 1
    assert "died during the deploy" in err
    assert wait_until_gone(state) == []
