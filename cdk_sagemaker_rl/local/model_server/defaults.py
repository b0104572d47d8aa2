"""The PyTorch inference container's default handler functions, for what a script omits.

A handler script may define only ``model_fn`` (or nothing at all, for a TorchScript
``model.pt``); the container then decodes JSON / CSV / NPY into a float tensor, calls the model
under ``torch.no_grad()`` and encodes the prediction back into the ``Accept`` type. torch and numpy
are imported only when a default is used: a script that brings its own functions needs neither.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

__all__ = [
    "CSV",
    "JSON",
    "NPY",
    "UnsupportedFormatError",
    "default_input_fn",
    "default_model_fn",
    "default_output_fn",
    "default_predict_fn",
    "media_type",
]

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"


class UnsupportedFormatError(ValueError):
    """A content or accept type the default handlers do not speak: answered with 415, not 500."""


def media_type(value: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (value or "").split(";", 1)[0].strip().lower()


def default_model_fn(model_dir: str) -> Any:
    """The container's default: a TorchScript ``model.pt`` in the model directory."""
    path = Path(model_dir) / "model.pt"
    if not path.is_file():
        raise ValueError(
            f"no model_fn in the inference script and no TorchScript model.pt in {model_dir}: "
            "provide code/inference.py with model_fn(model_dir), or save the model as model.pt"
        )
    import torch

    return torch.jit.load(str(path), map_location="cpu").eval()  # type: ignore[no-untyped-call]


def default_input_fn(body: Any, content_type: str) -> Any:
    """Decode JSON, CSV or NPY into a float32 tensor, as the PyTorch container does."""
    import numpy as np
    import torch

    media = media_type(content_type) or JSON
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    if media == JSON:
        array = np.asarray(json.loads(text), dtype=np.float32)
    elif media == CSV:
        array = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float32, ndmin=2)
    elif media == NPY:
        raw = body if isinstance(body, bytes | bytearray) else body.encode("latin-1")
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    else:
        raise UnsupportedFormatError(
            f"unsupported content type {content_type!r}: use {JSON}, {CSV} or {NPY}"
        )
    return torch.from_numpy(np.ascontiguousarray(array))


def default_predict_fn(data: Any, model: Any) -> Any:
    """Call the model on the data, without autograd when torch is present."""
    try:
        import torch
    except ImportError:
        return model(data)
    with torch.no_grad():
        return model(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes | str, str]:
    """Encode a tensor, array or plain value as JSON, CSV or NPY."""
    import numpy as np

    if hasattr(prediction, "detach"):
        prediction = prediction.detach().cpu().numpy()
    media = media_type(accept) or JSON
    if media == JSON:
        value = prediction.tolist() if isinstance(prediction, np.ndarray) else prediction
        return json.dumps(value), JSON
    if media == CSV:
        out = io.StringIO()
        np.savetxt(out, np.atleast_2d(np.asarray(prediction)), delimiter=",", fmt="%s")
        return out.getvalue(), CSV
    if media == NPY:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(prediction), allow_pickle=False)
        return buffer.getvalue(), NPY
    raise UnsupportedFormatError(f"unsupported accept type {accept!r}: use {JSON}, {CSV} or {NPY}")
