"""The predict function (lambda/predict/index.py).

The success path runs against moto's sagemaker-runtime (canned results). Request shapes and
the errors moto cannot produce (ModelError, throttling) use a local HTTP server on 127.0.0.1
that speaks the sagemaker-runtime wire protocol, with the module's client pointed at it through
AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: real botocore serialises, retries and parses the errors.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import botocore.retries.standard
import pytest
import requests

ENDPOINT = "rl-endpoint"
OBSERVATION = [0.0123, -0.4567, 0.0312, 0.2718]
INVOCATIONS = f"/endpoints/{ENDPOINT}/invocations"

Loader = Callable[..., ModuleType]


def body_of(answer: dict[str, Any]) -> Any:
    return json.loads(answer["body"])


def log_records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retry delays (up to seconds of jitter) set to zero; attempts unchanged."""
    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0
    )


@pytest.fixture
def fake_runtime(
    http_server: Any, load_predict: Loader, monkeypatch: pytest.MonkeyPatch, no_backoff: None
) -> tuple[ModuleType, Any]:
    """The predict module talking to the recording server instead of SageMaker."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", http_server.base_url)
    return load_predict(ENDPOINT_NAME=ENDPOINT), http_server


def ok(server: Any, document: Any, content_type: str = "application/json") -> None:
    server.reply(200, json.dumps(document).encode(), Content_Type=content_type)


def throttled(server: Any) -> None:
    server.reply(
        400,
        b'{"message":"Rate exceeded"}',
        x_amzn_ErrorType="ThrottlingException",
        Content_Type="application/json",
    )


# --------------------------------------------------------------------------------------------
# Success against moto
# --------------------------------------------------------------------------------------------


def queue_moto_results(*bodies: str) -> None:
    """moto's documented test API: canned InvokeEndpoint answers, in order."""
    results = [
        {"Body": body, "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic"}
        for body in bodies
    ]
    reply = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"results": results},
        timeout=5,
    )
    assert reply.status_code == 201


def test_instances_document_against_moto(aws: None, load_predict: Loader) -> None:
    index = load_predict(ENDPOINT_NAME=ENDPOINT)
    model_answer = '{"predictions": [{"action": 1, "probabilities": [0.2, 0.8]}]}'
    queue_moto_results(model_answer)

    answer = index.handler({"instances": [OBSERVATION]}, None)

    assert answer["statusCode"] == 200
    assert answer["headers"] == {"Content-Type": "application/json"}
    assert answer["body"] == model_answer  # the model's own document, unchanged


def test_answers_without_predictions_key_are_wrapped(aws: None, load_predict: Loader) -> None:
    index = load_predict(ENDPOINT_NAME=ENDPOINT)
    queue_moto_results("[1]", "not json at all")

    assert body_of(index.handler(OBSERVATION, None)) == {"predictions": [1]}
    assert body_of(index.handler([OBSERVATION, OBSERVATION], None)) == {
        "predictions": "not json at all"
    }


# --------------------------------------------------------------------------------------------
# Request shapes (what reaches the endpoint)
# --------------------------------------------------------------------------------------------


def test_a_flat_observation_becomes_one_instance(fake_runtime: tuple[ModuleType, Any]) -> None:
    index, server = fake_runtime
    ok(server, {"predictions": [0]})

    answer = index.handler(OBSERVATION, None)

    assert answer["statusCode"] == 200 and body_of(answer) == {"predictions": [0]}
    [sent] = server.requests
    assert sent.method == "POST" and sent.path == INVOCATIONS
    assert sent.json() == {"instances": [OBSERVATION]}
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256")


def test_a_batch_list_and_an_instances_document_pass_as_is(
    fake_runtime: tuple[ModuleType, Any],
) -> None:
    index, server = fake_runtime
    batch = [OBSERVATION, [1, 2, 3, 4]]
    ok(server, {"predictions": [0, 1]})
    ok(server, {"predictions": [1]})

    index.handler(batch, None)
    index.handler({"instances": [OBSERVATION], "deterministic": True}, None)

    assert server.requests[0].json() == {"instances": batch}
    assert server.requests[1].json() == {"instances": [OBSERVATION], "deterministic": True}


def test_function_url_event_with_content_type_from_the_environment(
    http_server: Any, load_predict: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", http_server.base_url)
    index = load_predict(
        ENDPOINT_NAME=ENDPOINT, CONTENT_TYPE="application/x-rl+json", ACCEPT="application/jsonlines"
    )
    ok(http_server, {"predictions": [1]})
    event = {
        "version": "2.0",
        "requestContext": {"http": {"method": "POST"}},
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"instances": [OBSERVATION]}),
        "isBase64Encoded": False,
    }

    answer = index.handler(event, None)

    assert answer["statusCode"] == 200 and body_of(answer) == {"predictions": [1]}
    [sent] = http_server.requests
    assert sent.json() == {"instances": [OBSERVATION]}
    assert sent.headers["content-type"] == "application/x-rl+json"
    assert sent.headers["accept"] == "application/jsonlines"


