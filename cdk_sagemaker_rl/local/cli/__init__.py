"""``python -m cdk_sagemaker_rl.local``: deploy the reference stack to the built-in emulator.

Commands:

- ``deploy``   start the emulator (if needed), ``cdk bootstrap`` + ``cdk deploy`` the reference
               stack into it; training really runs here, the endpoint is really served here;
- ``predict``  call the deployed predict Lambda (through the emulator) with one observation;
- ``play``     play CartPole-v1 episodes acting only through the predict handler;
- ``demo``     ``deploy`` + ``predict`` + ``play`` (README command 1);
- ``destroy``  ``cdk destroy`` and stop every process local mode started;
- ``status``   what is running.

Everything local mode writes lives under ``.local-mode/`` (``--state-dir``): the emulator's pid,
log and work trees, the deploy lock and the stack outputs.

:func:`main` parses the command line (:mod:`.arguments`) and runs the commands
(:mod:`.commands`); the rest is what they use: :mod:`.target` (account, region, the AWS
environment), :mod:`.state`, :mod:`.emulator_process`, :mod:`.cdk_cli`, :mod:`.bootstrap`,
:mod:`.deployed_stack` and :mod:`.messages`.

After a deploy (and ``demo``) each reward-gate verdict of the stack (an output whose key contains
``GateVerdict``) is printed as a line ``gate verdict: <value>``; a failed deploy prints the
reason of each failed resource unabridged (``[local] error: cdk deploy of ... failed``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from .arguments import parse_args
from .commands import deploy, destroy, play, predict, status
from .deployed_stack import gate_verdict_lines, named_output
from .messages import LocalModeError, say
from .state import State

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 1 with a one-line error for a :class:`LocalModeError`."""
    args = parse_args(argv)
    state = State(args.state_dir, args.port)
    try:
        if args.command in ("deploy", "demo"):
            outputs = deploy(
                state,
                hyperparameters=args.hyperparameters,
                source_dir=args.source_dir,
                context=args.context,
            )
            say("endpoint:         " + named_output(outputs, "EndpointName"))
            say("predict function: " + named_output(outputs, "PredictFunctionName"))
            for line in gate_verdict_lines(outputs):
                print(line, flush=True)
        if args.command in ("deploy", "demo", "predict"):
            result = predict(state, args.observation)
            say(f"sample prediction for {args.observation}: {result}")
        if args.command in ("demo", "play"):
            rewards = play(state, args.episodes)
            mean = sum(rewards) / len(rewards)
            say(f"mean reward over {len(rewards)} CartPole-v1 episodes: {mean:.1f} (max 500)")
        if args.command == "destroy":
            destroy(state)
        if args.command == "status":
            print(json.dumps(status(state), indent=2))
    except LocalModeError as error:
        print(f"[local] error: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("[local] interrupted", file=sys.stderr)
        return 130
    return 0
