"""The local model server against the inference container contract (/ping, /invocations)."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_sagemaker_rl.local.model_server import (
    InferenceHandler,
    LocalModelServer,
    ModelServerError,
    UnsupportedFormatError,
)

HANDLER = """
    import json, os

    def model_fn(model_dir):
        if os.environ.get("FAIL_LOAD"):
            raise RuntimeError("cannot load weights: FAIL_LOAD is set")
        with open(os.path.join(model_dir, "weights.json")) as f:
            return json.load(f)

    def input_fn(body, content_type):
        if not isinstance(body, str):
            raise TypeError(f"JSON must arrive as str, got {type(body).__name__}")
        if content_type.split(";")[0] != "application/json":
            raise ValueError(f"unsupported content type {content_type}")
        return json.loads(body)

    def predict_fn(data, model):
        if data == "boom":
            raise RuntimeError("model exploded on purpose")
        return [x * model["scale"] for x in data]

    def output_fn(prediction, accept):
        return json.dumps({"predictions": prediction, "accept": accept})
"""


def write_model(root: Path, *, handler: str | None = HANDLER, name: str = "inference.py") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "weights.json").write_text('{"scale": 2}')
    if handler is not None:
        (root / "code").mkdir(exist_ok=True)
        (root / "code" / name).write_text(textwrap.dedent(handler))
    return root


def tar_dir(directory: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    return archive


def call(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """(status, content type, body) of a GET (no body) or POST."""
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def invoke(server: LocalModelServer, payload: Any, **headers: str) -> tuple[int, str, str]:
    headers.setdefault("Content-Type", "application/json")
    return call(server.url + "/invocations", json.dumps(payload).encode(), headers)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    """A server for a model.tar.gz holding code/inference.py and a satisfied requirements.txt."""
    root = tmp_path_factory.mktemp("served")
    model = write_model(root / "model")
    (model / "code" / "requirements.txt").write_text("packaging\n")
    with LocalModelServer(tar_dir(model, root / "model.tar.gz")) as running:
        yield running


def test_ping_answers_200(server: LocalModelServer) -> None:
    status, _, _ = call(server.url + "/ping")
    assert status == 200


def test_invocations_run_the_handler_pipeline(server: LocalModelServer) -> None:
    status, content_type, body = invoke(server, [1, 2.5], Accept="application/json")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"predictions": [2, 5.0], "accept": "application/json"}


def test_missing_or_any_accept_means_the_default_accept(server: LocalModelServer) -> None:
    for headers in ({}, {"Accept": "*/*"}):
        status, _, body = invoke(server, [1], **headers)
        assert status == 200
        assert json.loads(body)["accept"] == "application/json"


def test_model_error_is_a_500_with_the_message(server: LocalModelServer) -> None:
    status, content_type, body = invoke(server, "boom")
    assert (status, content_type) == (500, "text/plain")
    assert body.splitlines()[0] == "model exploded on purpose"
    assert "Traceback" in body
    # The server survives its model's errors.
    assert call(server.url + "/ping")[0] == 200
    assert invoke(server, [3])[0] == 200


def test_input_error_names_the_problem(server: LocalModelServer) -> None:
    status, _, body = invoke(server, [1], **{"Content-Type": "text/csv"})
    assert status == 500
    assert body.splitlines()[0] == "unsupported content type text/csv"


def test_unknown_route_is_404(server: LocalModelServer) -> None:
    assert call(server.url + "/nothing")[0] == 404


def test_requirements_already_satisfied_are_not_installed(server: LocalModelServer) -> None:
    assert server.log_path is not None
    assert "already satisfied: nothing to install" in server.log_path.read_text()


def test_missing_model_data_is_a_clear_start_error(tmp_path: Path) -> None:
    with pytest.raises(ModelServerError, match="does not exist"):
        LocalModelServer(tmp_path / "nowhere.tar.gz").start()


def test_failing_model_fn_is_a_start_error_with_the_log_tail(tmp_path: Path) -> None:
    model = write_model(tmp_path / "model")
    server = LocalModelServer(model, {"FAIL_LOAD": "1"})
    with pytest.raises(ModelServerError) as error:
        server.start(timeout=30)
    message = str(error.value)
    assert "exited with code 1 before answering /ping" in message
    assert "RuntimeError: cannot load weights: FAIL_LOAD is set" in message
    assert server.pid is None


def test_start_times_out_with_a_clear_error(tmp_path: Path) -> None:
    slow = "import time\ntime.sleep(30)\ndef model_fn(model_dir):\n    return None\n"
    model = write_model(tmp_path / "model", handler=slow)
    server = LocalModelServer(model)
    started = time.monotonic()
    with pytest.raises(ModelServerError, match=r"did not answer /ping within 1 s"):
        server.start(timeout=1)
    assert time.monotonic() - started < 20  # gave up at the timeout, not after the 30 s import
    assert server.pid is None


def test_program_in_an_s3_submit_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    source = tmp_path / "source"
    source.mkdir()
    (source / "serve.py").write_text(textwrap.dedent(HANDLER).replace('"predictions"', '"from_s3"'))
    buffer = io.BytesIO(tar_dir(source, tmp_path / "sourcedir.tar.gz").read_bytes())
    model = write_model(tmp_path / "model")  # its code/inference.py must not be used
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="code")
        s3.put_object(Bucket="code", Key="src/sourcedir.tar.gz", Body=buffer.getvalue())
        environment = {
            "SAGEMAKER_PROGRAM": "serve.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "s3://code/src/sourcedir.tar.gz",
        }
        with LocalModelServer(model, environment, s3=s3) as server:
            status, _, body = invoke(server, [1])
    assert status == 200
    assert json.loads(body)["from_s3"] == [2]


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    # Also the SDK's repacked layout: the handler in model.tar.gz/code, SUBMIT_DIRECTORY pointing
    # at /opt/ml/model/code inside the container.
    model = write_model(tmp_path / "model", name="handler.py")
    environment = {
        "SAGEMAKER_PROGRAM": "handler.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    }
    server = LocalModelServer(model, environment, work_dir=tmp_path / "work")
    server.start(timeout=30)
    assert invoke(server, [4])[0] == 200
    pid = server.pid
    assert pid is not None and alive(pid)
    server.stop()
    assert not alive(pid)
    assert server.pid is None
    with pytest.raises(ModelServerError, match="not running"):
        _ = server.url
    server.stop()  # idempotent
    # The caller's work directory is kept, with the server's log in it.
    assert "Model server listening" in (tmp_path / "work" / "server.log").read_text()


# --- handler resolution, in process --------------------------------------------------------------


def load_handler(tmp_path: Path, source: str) -> InferenceHandler:
    script = tmp_path / "handler_under_test.py"
    script.write_text(textwrap.dedent(source))
    return InferenceHandler.from_script(script)


def test_transform_fn_with_input_fn_is_rejected(tmp_path: Path) -> None:
    source = HANDLER + "\n    def transform_fn(model, data, content_type, accept):\n        pass\n"
    with pytest.raises(ValueError, match="either transform_fn or input_fn"):
        load_handler(tmp_path, source)


def test_transform_fn_alone_handles_the_request(tmp_path: Path) -> None:
    handler = load_handler(
        tmp_path,
        """
        def model_fn(model_dir):
            return "m"

        def transform_fn(model, data, content_type, accept):
            return f"{model}:{data}:{content_type}", "text/plain"
        """,
    )
    model = handler.model_fn("unused")
    assert handler.invoke(model, b"abc", "text/plain", "application/json") == (
        b"m:abc:text/plain",
        "text/plain",
    )


def test_binary_bodies_reach_input_fn_as_bytes(tmp_path: Path) -> None:
    handler = load_handler(
        tmp_path,
        """
        def model_fn(model_dir):
            return None

        def input_fn(body, content_type):
            return type(body).__name__

        def predict_fn(data, model):
            return data

        def output_fn(prediction, accept):
            return prediction
        """,
    )
    assert handler.invoke(None, b"\x00", "application/x-npy", "text/plain") == (
        b"bytes",
        "text/plain",
    )
    assert handler.invoke(None, b"[]", "application/json", "text/plain") == (b"str", "text/plain")


def test_output_fn_must_return_text_or_bytes(tmp_path: Path) -> None:
    handler = load_handler(
        tmp_path,
        """
        def model_fn(model_dir):
            return None

        def predict_fn(data, model):
            return data

        def input_fn(body, content_type):
            return body

        def output_fn(prediction, accept):
            return {"not": "encoded"}
        """,
    )
    with pytest.raises(TypeError, match="output_fn must return str or bytes"):
        handler.invoke(None, b"1", "application/json", "application/json")


def test_defaults_need_a_torchscript_model_pt(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no TorchScript model\.pt"):
        InferenceHandler.from_script(None).model_fn(str(tmp_path))


def test_container_defaults_serve_a_torchscript_model(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 10.0]]))
        net.bias.zero_()
    torch.jit.trace(net, torch.zeros(1, 2)).save(str(tmp_path / "model.pt"))
    handler = InferenceHandler.from_script(None)
    model = handler.model_fn(str(tmp_path))
    body, content_type = handler.invoke(
        model, b"[[1, 2], [3, 4]]", "application/json", "application/json"
    )
    assert (json.loads(body), content_type) == ([[21.0], [43.0]], "application/json")
    body, content_type = handler.invoke(model, b"1,2\n3,4\n", "text/csv", "text/csv")
    assert (body.decode().split(), content_type) == (["21.0", "43.0"], "text/csv")
    # The server answers this one with 415, as the toolkit does for its decoders.
    with pytest.raises(UnsupportedFormatError, match="unsupported content type 'image/png'"):
        handler.invoke(model, b"", "image/png", "application/json")