def test_base64_body(fake_runtime: tuple[ModuleType, Any]) -> None:
    index, server = fake_runtime
    ok(server, {"predictions": [1]})
    encoded = base64.b64encode(json.dumps(OBSERVATION).encode()).decode()

    answer = index.handler({"body": encoded, "isBase64Encoded": True}, None)

    assert answer["statusCode"] == 200
    assert server.requests[0].json() == {"instances": [OBSERVATION]}


# --------------------------------------------------------------------------------------------
# Client errors: 400 and 413, never sent to the endpoint
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"body": "{not json"}, "not valid JSON"),
        ({"body": "!!!", "isBase64Encoded": True}, "not base64"),
        ({"body": None, "requestContext": {}}, "no body"),
        ({"body": json.dumps({"observations": [1]})}, "keys: observations"),
        ({"observation": OBSERVATION}, 'expected {"instances"'),
        ({"instances": OBSERVATION[0]}, '"instances" must be a list'),
        ({"instances": []}, '"instances" is empty'),
        ([], "the list is empty"),
        ([1.0, [2.0]], "mixes numbers and lists"),
        ("0.1,0.2", "got a JSON str"),
        ({"body": "42"}, "got a JSON int"),
    ],
)
def test_malformed_or_wrong_shape_is_a_400_naming_the_expectation(
    fake_runtime: tuple[ModuleType, Any], event: Any, expected: str
) -> None:
    index, server = fake_runtime

    answer = index.handler(event, None)

    assert answer["statusCode"] == 400
    assert answer["headers"]["Content-Type"] == "application/json"
    body = body_of(answer)
    assert body["error"] == "BadRequest" and expected in body["message"]
    assert server.requests == []


