"""The one structured logger of every bundled handler (lambda/_shared/json_logger.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HANDLER_ROOT = Path(__file__).resolve().parents[2] / "lambda"
LOGGER_FILE = HANDLER_ROOT / "_shared" / "json_logger.py"
#: Every module with a Lambda handler, by the name its function's Handler uses.
HANDLER_MODULES = (
    "custom_resources.training_run",
    "custom_resources.attach",
    "custom_resources.workflow_cleanup",
    "predict.index",
)

Importer = Callable[[str], ModuleType]


@pytest.fixture
def json_logger(import_handler: Importer) -> ModuleType:
    return import_handler("_shared.json_logger")


def records(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    return [json.loads(line) for line in lines]


def test_one_json_object_per_line_with_service_level_and_timestamp(
    json_logger: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = json_logger.JsonLogger("svc")

    logger.info("two\nlines", detail="a\nb", path=Path("/x"), none=None)
    logger.warning("second")

    [first, second] = records(capsys.readouterr().out)
    assert first["message"] == "two\nlines" and first["detail"] == "a\nb"
    assert first["path"] == "/x"  # not JSON: logged as str()
    assert first["none"] is None
    assert first["service"] == "svc" and first["level"] == "INFO"
    assert first["timestamp"].endswith("+00:00")
    assert second["level"] == "WARNING"


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        (None, ["INFO", "WARNING", "ERROR"]),
        ("debug", ["DEBUG", "INFO", "WARNING", "ERROR"]),
        ("WARNING", ["WARNING", "ERROR"]),
        ("ERROR", ["ERROR"]),
        ("LOUD", ["INFO", "WARNING", "ERROR"]),  # unknown: the default
    ],
)
def test_the_threshold_comes_from_log_level(
    json_logger: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    level: str | None,
    shown: list[str],
) -> None:
    if level is not None:
        monkeypatch.setenv("LOG_LEVEL", level)
    logger = json_logger.JsonLogger("svc")

    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")

    assert [r["level"] for r in records(capsys.readouterr().out)] == shown


def test_lambda_context_keys_and_cold_start(
    json_logger: ModuleType, context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = json_logger.JsonLogger("svc")

    logger.inject_lambda_context(context)
    logger.info("first")
    logger.inject_lambda_context(context)
    logger.info("second")
    logger.inject_lambda_context(None)  # no context: no stale identity on the lines
    logger.info("third")

    first, second, third = records(capsys.readouterr().out)
    assert first["function_request_id"] == context.aws_request_id
    assert first["function_name"] == context.function_name
    assert first["cold_start"] is True and second["cold_start"] is False
    assert second["function_request_id"] == context.aws_request_id
    assert "function_request_id" not in third and "function_name" not in third


def test_cold_start_is_once_per_execution_environment_not_per_logger(
    json_logger: ModuleType, context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = json_logger.JsonLogger("one"), json_logger.JsonLogger("two")

    one.inject_lambda_context(context)
    one.info("x")
    two.inject_lambda_context(context)
    two.info("y")

    assert [r["cold_start"] for r in records(capsys.readouterr().out)] == [True, False]


def test_exception_logs_the_type_and_the_traceback(
    json_logger: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = json_logger.JsonLogger("svc")
    try:
        raise KeyError("missing")
    except KeyError:
        logger.exception("failed", step="lookup")

    [record] = records(capsys.readouterr().out)
    assert record["level"] == "ERROR" and record["step"] == "lookup"
    assert record["exception_name"] == "KeyError"
    assert record["exception"].startswith("Traceback") and "missing" in record["exception"]


@pytest.mark.parametrize("name", HANDLER_MODULES)
def test_every_handler_logs_through_the_shared_logger(
    import_handler: Importer, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "rl-endpoint")
    module = import_handler(name)
    shared = import_handler("_shared.json_logger")
    assert type(module.logger) is shared.JsonLogger


def test_no_handler_module_writes_log_lines_itself() -> None:
    """One logger implementation: no other module prints, writes stdout or sets up logging."""
    sources = sorted(HANDLER_ROOT.rglob("*.py"))
    assert LOGGER_FILE in sources
    for source in sources:
        if source == LOGGER_FILE:
            continue
        text = source.read_text(encoding="utf-8")
        for marker in ("print(", "sys.stdout", "sys.stderr", "import logging"):
            assert marker not in text, f"{source.relative_to(HANDLER_ROOT)} uses {marker}"
