"""Serve one SageMaker model on this machine, speaking the inference container's HTTP contract.

A SageMaker endpoint is a container answering ``GET /ping`` and ``POST /invocations`` on a port.
Local mode has no Docker, so :class:`LocalModelServer` starts this module as a subprocess
(``python -m cdk_sagemaker_rl.local.model_server``) that does what the PyTorch inference
container does with a model:

- the model directory is the extracted ``model.tar.gz`` (``/opt/ml/model`` in the container);
- the handler script is ``SAGEMAKER_PROGRAM`` from ``SAGEMAKER_SUBMIT_DIRECTORY`` (an ``s3://``
  ``sourcedir.tar.gz``, a local directory, or ``/opt/ml/model/code``), or else
  ``<model dir>/code/inference.py``; its ``requirements.txt`` is installed when not satisfied;
- the script's ``model_fn(model_dir)`` loads the model once, then each request runs
  ``input_fn(body, content_type)``, ``predict_fn(data, model)``, ``output_fn(prediction, accept)``
  (or ``transform_fn(model, body, content_type, accept)``); functions the script omits fall back
  to the container's defaults: a TorchScript ``model.pt``, JSON / CSV / NPY decoding into a float
  tensor, ``model(data)`` under ``torch.no_grad()``, and encoding back into the ``Accept`` type;
- text bodies (JSON, CSV, plain text) reach ``input_fn`` as ``str``, others as ``bytes``; a missing
  or ``*/*`` Accept means ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (default ``application/json``);
- an exception in the handler answers 500 with the error message as the body's first line,
  followed by the traceback, which is how the toolkit reports a model error (415 when the
  default handlers meet a content or accept type they do not speak).

The subprocess binds port 0 unless told otherwise and writes the bound port to a file only after the
model is loaded and the socket listens, so the parent never races for a port or pings a server
that is still loading.

One module per side: :mod:`.local_model_server` (the parent: :class:`LocalModelServer`),
:mod:`.server_process` (the subprocess and its HTTP contract), :mod:`.handler` (the script's
request pipeline) and :mod:`.defaults` (the container's default functions).
"""

from __future__ import annotations

from .defaults import UnsupportedFormatError
from .handler import InferenceHandler
from .local_model_server import LocalModelServer, ModelServerError, last_exception
from .server_process import main

__all__ = [
    "InferenceHandler",
    "LocalModelServer",
    "ModelServerError",
    "UnsupportedFormatError",
    "last_exception",
    "main",
]