def test_payload_over_the_configured_limit_is_a_413(
    http_server: Any, load_predict: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", http_server.base_url)
    index = load_predict(ENDPOINT_NAME=ENDPOINT, MAX_PAYLOAD_BYTES="64")
    ok(http_server, {"predictions": [0]})

    assert index.handler([0.5] * 8, None)["statusCode"] == 200  # 48 bytes encoded
    answer = index.handler([0.5] * 20, None)

    assert answer["statusCode"] == 413
    assert "at most 64 bytes" in body_of(answer)["message"]
    assert len(http_server.requests) == 1


def test_default_limit_is_sagemakers_6_mb(fake_runtime: tuple[ModuleType, Any]) -> None:
    index, server = fake_runtime
    assert index.SETTINGS.max_payload_bytes == 6 * 1024 * 1024
    big = {"instances": [[0.123456789] * 1000] * 600}  # about 7.2 MB once encoded

    answer = index.handler(big, None)

    assert answer["statusCode"] == 413 and body_of(answer)["error"] == "PayloadTooLarge"
    assert server.requests == []


def test_an_invalid_limit_falls_back_to_the_default_with_a_warning(
    load_predict: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    index = load_predict(ENDPOINT_NAME=ENDPOINT, MAX_PAYLOAD_BYTES="6MB")
    assert index.SETTINGS.max_payload_bytes == 6 * 1024 * 1024
    [warning] = log_records(capsys.readouterr().out)
    assert warning["level"] == "WARNING" and "MAX_PAYLOAD_BYTES='6MB'" in warning["problem"]


# --------------------------------------------------------------------------------------------
# Endpoint errors: 502, 503, 500
# --------------------------------------------------------------------------------------------


def test_model_error_is_a_502_with_the_models_message(fake_runtime: tuple[ModuleType, Any]) -> None:
    index, server = fake_runtime
    error = {
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
        "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/"
        f"{ENDPOINT}",
        "Message": 'Received client error (400) from primary with message "observation must '
        'have 4 values".',
        "OriginalMessage": "observation must have 4 values",
        "OriginalStatusCode": 400,
    }
    server.reply(
        424,
        json.dumps(error).encode(),
        Content_Type="application/json",
        x_amzn_ErrorType="ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/",
    )

    answer = index.handler([1.0, 2.0], None)

    assert answer["statusCode"] == 502
    assert body_of(answer) == {
        "error": "ModelError",
        "message": "the model returned an error",
        "model_status": 400,
        "model_message": "observation must have 4 values",
    }
    assert len(server.requests) == 1  # a model error is not retried


def test_throttling_is_retried_then_succeeds(fake_runtime: tuple[ModuleType, Any]) -> None:
    index, server = fake_runtime
    throttled(server)
    ok(server, {"predictions": [1]})

    answer = index.handler(OBSERVATION, None)

    assert answer["statusCode"] == 200 and body_of(answer) == {"predictions": [1]}
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body


def test_persistent_throttling_is_a_503_after_bounded_attempts(
    fake_runtime: tuple[ModuleType, Any],
) -> None:
    index, server = fake_runtime
    for _ in range(5):
        throttled(server)

    answer = index.handler(OBSERVATION, None)

    assert answer["statusCode"] == 503
    assert answer["headers"]["Retry-After"] == "1"
    body = body_of(answer)
    assert body["error"] == "ServiceUnavailable" and "ThrottlingException" in body["message"]
    assert len(server.requests) == index.MAX_ATTEMPTS == 3


def test_other_endpoint_errors_are_a_500_without_internals(
    fake_runtime: tuple[ModuleType, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    index, server = fake_runtime
    server.reply(
        400,
        b'{"message":"Endpoint rl-endpoint of account 123456789012 not found."}',
        x_amzn_ErrorType="ValidationError",
        Content_Type="application/json",
    )

    answer = index.handler(OBSERVATION, None)

    assert answer["statusCode"] == 500
    assert body_of(answer) == {
        "error": "InternalError",
        "message": "the model endpoint could not be invoked (ValidationError)",
    }
    [record] = log_records(capsys.readouterr().out)
    assert record["status"] == 500 and "not found" in record["cause"]


def test_unexpected_exceptions_are_a_500_and_logged_not_returned(
    load_predict: Loader, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    index = load_predict(ENDPOINT_NAME=ENDPOINT)

    class Broken:
        def invoke_endpoint(self, **kwargs: Any) -> Any:
            raise RuntimeError("boom")

    monkeypatch.setattr(index, "_RUNTIME", Broken())

    answer = index.handler(OBSERVATION, None)

    assert answer["statusCode"] == 500
    assert "Traceback" not in answer["body"] and "boom" not in answer["body"]
    [record] = log_records(capsys.readouterr().out)
    assert record["level"] == "ERROR" and record["exception_name"] == "RuntimeError"
    assert "Traceback" in record["exception"]


def test_missing_endpoint_name_is_a_500(load_predict: Loader) -> None:
    index = load_predict()
    answer = index.handler(OBSERVATION, None)
    assert answer["statusCode"] == 500 and "ENDPOINT_NAME" in body_of(answer)["message"]


# --------------------------------------------------------------------------------------------
# Cold start and logging
# --------------------------------------------------------------------------------------------


def test_one_log_line_per_request_without_payload(
    fake_runtime: tuple[ModuleType, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    index, server = fake_runtime
    ok(server, {"predictions": [1]})
    context = type("Context", (), {"aws_request_id": "req-42"})()

    index.handler(OBSERVATION, context)
    index.handler({"body": "{broken"}, context)

    out = capsys.readouterr().out
    first, second = log_records(out)
    assert len(out.splitlines()) == 2
    assert first["endpoint"] == ENDPOINT and first["status"] == 200 and first["level"] == "INFO"
    assert isinstance(first["latency_ms"], float) and first["latency_ms"] >= 0
    assert first["function_request_id"] == "req-42"
    assert first["cold_start"] is True and second["cold_start"] is False
    assert second["status"] == 400 and second["error"] == "BadRequest"
    assert "0.4567" not in out and "{broken" not in out


def test_the_client_is_created_once_at_import(fake_runtime: tuple[ModuleType, Any]) -> None:
    index, server = fake_runtime
    client = index._RUNTIME
    ok(server, {"predictions": [1]})
    ok(server, {"predictions": [1]})

    index.handler(OBSERVATION, None)
    index.handler(OBSERVATION, None)

    assert index._RUNTIME is client
    config = client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_log_level_warning_keeps_only_the_failures(
    http_server: Any,
    load_predict: Loader,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", http_server.base_url)
    index = load_predict(ENDPOINT_NAME=ENDPOINT, LOG_LEVEL="WARNING")
    ok(http_server, {"predictions": [1]})

    assert index.handler(OBSERVATION, None)["statusCode"] == 200
    assert index.handler({"body": "{broken"}, None)["statusCode"] == 400

    [record] = log_records(capsys.readouterr().out)
    assert record["level"] == "WARNING" and record["status"] == 400
    assert record["service"] == "cdk-sagemaker-rl.predict"
