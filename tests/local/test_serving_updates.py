"""Local mode end to end: the real `cdk` CLI deploys the reference stack into the emulator.

Training really runs (short PPO budgets), the endpoint is really served, and predictions come
back through the deployed predict Lambda. The emulator records the first deployment's requests,
and the IAM audit (iam_audit.py) checks that each principal's calls are allowed by its deployed
policies and calls outside its job are not. A retrain then updates the endpoint while the predict
function is under load, a policy that cannot load is refused while the previous one keeps serving,
the captured traffic is checked in S3, and everything is destroyed with no process left.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import iam_audit
import pytest
from local_cli import ROOT, deploy, local, processes_using, wait_until_gone

from cdk_sagemaker_rl.local.cli.deployed_stack import named_output

pytestmark = pytest.mark.integration


class PredictLoad:
    """About ``rate`` predict-function invocations per second from a thread, until stopped.

    Each request asks for the actions on the same 16 observations, so an answer identifies the
    policy that gave it. The thread stops by itself after ``limit`` seconds and talks only to
    the emulator on 127.0.0.1.
    """

    def __init__(self, port: int, function: str, rate: float = 10.0, limit: float = 900) -> None:
        import boto3
        import numpy as np

        self.client = boto3.session.Session().client(
            "lambda",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        rng = np.random.default_rng(7)
        low, high = np.array([-2.4, -2.0, -0.21, -2.0]), np.array([2.4, 2.0, 0.21, 2.0])
        self.probe = rng.uniform(low, high, size=(16, 4)).round(4).tolist()
        self.function, self.interval, self.limit = function, 1.0 / rate, limit
        self.answers: list[tuple[int, ...]] = []
        self.failures: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="predict-load", daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        next_at = time.monotonic()
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.sent += 1
            try:
                response = self.client.invoke(
                    FunctionName=self.function,
                    Payload=json.dumps({"instances": self.probe}).encode(),
                )
                payload = json.loads(response["Payload"].read())
                if response.get("FunctionError") or payload.get("statusCode") != 200:
                    self.failures.append(json.dumps(payload)[:300])
                else:
                    predictions = json.loads(payload["body"])["predictions"]
                    self.answers.append(tuple(int(a) for a in predictions))
            except Exception as error:  # a failed request is what this load counts
                self.failures.append(repr(error)[:300])
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def answer(self) -> tuple[int, ...]:
        """One request now, outside the load: the serving policy's answers on the probe."""
        response = self.client.invoke(
            FunctionName=self.function, Payload=json.dumps({"instances": self.probe}).encode()
        )
        payload = json.loads(response["Payload"].read())
        assert payload.get("statusCode") == 200, payload
        return tuple(int(a) for a in json.loads(payload["body"])["predictions"])

    def __enter__(self) -> PredictLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def _switches(answers: list[tuple[int, ...]]) -> int:
    return sum(1 for before, after in itertools.pairwise(answers) if before != after)


