"""Local mode end to end: the real `cdk` CLI deploys the reference stack into the emulator.

Training really runs (a short PPO budget), the endpoint is really served, and a prediction comes
back through the deployed predict Lambda. The emulator records the requests meanwhile, and the
IAM audit (iam_audit.py) checks that each principal's calls are allowed by its deployed
policies and calls outside its job are not. Then everything is destroyed and no process is left.
A second deploy trains a script that raises, and must fail with the script's error.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import iam_audit
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local(
    state: Path, port: int, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cdk_sagemaker_rl.local",
            *args,
            "--state-dir",
            str(state),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def deploy(state: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """``local ... deploy`` on a free port; the port is picked again if another process took it
    before the emulator could bind it (a busy machine runs other servers). Returns the port."""
    for _ in range(3):
        port = free_port()
        result = local(state, port, "deploy", *args)
        if not (result.returncode == 1 and f"port {port} on 127.0.0.1 is in use" in result.stderr):
            break
    return result, port


def processes_using(state: Path) -> list[str]:
    """Command lines of live processes that mention the state directory (emulator, servers)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(state) in cmdline and status != "Z":
            found.append(cmdline)
    return found


def wait_until_gone(state: Path, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = processes_using(state)
        if not left:
            return []
        time.sleep(0.5)
    return processes_using(state)


def test_deploy_trains_serves_predicts_and_destroys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    # The emulator the deploy starts records every request it serves, for the IAM audit.
    for key, value in iam_audit.recording_environment(tmp_path / "requests.jsonl").items():
        monkeypatch.setenv(key, value)
    deployed, port = deploy(state, "--hyperparameters", '{"total_timesteps": 2048}')
    try:
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        assert "episode_reward_mean" in deployed.stdout  # training progress was shown
        line = next(x for x in deployed.stdout.splitlines() if "sample prediction" in x)
        prediction = json.loads(line.split(": ", 1)[1].replace("'", '"'))
        assert prediction["predictions"][0] in (0, 1)
        assert processes_using(state), "the emulator should be running after a deploy"

        predicted = local(state, port, "predict", "--observation", "[0.1, -0.2, 0.03, 0.4]")
        assert predicted.returncode == 0, predicted.stderr
        assert "'predictions': [" in predicted.stdout

        # Each principal's recorded calls are allowed by its deployed policies, and calls
        # outside its job are not (tests/local/iam_audit.py).
        report = iam_audit.audit(f"http://localhost:{port}", "RLCartPole-dev")
        assert report.findings == [], report.render()
        acting = " ".join(report.principals_with_calls)
        for role in ("DeployTime", "StateMachine", "ExecutionRole", "ServingRole", "Predict"):
            assert role in acting, report.render()
    finally:
        destroyed = local(state, port, "destroy")
    assert destroyed.returncode == 0, destroyed.stderr
    assert "destroyed" in destroyed.stdout
    assert wait_until_gone(state) == []


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
