"""The command line of ``python -m cdk_sagemaker_rl.local``: one command and its options."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

from .target import DEFAULT_PORT, PORT_ENV, ROOT, STACK

__all__ = ["parse_args"]

#: Context keys local mode sets itself (``-c target=local -c environment=dev``).
RESERVED_CONTEXT = ("target", "environment")
#: Context keys with an option of their own.
CONTEXT_OPTIONS = {
    "hyperparameters": "--hyperparameters",
    "source_dir": "--source-dir",
    "example": "--example",
}


def _assignment(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` of ``--context`` (the value may contain ``=``)."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


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
    parser.add_argument(
        "--example",
        choices=["cartpole", "rllib"],
        help="deploy, demo: the example to train (default cartpole, Stable-Baselines3 on one "
        "host); rllib is RLlib PPO on a Ray 2 cluster of two local hosts",
    )
    parser.add_argument(
        "--context",
        type=_assignment,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="deploy, demo: passed to `cdk deploy --context KEY=VALUE` (a reference-app setting, "
        "e.g. gate_threshold=450); repeatable",
    )
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument(
        "--observation",
        type=json.loads,
        default=[0.0, 0.0, 0.0, 0.0],
        help="predict: a CartPole observation as JSON",
    )
    args = parser.parse_args(argv)
    args.context = _context(parser, args)
    if args.example is not None:
        args.context["example"] = args.example
    return args


def _context(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, str]:
    """The ``--context`` assignments as a mapping; each key once, none that local mode sets."""
    context: dict[str, str] = {}
    for key, value in args.context:
        if key in RESERVED_CONTEXT:
            parser.error(
                f"--context {key}=...: local mode sets {key} itself "
                f"(it deploys {STACK} with target=local)"
            )
        option = CONTEXT_OPTIONS.get(key)
        if option and getattr(args, option[2:].replace("-", "_")) is not None:
            parser.error(f"--context {key}=... and {option} both given: use one")
        if key in context:
            parser.error(f"--context {key}=... given twice")
        context[key] = value
    return context
