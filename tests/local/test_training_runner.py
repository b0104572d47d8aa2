"""The local training runner against the SageMaker training contract, with S3 from moto."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cdk_sagemaker_rl.local import training_runner
from cdk_sagemaker_rl.local.environments import CACHE_ENV
from cdk_sagemaker_rl.local.training_runner import run_training_job, unsatisfied_requirements
from tests.local.training_jobs import (
    BUCKET,
    SOURCE_URI,
    make_request,
    read_tar,
    s3_fixture,
    s3_module_fixture,
    upload_source,
)

__all__ = ["s3_fixture", "s3_module_fixture"]  # fixtures used by name


def output_keys(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="out/").get("Contents", [])]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_success_uploads_model_and_output_where_sagemaker_puts_them(
    s3: Any, tmp_path: Path
) -> None:
    upload_source(
        s3,
        {
            "train.py": """
                import os, pathlib
                model = pathlib.Path(os.environ["SM_MODEL_DIR"])
                (model / "weights.txt").write_text("w=1")
                (model / "sub").mkdir()
                (model / "sub" / "extra.txt").write_text("x")
                out = pathlib.Path(os.environ["SM_OUTPUT_DATA_DIR"])
                (out / "metrics.json").write_text('{"reward": 1}')
                print("episode_reward_mean: 12.5")
            """,
        },
    )
    streamed: list[str] = []
    result = run_training_job(
        make_request("job-ok"), s3=s3, work_root=tmp_path, on_log=streamed.append
    )

    assert result.status == "Completed", result.failure_reason
    assert result.secondary_status == "Completed"
    assert result.failure_reason is None
    assert result.model_artifacts == f"s3://{BUCKET}/out/job-ok/output/model.tar.gz"
    assert result.output_artifacts == f"s3://{BUCKET}/out/job-ok/output/output.tar.gz"
    assert sorted(output_keys(s3)) == [
        "out/job-ok/output/model.tar.gz",
        "out/job-ok/output/output.tar.gz",
    ]
    assert read_tar(s3, result.model_artifacts) == {"weights.txt": b"w=1", "sub/extra.txt": b"x"}
    assert read_tar(s3, result.output_artifacts) == {"metrics.json": b'{"reward": 1}'}
    assert "episode_reward_mean: 12.5" in result.log_lines
    assert streamed == result.log_lines


def test_script_gets_decoded_hyperparameters_and_sm_environment(s3: Any, tmp_path: Path) -> None:
    upload_source(
        s3,
        {
            "train.py": """
                import json, os, sys
                seen = {"argv": sys.argv[1:], "cwd": os.getcwd(),
                        "env": {k: v for k, v in os.environ.items()
                                if k.startswith(("SM_", "SAGEMAKER_", "TRAINING_JOB", "MY_"))}}
                with open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w") as f:
                    json.dump(seen, f)
            """,
            "helper.py": "",
        },
    )
    s3.put_object(Bucket=BUCKET, Key="data/train/a.csv", Body=b"1,2")
    hyperparameters = {
        "epochs": 3,
        "lr": 0.01,
        "name": "abc",
        "flag": True,
        "layers": [64, 64],
        "opts": {"b": 2, "a": 1},
        "x": 1,
    }
    request = make_request(
        "job-env",
        hyperparameters=hyperparameters,
        channels={"training": f"s3://{BUCKET}/data/train"},
        environment={"MY_SETTING": "on"},
    )
    result = run_training_job(request, s3=s3, work_root=tmp_path)
    assert result.status == "Completed", result.failure_reason

    seen = json.loads(read_tar(s3, result.model_artifacts or "")["seen.json"])
    # Sorted keys, --key value, one-letter keys as -k, str() of the decoded value, no sagemaker_*.
    assert seen["argv"] == [
        "--epochs", "3", "--flag", "True", "--layers", "[64, 64]", "--lr", "0.01",
        "--name", "abc", "--opts", "a=1,b=2", "-x", "1",
    ]  # fmt: skip
    base = tmp_path / "job-env"
    assert seen["cwd"] == str(base / "code")
    env = seen["env"]
    assert json.loads(env["SM_HPS"]) == hyperparameters
    assert env["SM_HP_LR"] == "0.01"
    assert env["SM_HP_NAME"] == "abc"
    assert env["SM_HP_LAYERS"] == "[64,64]"
    assert json.loads(env["SM_USER_ARGS"]) == seen["argv"]
    assert env["SM_MODEL_DIR"] == str(base / "model")
    assert env["SM_OUTPUT_DATA_DIR"] == str(base / "output" / "data")
    assert env["SM_OUTPUT_DIR"] == str(base / "output")
    assert env["SM_INPUT_DIR"] == str(base / "input")
    assert env["SM_INPUT_CONFIG_DIR"] == str(base / "input" / "config")
    assert env["SM_CHANNELS"] == '["training"]'
    assert env["SM_CHANNEL_TRAINING"] == str(base / "input" / "data" / "training")
    assert env["SM_NUM_GPUS"] == "0"
    assert int(env["SM_NUM_CPUS"]) >= 1
    assert env["SM_HOSTS"] == '["algo-1"]'
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_USER_ENTRY_POINT"] == "train.py"
    assert env["SM_MODULE_NAME"] == "train"
    assert env["SM_MODULE_DIR"] == SOURCE_URI
    assert env["SM_LOG_LEVEL"] == "20"
    assert env["SM_FRAMEWORK_MODULE"] == ""
    assert env["SAGEMAKER_BASE_DIR"] == str(base)
    assert env["TRAINING_JOB_NAME"] == "job-env"
    assert env["MY_SETTING"] == "on"
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["hyperparameters"] == hyperparameters
    assert training_env["channel_input_dirs"] == {"training": env["SM_CHANNEL_TRAINING"]}
    assert training_env["job_name"] == "job-env"

    config = base / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text()) == request["HyperParameters"]
    resources = json.loads((config / "resourceconfig.json").read_text())
    assert (resources["current_host"], resources["hosts"]) == ("algo-1", ["algo-1"])
    data_config = json.loads((config / "inputdataconfig.json").read_text())
    assert data_config["training"]["TrainingInputMode"] == "File"
    assert data_config["training"]["S3DistributionType"] == "FullyReplicated"
    assert (base / "code" / "helper.py").is_file()


def test_channels_are_downloaded_below_their_prefix(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="data/train/a.csv", Body=b"a")
    s3.put_object(Bucket=BUCKET, Key="data/train/nested/b.csv", Body=b"b")
    s3.put_object(Bucket=BUCKET, Key="data/other/c.csv", Body=b"not in any channel")
    s3.put_object(Bucket=BUCKET, Key="data/eval.csv", Body=b"e")
    upload_source(
        s3,
        {
            "train.py": """
                import json, os, pathlib
                listing = {}
                for channel in json.loads(os.environ["SM_CHANNELS"]):
                    root = pathlib.Path(os.environ["SM_CHANNEL_" + channel.upper()])
                    listing[channel] = {str(p.relative_to(root)): p.read_text()
                                        for p in root.rglob("*") if p.is_file()}
                out = pathlib.Path(os.environ["SM_MODEL_DIR"]) / "listing.json"
                out.write_text(json.dumps(listing))
            """,
        },
    )
    request = make_request(
        "job-data",
        channels={
            "training": f"s3://{BUCKET}/data/train",
            "evaluation": f"s3://{BUCKET}/data/eval.csv",
        },
    )
    result = run_training_job(request, s3=s3, work_root=tmp_path)
    assert result.status == "Completed", result.failure_reason
    listing = json.loads(read_tar(s3, result.model_artifacts or "")["listing.json"])
    assert listing == {
        "training": {"a.csv": "a", "nested/b.csv": "b"},
        "evaluation": {"eval.csv": "e"},
    }


def test_failing_script_fails_with_the_traceback_tail(s3: Any, tmp_path: Path) -> None:
    upload_source(
        s3,
        {
            "train.py": """
                import argparse
                parser = argparse.ArgumentParser()
                parser.add_argument("--lr", type=float)
                args = parser.parse_args()
                print("starting")
                def check(lr):
                    if lr <= 0:
                        raise ValueError(f"learning rate must be positive, got {lr}")
                check(args.lr)
            """,
        },
    )
    result = run_training_job(
        make_request("job-bad", hyperparameters={"lr": -1}), s3=s3, work_root=tmp_path
    )
    assert result.status == "Failed"
    assert result.secondary_status == "Failed"
    reason = result.failure_reason or ""
    assert reason.startswith('AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage "')
    assert "Traceback (most recent call last)" in reason
    assert "ValueError: learning rate must be positive, got -1.0" in reason
    assert reason.endswith('train.py --lr -1", exit code: 1')
    assert len(reason) <= 1024
    assert result.model_artifacts is None and result.output_artifacts is None
    assert output_keys(s3) == []
    failure_file = tmp_path / "job-bad" / "output" / "failure"
    assert "ValueError: learning rate must be positive" in failure_file.read_text()
    assert "starting" in result.log_lines


def test_failure_file_written_by_the_script_is_the_reason(s3: Any, tmp_path: Path) -> None:
    upload_source(
        s3,
        {
            "train.py": """
                import os, sys
                with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as f:
                    f.write("Environment diverged: reward is NaN")
                sys.exit(3)
            """,
        },
    )
    result = run_training_job(make_request("job-own-failure"), s3=s3, work_root=tmp_path)
    assert result.status == "Failed"
    assert result.failure_reason == "AlgorithmError: Environment diverged: reward is NaN"


def test_long_error_output_is_cut_to_sagemakers_limit(s3: Any, tmp_path: Path) -> None:
    upload_source(
        s3,
        {"train.py": "import sys\nprint('x' * 5000, file=sys.stderr)\nsys.exit('the last word')\n"},
    )
    result = run_training_job(make_request("job-long"), s3=s3, work_root=tmp_path)
    reason = result.failure_reason or ""
    assert len(reason) <= 1024
    assert "the last word" in reason
    assert "ExitCode 1" in reason


# The script of the two stop tests: records its pid and a grandchild's, then waits to be stopped.
STOPPABLE = """
    import os, pathlib, signal, subprocess, sys, time
    model = pathlib.Path(os.environ["SM_MODEL_DIR"])
    if os.environ.get("ON_SIGTERM") == "save":
        def save(signum, frame):
            (model / "checkpoint.txt").write_text("saved on SIGTERM")
            sys.exit(0)
        signal.signal(signal.SIGTERM, save)
    else:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(["sleep", "60"])
    (model.parent / "pids").write_text(f"{os.getpid()} {child.pid}")
    print("ready", flush=True)
    time.sleep(60)
