"""The request pipeline of one model: the user's script's functions, defaults for the rest.

As in the container, a request runs ``input_fn``, ``predict_fn`` and ``output_fn`` (or the
script's ``transform_fn`` alone), text bodies reach ``input_fn`` as ``str`` and others as
``bytes``, and the answer is a body with its content type.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .defaults import (
    CSV,
    JSON,
    default_input_fn,
    default_model_fn,
    default_output_fn,
    default_predict_fn,
    media_type,
)

__all__ = ["InferenceHandler"]

_TEXT_TYPES = (JSON, CSV, "text/plain", "application/jsonlines")


@dataclass
class InferenceHandler:
    """The request pipeline of one model, taken from the user's script as the container does."""

    model_fn: Callable[[str], Any]
    input_fn: Callable[[Any, str], Any]
    predict_fn: Callable[[Any, Any], Any]
    output_fn: Callable[[Any, str], Any]
    transform_fn: Callable[[Any, Any, str, str], Any] | None = None
    source: str = "container defaults"

    @classmethod
    def from_script(cls, script: Path | None) -> InferenceHandler:
        """Take the script's functions, defaults for those it omits (no script: all defaults)."""
        if script is None:
            return cls(default_model_fn, default_input_fn, default_predict_fn, default_output_fn)
        module = _import_script(script)

        def pick(name: str, default: Any) -> Any:
            function = getattr(module, name, None)
            return function if callable(function) else default

        transform_fn = pick("transform_fn", None)
        overridden = [n for n in ("input_fn", "predict_fn", "output_fn") if hasattr(module, n)]
        if transform_fn is not None and overridden:
            raise ValueError(
                f"{script} defines transform_fn together with {', '.join(overridden)}: "
                "define either transform_fn or input_fn/predict_fn/output_fn"
            )
        return cls(
            model_fn=pick("model_fn", default_model_fn),
            input_fn=pick("input_fn", default_input_fn),
            predict_fn=pick("predict_fn", default_predict_fn),
            output_fn=pick("output_fn", default_output_fn),
            transform_fn=transform_fn,
            source=str(script),
        )

    def invoke(self, model: Any, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """One request: returns the response body and its content type."""
        data: Any = body.decode("utf-8") if media_type(content_type) in _TEXT_TYPES else body
        if self.transform_fn is not None:
            result = self.transform_fn(model, data, content_type, accept)
        else:
            result = self.output_fn(
                self.predict_fn(self.input_fn(data, content_type), model), accept
            )
        response_type = accept
        if isinstance(result, tuple) and len(result) == 2:
            result, response_type = result
        if isinstance(result, str):
            result = result.encode("utf-8")
        if not isinstance(result, bytes | bytearray):
            raise TypeError(
                f"the handler returned {type(result).__name__}; output_fn must return str or bytes "
                "(or a (body, content_type) tuple)"
            )
        return bytes(result), str(response_type)


def _import_script(script: Path) -> ModuleType:
    """Import the user's handler script by path, with its directory importable (for helpers)."""
    directory = str(script.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(script.stem, script)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[script.stem] = module
    spec.loader.exec_module(module)
    return module
