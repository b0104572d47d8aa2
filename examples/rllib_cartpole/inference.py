"""Serve the CartPole-v1 PPO actor that train.py exported from RLlib, in the SageMaker PyTorch
container.

The container imports this file from ``<model dir>/code/`` and calls ``model_fn`` once, then
``input_fn`` -> ``predict_fn`` -> ``output_fn`` per request. It needs only torch (the container
has it): train.py copied the RLModule's actor into a plain ``state_dict`` plus ``policy.json``,
which says how to rebuild the network, so neither Ray nor gymnasium is installed for serving.

The export format is the one examples/cartpole writes, and this file is examples/cartpole's
inference.py with only this docstring changed: both models answer the same requests the same way.
It is a copy rather than an import because SageMaker packs each example directory on its own, so
the serving code must travel with the example that trained the model.

Requests (``application/json``): ``{"instances": [[x, x_dot, theta, theta_dot], ...]}``, a list of
such observations, or one observation as a flat list of 4 numbers. ``text/csv`` takes one
observation per line. The answer is ``{"predictions": [action, ...]}`` with one action (0 = push
left, 1 = push right) per observation, the greedy action of the policy.
Bad input raises ValueError, which the container answers with a 500 carrying the message.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import torch

JSON = "application/json"
CSV = "text/csv"
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
SHAPE_HELP = (
    'send {"instances": [[4 numbers], ...]}, a list of observations, or one observation '
    "[cart position, cart velocity, pole angle, pole angular velocity]"
)


class Policy:
    """The actor network and the observation size it expects."""

    def __init__(self, net: torch.nn.Sequential, obs_dim: int) -> None:
        self.net = net
        self.obs_dim = obs_dim


def model_fn(model_dir: str) -> Policy:
    spec = json.loads((Path(model_dir) / "policy.json").read_text())
    activation = ACTIVATIONS[spec["activation"]]
    sizes = [spec["obs_dim"], *spec["hidden_sizes"], spec["n_actions"]]
    layers: list[torch.nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(fan_in, fan_out), activation()]
    net = torch.nn.Sequential(*layers[:-1])  # no activation after the logits
    state = torch.load(Path(model_dir) / "policy.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    # A 64-unit MLP answers fastest on one thread; more only contend with other workers.
    torch.set_num_threads(1)
    return Policy(net.eval(), int(spec["obs_dim"]))


def _media_type(value: str | None, default: str) -> str:
    return (value or default).split(";", 1)[0].strip().lower()


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"observation values must be finite numbers, got {value!r}: {SHAPE_HELP}")
    return float(value)


def _as_batch(payload: Any) -> list[list[float]]:
    """One observation or a list of them -> a list of observations."""
    if isinstance(payload, dict):
        if "instances" not in payload:
            raise ValueError(f"a JSON object needs an 'instances' key: {SHAPE_HELP}")
        payload = payload["instances"]
    if not isinstance(payload, list) or not payload:
        raise ValueError(f"expected a non-empty list of observations: {SHAPE_HELP}")
    if all(not isinstance(item, list) for item in payload):
        payload = [payload]
    rows = []
    for item in payload:
        if not isinstance(item, list):
            raise ValueError(
                f"every observation must be a list of numbers, got {item!r}: {SHAPE_HELP}"
            )
        rows.append([_number(value) for value in item])
    return rows


def input_fn(body: str | bytes, content_type: str) -> torch.Tensor:
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    media = _media_type(content_type, JSON)
    if media == JSON:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"the request body is not valid JSON ({error}): {SHAPE_HELP}"
            ) from None
    elif media == CSV:
        try:
            payload = [
                [float(v) for v in line.split(",")] for line in text.splitlines() if line.strip()
            ]
        except ValueError as error:
            raise ValueError(f"the CSV body holds a non-number ({error}): {SHAPE_HELP}") from None
    else:
        raise ValueError(f"unsupported content type {content_type!r}: use {JSON} or {CSV}")
    rows = _as_batch(payload)
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise ValueError(f"observations have different lengths {sorted(widths)}: {SHAPE_HELP}")
    return torch.tensor(rows, dtype=torch.float32)


def predict_fn(data: torch.Tensor, model: Policy) -> list[int]:
    if data.ndim != 2 or data.shape[1] != model.obs_dim:
        raise ValueError(
            f"expected observations of shape ({model.obs_dim},) or (N, {model.obs_dim}), "
            f"got {tuple(data.shape)}: {SHAPE_HELP}"
        )
    with torch.no_grad():
        return [int(action) for action in model.net(data).argmax(dim=1)]


def output_fn(prediction: list[int], accept: str) -> tuple[str, str]:
    media = _media_type(accept, JSON)
    if media not in (JSON, "*/*"):
        raise ValueError(f"unsupported accept type {accept!r}: use {JSON}")
    return json.dumps({"predictions": prediction}), JSON