"""


def pids(tmp_path: Path, job: str) -> list[int]:
    return [int(p) for p in (tmp_path / job / "pids").read_text().split()]


def test_max_runtime_stops_the_job_and_keeps_what_it_saved(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(training_runner, "STOP_GRACE_SECONDS", 5.0)
    upload_source(s3, {"train.py": STOPPABLE})
    request = make_request("job-slow", max_runtime=2, environment={"ON_SIGTERM": "save"})
    started = time.monotonic()
    result = run_training_job(request, s3=s3, work_root=tmp_path)
    elapsed = time.monotonic() - started

    assert (result.status, result.secondary_status) == ("Stopped", "MaxRuntimeExceeded")
    assert result.failure_reason is None
    # Stopped at the deadline, not after the script's 60 s (the margin is for a busy machine).
    assert 2 <= elapsed < 30, elapsed
    assert "ready" in result.log_lines
    # SIGTERM gave the script its chance to save; SageMaker uploads what is in the model dir.
    assert read_tar(s3, result.model_artifacts or "") == {"checkpoint.txt": b"saved on SIGTERM"}
    assert all(wait_gone(pid) for pid in pids(tmp_path, "job-slow"))


def test_stop_event_kills_a_job_that_ignores_sigterm(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(training_runner, "STOP_GRACE_SECONDS", 0.5)
    upload_source(s3, {"train.py": STOPPABLE})
    stop = threading.Event()

    def on_log(line: str) -> None:  # lines stream while the job runs: stop it once it is ready
        if line == "ready":
            stop.set()

    started = time.monotonic()
    result = run_training_job(
        make_request("job-stop"), s3=s3, work_root=tmp_path, on_log=on_log, stop_event=stop
    )
    assert (result.status, result.secondary_status) == ("Stopped", "Stopped")
    assert time.monotonic() - started < 30  # not after the script's 60 s
    assert any("SIGKILL" in line for line in result.log_lines)
    assert result.model_artifacts == f"s3://{BUCKET}/out/job-stop/output/model.tar.gz"
    assert all(wait_gone(pid) for pid in pids(tmp_path, "job-stop"))


def test_leftover_background_processes_are_killed_on_success(s3: Any, tmp_path: Path) -> None:
    upload_source(
        s3,
        {
            "train.py": """
                import os, pathlib, subprocess
                child = subprocess.Popen(["sleep", "60"])
                job_dir = pathlib.Path(os.environ["SM_MODEL_DIR"]).parent
                (job_dir / "pids").write_text(str(child.pid))
            """,
        },
    )
    result = run_training_job(make_request("job-leak"), s3=s3, work_root=tmp_path)
    assert result.status == "Completed", result.failure_reason
    assert all(wait_gone(pid) for pid in pids(tmp_path, "job-leak"))


def test_shell_entry_point_runs_as_a_command(s3: Any, tmp_path: Path) -> None:
    upload_source(s3, {"train.sh": '#!/bin/sh\necho "args: $*"\n'})
    result = run_training_job(
        make_request("job-sh", program="train.sh", hyperparameters={"epochs": 2}),
        s3=s3,
        work_root=tmp_path,
    )
    assert result.status == "Completed", result.failure_reason
    assert "args: --epochs 2" in result.log_lines


FAKE_PYTHON = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  echo "$*" >> "$FAKE_PIP_LOG"
  if [ -n "$FAKE_PIP_FAIL" ]; then
    echo "ERROR: No matching distribution found for definitely-missing-dist-xyz==1.0" >&2
    exit 1
  fi
  exit 0
fi
exec {python} "$@"
"""


