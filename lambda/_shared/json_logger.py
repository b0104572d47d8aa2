"""The structured logger of every bundled handler: one JSON object per line on stdout.

Lambda ships stdout to CloudWatch Logs line by line, so a JSON line is a record that CloudWatch
Logs Insights can query by field. It behaves like the Powertools for AWS Lambda logger, without
the dependency (the handlers use only the standard library and boto3):

* the level threshold comes from ``LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR; default INFO), read
  when the logger is created, i.e. once per execution environment;
* :meth:`JsonLogger.inject_lambda_context` adds ``function_name``, ``function_request_id`` and
  ``cold_start`` (True on the first invocation of the execution environment only) to every line;
* every line has ``level``, ``timestamp`` (UTC, milliseconds), ``message``, ``service``, the keys
  appended so far and the call's own fields; values that are not JSON are logged as ``str()``.

It is cheap on purpose (the predict function logs one line per request): one dict, one encode,
one write.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

LEVELS: Final = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}

#: One encoder for every line (``json.dumps`` with options builds a new one per call).
_encode: Final = json.JSONEncoder(default=str, separators=(",", ":")).encode

_cold_start = True


def _take_cold_start() -> bool:
    """True on the first invocation of this execution environment, False afterwards."""
    global _cold_start
    was_cold, _cold_start = _cold_start, False
    return was_cold


class JsonLogger:
    """Writes one JSON object on one line to stdout per call at or above the threshold.

    Keys added with :meth:`append_keys` (e.g. the request id) are repeated on every line.
    """

    def __init__(self, service: str, level: str | None = None) -> None:
        self._keys: dict[str, object] = {"service": service}
        name = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
        self._threshold = LEVELS.get(name, LEVELS["INFO"])

    def append_keys(self, **keys: object) -> None:
        """Adds keys repeated on every following line; a None value removes the key."""
        for key, value in keys.items():
            if value is None:
                self._keys.pop(key, None)
            else:
                self._keys[key] = value

    def inject_lambda_context(self, context: object | None) -> None:
        """Adds the invocation's identity so that the lines of one request can be grouped.

        Call it once at the start of every invocation: it also tells whether this one is the
        cold start. Without a context (a test, a direct call) the identity keys are removed.
        """
        self.append_keys(
            function_name=getattr(context, "function_name", None),
            function_request_id=getattr(context, "aws_request_id", None),
            cold_start=_take_cold_start(),
        )

    def debug(self, message: str, **fields: object) -> None:
        self._emit("DEBUG", message, fields)

    def info(self, message: str, **fields: object) -> None:
        self._emit("INFO", message, fields)

    def warning(self, message: str, **fields: object) -> None:
        self._emit("WARNING", message, fields)

    def error(self, message: str, **fields: object) -> None:
        self._emit("ERROR", message, fields)

    def exception(self, message: str, **fields: object) -> None:
        """Logs at ERROR with the exception being handled (type, message, traceback)."""
        exc = sys.exc_info()[1]
        if exc is not None:
            fields = {**fields, **exception_fields(exc)}
        self._emit("ERROR", message, fields)

    def _emit(self, level: str, message: str, fields: Mapping[str, object]) -> None:
        if LEVELS[level] < self._threshold:
            return
        record: dict[str, object] = {
            "level": level,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "message": message,
            **self._keys,
            **fields,
        }
        # Looked up at each call (not bound at construction) so that test capture works.
        sys.stdout.write(_encode(record) + "\n")
        sys.stdout.flush()


def exception_fields(exc: BaseException) -> dict[str, object]:
    """``exception_name`` and ``exception`` (the formatted traceback) of ``exc``, as logged."""
    return {
        "exception_name": type(exc).__name__,
        "exception": "".join(traceback.format_exception(exc)).rstrip(),
    }
