"""The command line of ``python -m cdk_sagemaker_rl.local``: one command and its options."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

from .target import DEFAULT_PORT, PORT_ENV, ROOT

__all__ = ["parse_args"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cdk_sagemaker_rl.local",
        description="Deploy the reference RL stack to the built-in local AWS emulator.",
    )
    parser.add_argument(
        "command", choices=["deploy", "predict", "play", "demo", "destroy", "status"]
    )
    parser.add_argument(
        "--state-dir", type=Path, default=ROOT / ".local-mode", help="default: .local-mode"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get(PORT_ENV, DEFAULT_PORT)),
        help=f"emulator port on 127.0.0.1 (default {DEFAULT_PORT}, or ${PORT_ENV})",
    )
    parser.add_argument(
        "--hyperparameters",
        type=json.loads,
        default=None,
        help="JSON merged into the example's hyperparameters, e.g. '{\"total_timesteps\": 4096}'",
    )
    parser.add_argument("--source-dir", help="train this directory's train.py instead")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument(
        "--observation",
        type=json.loads,
        default=[0.0, 0.0, 0.0, 0.0],
        help="predict: a CartPole observation as JSON",
    )
    return parser.parse_args(argv)