@pytest.fixture
def fake_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An interpreter that records pip calls instead of installing (the venv stays untouched),
    with the environment cache in the test's own directory."""
    path = tmp_path / "fake-python"
    path.write_text(FAKE_PYTHON.format(python=sys.executable))
    path.chmod(0o755)
    monkeypatch.setenv("FAKE_PIP_LOG", str(tmp_path / "pip.log"))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "envs"))
    return path


def test_satisfied_requirements_are_not_installed(
    s3: Any, tmp_path: Path, fake_python: Path
) -> None:
    upload_source(s3, {"train.py": "import packaging\n", "requirements.txt": "packaging>=20\n"})
    result = run_training_job(
        make_request("job-req-ok"), s3=s3, work_root=tmp_path / "work", python=str(fake_python)
    )
    assert result.status == "Completed", result.failure_reason
    assert any("already satisfied" in line for line in result.log_lines)
    assert not (tmp_path / "pip.log").exists()


def test_unsatisfied_requirements_get_an_environment_of_their_own_once(
    s3: Any, tmp_path: Path, fake_python: Path
) -> None:
    """The user's interpreter is left alone: pip installs into an environment cached by the
    requirements' hash, which the next job with the same requirements reuses."""
    requirements = "packaging\ndefinitely-missing-dist-xyz==1.0\n"
    upload_source(
        s3,
        {
            "train.py": "import sys; print('interpreter:', sys.prefix)\n",
            "requirements.txt": requirements,
        },
    )
    results = [
        run_training_job(
            make_request(f"job-req-install-{n}"),
            s3=s3,
            work_root=tmp_path / "work",
            python=str(fake_python),
        )
        for n in (1, 2)
    ]
    assert [r.status for r in results] == ["Completed", "Completed"], results[0].failure_reason
    (environment,) = [p for p in (tmp_path / "envs").iterdir() if p.is_dir()]
    # One pip call, from the first job, into that environment:
    assert (tmp_path / "pip.log").read_text().split() == [
        "-m", "pip", "--python", str(environment / "bin" / "python"), "install", "--no-input",
        "-r", str(tmp_path / "work" / "job-req-install-1" / "code" / "requirements.txt"),
    ]  # fmt: skip
    first, second = (r.log_lines for r in results)
    assert any(
        "not satisfied" in line and "definitely-missing-dist-xyz==1.0" in line for line in first
    )
    assert any(
        f"Building an environment for requirements.txt in {environment}" in line for line in first
    )
    assert any(f"Using the environment {environment}" in line for line in second)
    for lines in (first, second):
        assert f"interpreter: {environment}" in lines