def test_deploy_serves_then_redeploys_safely_under_load_and_destroys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deploy a small policy; retrain (a policy that balances) and update the endpoint while
    ~10 predict requests/s run; then a policy whose inference script fails to load is refused
    and the previous one keeps serving; captured traffic is in S3; the IAM audit holds; destroy
    leaves no process."""
    state = tmp_path / "state"
    # The emulator the deploy starts records every request it serves, for the IAM audit.
    for key, value in iam_audit.recording_environment(tmp_path / "requests.jsonl").items():
        monkeypatch.setenv(key, value)
    deployed, port = deploy(state, "--hyperparameters", '{"total_timesteps": 10240}')
    try:
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        # The reference app's gate (cdk.json: eval_reward_mean >= 450) passed, and said so.
        verdict = next(x for x in deployed.stdout.splitlines() if x.startswith("gate verdict: "))
        assert "Reward gate passed for training job cartpole-dev-" in verdict, verdict
        assert "eval_reward_mean = 500, required >= 450" in verdict, verdict
        assert "episode_reward_mean" in deployed.stdout  # training progress was shown
        assert "reward curve" in deployed.stdout + deployed.stderr, deployed.stdout[-2000:]
        line = next(x for x in deployed.stdout.splitlines() if "sample prediction" in x)
        prediction = json.loads(line.split(": ", 1)[1].replace("'", '"'))
        assert prediction["predictions"][0] in (0, 1)
        assert processes_using(state), "the emulator should be running after a deploy"
        outputs = json.loads((state / "outputs.json").read_text())["RLCartPole-dev"]
        function = named_output(outputs, "PredictFunctionName")
        predicted = local(state, port, "predict", "--observation", "[0.1, -0.2, 0.03, 0.4]")
        assert predicted.returncode == 0, predicted.stderr
        assert "'predictions': [" in predicted.stdout
        time.sleep(2.5)  # the emulator writes capture files every ~2 s

        # The first deployment's requests (the audit reads the policies as deployed now, so it
        # runs before any redeploy): each principal's recorded calls are allowed by its
        # deployed policies, and calls outside its job are not (tests/local/iam_audit.py).
        report = iam_audit.audit(f"http://localhost:{port}", "RLCartPole-dev")
        assert report.findings == [], report.render()
        acting = " ".join(report.principals_with_calls)
        for role in ("DeployTime", "StateMachine", "ExecutionRole", "ServingRole", "Predict"):
            assert role in acting, report.render()
        # The model role's data capture writes were recorded, and allowed.
        assert "data-capture/" in report.render(), report.render()

        # 1. Retrain and update while the predict function is under load: nothing fails, and
        #    the answers switch once, from the old policy's to the new one's.
        with PredictLoad(port, function) as load:
            time.sleep(1)
            started = time.monotonic()
            # Another policy that passes the gate, and answers the probe differently.
            redeployed = local(
                state,
                port,
                "deploy",
                "--hyperparameters",
                '{"total_timesteps": 10240, "n_steps": 512}',
            )
            update_seconds = time.monotonic() - started
            time.sleep(1)
        assert redeployed.returncode == 0, redeployed.stdout[-3000:] + redeployed.stderr[-3000:]
        print(
            f"update under load: {load.sent} requests sent, {len(load.failures)} failed, "
            f"redeploy {update_seconds:.0f} s"
        )
        assert load.failures == [], load.failures[:5]
        assert load.sent >= 100 and len(load.answers) == load.sent
        assert load.answers[0] != load.answers[-1], "the answers never switched"
        assert _switches(load.answers) == 1, "answers went back and forth between policies"

        # 2. A policy trained on too small a budget fails the reward gate: the deploy fails
        #    naming the metric, its value and the bar, and the endpoint keeps its policy.
        gated = local(state, port, "deploy", "--hyperparameters", '{"total_timesteps": 512}')
        assert gated.returncode != 0, gated.stdout[-3000:]
        reason = next(
            line.strip()
            for line in gated.stderr.splitlines()
            if "Reward gate failed for training job cartpole-dev-" in line
        )
        print(f"gate message: {reason}")
        measured = float(reason.split("eval_reward_mean = ")[1].split(",")[0])
        assert measured < 450 and ", required >= 450." in reason, reason
        assert "the endpoint keeps serving the previous policy" in reason, reason
        assert _mean_reward(local(state, port, "play", "--episodes", "20")) >= 450
        assert [v["ModelApprovalStatus"] for v in _versions(port)] == [
            "Approved",
            "Approved",
            "Rejected",
        ]

        # 3. A policy whose inference script raises at load: the deploy fails with the
        #    container's error, and the endpoint keeps serving the previous policy.
        broken = tmp_path / "broken"
        shutil.copytree(ROOT / "examples" / "cartpole", broken)
        inference = broken / "inference.py"
        inference.write_text(
            inference.read_text().replace(
                "def model_fn(model_dir",
                "def model_fn(model_dir: str, *args: object) -> None:\n"
                '    raise RuntimeError("broken-policy: model_fn refuses to load")\n\n\n'
                "def _unused_model_fn(model_dir",
                1,
            )
        )
        started = time.monotonic()
        failed = local(
            state,
            port,
            "deploy",
            "--source-dir",
            str(broken),
            "--hyperparameters",
            '{"total_timesteps": 512}',
            # A bar this policy clears: what fails here must be the container, not the gate.
            "--context",
            "gate_threshold=0",
        )
        failed_seconds = time.monotonic() - started
        print(f"failed redeploy: {failed_seconds:.0f} s")
        assert failed.returncode != 0, failed.stdout[-3000:]
        assert "broken-policy: model_fn refuses to load" in failed.stdout + failed.stderr, (
            failed.stdout[-3000:] + failed.stderr[-3000:]
        )
        # Still the policy the update under load put in place (it scored >= 450 after step 2):
        # the same answers on the probe.
        assert load.answer() == load.answers[-1]
        # The version that passed the gate but never served is withdrawn, for promotions.
        broken_version = _versions(port)[-1]
        assert broken_version["ModelApprovalStatus"] == "Rejected", broken_version
        assert "never served" in broken_version.get("ApprovalDescription", ""), broken_version

        # 4. The load's requests and responses were captured to S3 (JSON Lines).
        captured = _captured_records(port)
        inputs = [json.loads(r["captureData"]["endpointInput"]["data"]) for r in captured]
        outputs_seen = [json.loads(r["captureData"]["endpointOutput"]["data"]) for r in captured]
        assert sum(1 for i in inputs if i == {"instances": load.probe}) >= len(load.answers)
        assert {tuple(o["predictions"]) for o in outputs_seen} >= set(load.answers)

    finally:
        destroyed = local(state, port, "destroy")
    assert destroyed.returncode == 0, destroyed.stderr
    assert "destroyed" in destroyed.stdout
    assert wait_until_gone(state) == []


def _mean_reward(played: subprocess.CompletedProcess[str]) -> float:
    assert played.returncode == 0, played.stderr[-3000:]
    text = played.stdout.split("mean reward over 20 CartPole-v1 episodes: ")[1]
    return float(text.split()[0])


def _versions(port: int) -> list[dict[str, Any]]:
    """The dev estimator's registry versions, oldest first."""
    import boto3

    sagemaker = boto3.session.Session().client(
        "sagemaker",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    listed = sagemaker.list_model_packages(
        ModelPackageGroupName="cartpole-dev", SortBy="CreationTime", SortOrder="Ascending"
    )["ModelPackageSummaryList"]
    return [sagemaker.describe_model_package(ModelPackageName=v["ModelPackageArn"]) for v in listed]


def _captured_records(port: int) -> list[dict[str, object]]:
    import boto3

    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    records = []
    for bucket in s3.list_buckets()["Buckets"]:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket["Name"], Prefix="data-capture/"
        )
        for page in pages:
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read()
                records += [json.loads(line) for line in body.decode().splitlines() if line]
    assert records, "no capture file under data-capture/"
    return records