def test_failed_pip_install_fails_the_job(
    s3: Any, tmp_path: Path, fake_python: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PIP_FAIL", "1")
    upload_source(s3, {"train.py": "", "requirements.txt": "definitely-missing-dist-xyz==1.0\n"})
    result = run_training_job(
        make_request("job-req-fail"), s3=s3, work_root=tmp_path / "work", python=str(fake_python)
    )
    assert result.status == "Failed"
    reason = result.failure_reason or ""
    assert reason.startswith("AlgorithmError: InstallRequirementsError:\nExitCode 1")
    assert "No matching distribution found for definitely-missing-dist-xyz==1.0" in reason
    # A failed build leaves no environment that a later job would take as complete.
    assert not [p for p in (tmp_path / "envs").iterdir() if p.is_dir()]


def test_unsatisfied_requirements_checks_versions_markers_and_extras(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        textwrap.dedent(
            """\
            # a comment
            packaging>=20  # trailing comment
            boto3
            moto[server]
            definitely-missing-dist-xyz
            packaging<1
            something-else ; python_version < "3"
            --index-url https://example.invalid/simple
            -r other.txt
            git+https://example.invalid/repo.git
            """
        )
    )
    assert unsatisfied_requirements(requirements) == [
        "definitely-missing-dist-xyz",
        "packaging<1",
        "-r other.txt",
        "git+https://example.invalid/repo.git",
    ]


@pytest.mark.parametrize(
    "member", ["../escaped.py", "/tmp/absolute-escape.py", "ok/../../escaped.py"]
)
def test_source_archive_cannot_write_outside_code_dir(s3: Any, tmp_path: Path, member: str) -> None:
    upload_source(s3, {"train.py": "", member: "print('owned')"})
    result = run_training_job(make_request("job-evil"), s3=s3, work_root=tmp_path)
    assert result.status == "Failed"
    assert "outside" in (result.failure_reason or "")
    assert not (tmp_path / "job-evil" / "escaped.py").exists()
    assert not (tmp_path / "escaped.py").exists()
    assert not Path("/tmp/absolute-escape.py").exists()


def test_missing_channel_data_is_a_client_error(s3: Any, tmp_path: Path) -> None:
    upload_source(s3, {"train.py": ""})
    request = make_request("job-nodata", channels={"training": f"s3://{BUCKET}/nothing/here"})
    result = run_training_job(request, s3=s3, work_root=tmp_path)
    assert result.status == "Failed"
    assert (result.failure_reason or "").startswith("ClientError: Data download failed")
    assert "s3://jobs/nothing/here" in (result.failure_reason or "")


def test_missing_entry_point_names_what_the_archive_holds(s3: Any, tmp_path: Path) -> None:
    upload_source(s3, {"other.py": ""})
    result = run_training_job(make_request("job-noentry"), s3=s3, work_root=tmp_path)
    assert result.status == "Failed"
    assert "entry point 'train.py'" in (result.failure_reason or "")
    assert "other.py" in (result.failure_reason or "")


def test_job_without_script_mode_hyperparameters_fails_clearly(s3: Any, tmp_path: Path) -> None:
    request = make_request("job-image")
    request["HyperParameters"] = {"epochs": "1"}
    result = run_training_job(request, s3=s3, work_root=tmp_path)
    assert result.status == "Failed"
    assert "sagemaker_program" in (result.failure_reason or "")


def test_malformed_request_is_a_value_error(s3: Any, tmp_path: Path) -> None:
    request = make_request("x")
    del request["TrainingJobName"]
    with pytest.raises(ValueError, match="TrainingJobName"):
        run_training_job(request, s3=s3, work_root=tmp_path)
    request = make_request("x")
    request["OutputDataConfig"] = {"S3OutputPath": "/local/path"}
    with pytest.raises(ValueError, match="S3OutputPath"):
        run_training_job(request, s3=s3, work_root=tmp_path)
