"""Train RLlib PPO on gymnasium CartPole-v1 under the SageMaker training contract.

SageMaker (or local mode) runs this file with the job's hyperparameters as ``--key value``
arguments and the ``SM_*`` environment; in a multi-host job a launcher first starts a Ray cluster
over the job's hosts and runs this script on the head host only, with ``RAY_ADDRESS`` (and
``RAY_AUTH_MODE``) set. The script therefore calls a plain ``ray.init()``: with ``RAY_ADDRESS`` it
joins that cluster, without it starts a Ray of its own, so the same file also runs stand-alone.
It:

- trains PPO (RLlib's new API stack, torch) with one env runner per CPU of the cluster, so each
  host of a multi-host job samples, until the mean episode return reaches ``target_reward`` or
  ``max_iterations`` have run;
- prints ``episode_reward_mean: <float>`` (and ``episode_reward_max``, ``timesteps``) after every
  iteration, the lines the RL estimator's default metric regexes scrape into CloudWatch metrics;
- exports the deterministic actor (observation -> action logits) as a plain torch ``state_dict``
  plus the same ``policy.json`` description examples/cartpole writes, and checks that the export
  gives the trained RLModule's logits: the PyTorch inference container then serves it with
  ``inference.py`` and torch alone, no Ray;
- evaluates the exported network, the very one that will be served, over deterministic seeded
  episodes and writes ``<output data dir>/evaluation.json`` for the reward gate.

Not reaching the target is not an error (the script exits 0): the reward gate judges the policy by
``evaluation.json``, and a job that fails would leave it nothing to judge.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import ray
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.rl_module import RLModule

ENV_ID = "CartPole-v1"
HERE = Path(__file__).resolve().parent
ACTIVATIONS = {torch.nn.Tanh: "tanh", torch.nn.ReLU: "relu"}
# The exported network must reproduce the RLModule's logits this closely (float32 round-off of
# the same arithmetic is far below it; a wrong or stale weight is far above it).
EXPORT_TOLERANCE = 1e-5
# How long the head waits for every host of SM_HOSTS to show up as a Ray node before it trains
# with the nodes it has: the launcher starts this script once the cluster is up, so this only
# covers a slow worker host, and training on fewer nodes beats failing the job.
NODE_WAIT_SECONDS = 60

# What the inference container must install for inference.py: nothing, torch comes with it.
INFERENCE_REQUIREMENTS = (
    "# inference.py needs only torch, which the SageMaker PyTorch inference container provides.\n"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])

    def add(name: str, kind: type, default: Any, text: str) -> None:
        # Hyperparameters arrive as --max_iterations (the estimator's keys); accept dashes too.
        parser.add_argument(
            f"--{name}",
            f"--{name.replace('_', '-')}",
            type=kind,
            default=default,
            dest=name,
            help=f"{text} (default: {default})",
        )

    add("target_reward", float, 450.0, "stop once the mean episode return reaches this")
    add("max_iterations", int, 60, "stop after this many training iterations at the latest")
    add("seed", int, 0, "random seed (training and evaluation)")
    add("eval_episodes", int, 20, "deterministic evaluation episodes of the exported network")
    add("num_env_runners", int, 0, "env runners; 0 = one per CPU of the Ray cluster")
    # Where to write: SageMaker's directories when it runs the script, else local ones. Resolved
    # to absolute paths because RLlib's saves reject relative ones.
    env = os.environ
    parser.add_argument("--model-dir", type=Path, default=Path(env.get("SM_MODEL_DIR", "model")))
    parser.add_argument(
        "--output-data-dir", type=Path, default=Path(env.get("SM_OUTPUT_DATA_DIR", "output/data"))
    )
    args = parser.parse_args(argv)
    if args.eval_episodes < 1 or args.max_iterations < 1:
        parser.error("eval_episodes and max_iterations must be at least 1")
    args.model_dir = args.model_dir.resolve()
    args.output_data_dir = args.output_data_dir.resolve()
    return args


def alive_nodes() -> int:
    return sum(1 for node in ray.nodes() if node["Alive"])


def wait_for_hosts() -> int:
    """The number of alive Ray nodes, after waiting a while for every host of the job when the
    script joined a launcher's cluster (stand-alone, there is only this host)."""
    hosts = json.loads(os.environ.get("SM_HOSTS", "[]") or "[]")
    nodes = alive_nodes()
    if not os.environ.get("RAY_ADDRESS") or nodes >= len(hosts):
        return nodes
    deadline = time.monotonic() + NODE_WAIT_SECONDS
    while nodes < len(hosts) and time.monotonic() < deadline:
        time.sleep(1)
        nodes = alive_nodes()
    if nodes < len(hosts):
        print(
            f"warning: only {nodes} of {len(hosts)} hosts joined the Ray cluster within "
            f"{NODE_WAIT_SECONDS} s; training with those",
            flush=True,
        )
    return nodes


def env_runner_count(requested: int) -> int:
    """One env runner per CPU the cluster offers, unless the hyperparameter says otherwise.

    The driver needs no Ray CPU of its own: it is the Ray driver process, not an actor, and with
    ``num_learners=0`` the learner runs inside it, so every cluster CPU can hold a runner. Each
    runner asks for one CPU, which makes Ray spread them over the hosts (with one CPU per host,
    one runner lands on each)."""
    if requested > 0:
        return requested
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def build_config(args: argparse.Namespace, env_runners: int) -> PPOConfig:
    """PPO settings measured to reach 450 on CartPole-v1 within 38,000-88,000 steps (README)."""
    return (
        PPOConfig()
        .environment(ENV_ID)
        .framework("torch")
        .env_runners(num_env_runners=env_runners)
        .training(
            lr=5e-4,
            gamma=0.99,
            lambda_=0.95,
            train_batch_size_per_learner=2000,
            minibatch_size=128,
            num_epochs=10,
            vf_loss_coeff=0.5,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64], vf_share_layers=False))
        .debugging(seed=args.seed)
    )


def _metric(result: dict[str, Any], key: str) -> float:
    value = result.get("env_runners", {}).get(key)
    return float(value) if value is not None else math.nan


def _timesteps(result: dict[str, Any]) -> int:
    steps = result.get("num_env_steps_sampled_lifetime")
    if steps is None:
        steps = result.get("env_runners", {}).get("num_env_steps_sampled_lifetime", 0)
    return int(steps)


def train(algo: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Iterate until the target or the iteration budget; what the last iteration measured."""
    started = time.perf_counter()
    mean, best, steps, iterations = math.nan, math.nan, 0, 0
    for iterations in range(1, args.max_iterations + 1):
        result = algo.train()
        mean = _metric(result, "episode_return_mean")
        best = _metric(result, "episode_return_max")
        steps = _timesteps(result)
        print(
            f"episode_reward_mean: {mean:.3f} episode_reward_max: {best:.3f} timesteps: {steps} "
            f"iteration: {iterations} seconds: {time.perf_counter() - started:.1f}",
            flush=True,
        )
        if mean >= args.target_reward:  # NaN (no finished episode yet) never stops it
            break
    return {
        "iterations": iterations,
        "timesteps": steps,
        # None rather than NaN, which is not JSON: no episode finished in the last iteration.
        "episode_reward_mean": None if math.isnan(mean) else mean,
        "episode_reward_max": None if math.isnan(best) else best,
        "target_reached": bool(mean >= args.target_reward),
        "train_seconds": round(time.perf_counter() - started, 2),
    }


def trained_module(algo: Any, model_dir: Path) -> RLModule:
    """The learner's RLModule, read back from a checkpoint, and saved to ``<model dir>/rl_module``.

    The learner holds the weights the last update produced (the env runners' copies are synced
    from it); reading it through a checkpoint uses RLlib's documented route instead of reaching
    into the learner group. The saved copy lets RLlib users restore the full module (actor and
    critic) with ``RLModule.from_checkpoint``; serving does not need it."""
    with tempfile.TemporaryDirectory() as scratch:
        group_dir = Path(scratch).resolve() / "learner_group"
        algo.learner_group.save_to_path(str(group_dir))
        module_dir = group_dir / COMPONENT_LEARNER / COMPONENT_RL_MODULE / DEFAULT_MODULE_ID
        module = RLModule.from_checkpoint(str(module_dir))
    target = model_dir / "rl_module"
    if target.exists():
        shutil.rmtree(target)
    module.save_to_path(str(target))
    return module


def actor_network(module: RLModule) -> tuple[torch.nn.Sequential, dict[str, Any]]:
    """The deterministic actor (actor encoder + pi head) as a plain Sequential, and the
    ``policy.json`` description examples/cartpole uses, so one inference.py serves both."""
    parts = [module.encoder.actor_encoder, module.pi]
    layers = [
        layer
        for part in parts
        for layer in part.modules()
        if isinstance(layer, torch.nn.Linear) or type(layer) in ACTIVATIONS
    ]
    linears = [layer for layer in layers if isinstance(layer, torch.nn.Linear)]
    activations = [ACTIVATIONS[type(layer)] for layer in layers if layer not in linears]
    alternating = all(
        isinstance(layer, torch.nn.Linear) == (i % 2 == 0) for i, layer in enumerate(layers)
    )
    if not alternating or len(layers) != 2 * len(linears) - 1 or len(set(activations)) > 1:
        raise TypeError(f"cannot export {parts}: expected Linear layers with one activation")
    actor = torch.nn.Sequential()
    for layer in layers:
        if isinstance(layer, torch.nn.Linear):
            copy = torch.nn.Linear(layer.in_features, layer.out_features)
            copy.load_state_dict(layer.state_dict())
            actor.append(copy)
        else:
            actor.append(type(layer)())
    spec = {
        "format": "cartpole-ppo-actor/1",
        "env_id": ENV_ID,
        "obs_dim": linears[0].in_features,
        "n_actions": linears[-1].out_features,
        "hidden_sizes": [layer.out_features for layer in linears[:-1]],
        "activation": activations[0] if activations else "tanh",
        "trained_with": f"ray[rllib]=={ray.__version__} PPO",
    }
    return actor.cpu().eval(), spec


def check_export(actor: torch.nn.Sequential, module: RLModule, observations: np.ndarray) -> float:
    """Fail loudly unless the exported network gives the RLModule's logits: a copy that drifted
    (a missed layer, a wrong order, a normalisation RLlib added) would serve another policy than
    the one trained and evaluated."""
    obs = torch.as_tensor(observations, dtype=torch.float32)
    with torch.no_grad():
        expected = module.forward_inference({"obs": obs})["action_dist_inputs"]
        got = actor(obs)
    error = float((got - expected).abs().max())
    if got.shape != expected.shape or not error <= EXPORT_TOLERANCE:
        raise RuntimeError(
            f"the exported actor's logits differ from the RLModule's by {error:g} "
            f"(shapes {tuple(got.shape)} vs {tuple(expected.shape)}, tolerance "
            f"{EXPORT_TOLERANCE:g}): refusing to save a network that is not the trained policy"
        )
    return error


def evaluate(
    actor: torch.nn.Sequential, episodes: int, seed: int
) -> tuple[list[float], np.ndarray]:
    """Returns of deterministic (greedy) episodes played by the exported network, on seeds apart
    from training's so that the score is not one of the training episodes replayed, and every
    observation it saw."""
    env = gym.make(ENV_ID)
    returns, seen = [], []
    with torch.no_grad():
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + 10_000 + episode)
            total, done = 0.0, False
            while not done:
                seen.append(obs)
                action = int(actor(torch.as_tensor(obs, dtype=torch.float32)).argmax())
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    env.close()
    return returns, np.asarray(seen, dtype=np.float32)


def inference_script() -> Path:
    """examples/cartpole's ``inference.py``, which serves this export too (same format): the
    estimator bundles it next to this file (``dependencies``); run from the repository, it is
    in the sibling folder."""
    for candidate in (HERE / "inference.py", HERE.parent / "cartpole" / "inference.py"):
        if candidate.is_file():
            return candidate
    raise SystemExit(
        "inference.py not found: bundle examples/cartpole/inference.py with this script "
        "(RLEstimator(..., dependencies=['examples/cartpole/inference.py']))"
    )


def save_model(actor: torch.nn.Sequential, spec: dict[str, Any], model_dir: Path) -> None:
    """The PyTorch inference container's layout: weights and description at the top,
    ``code/inference.py`` with a requirements file that adds nothing to the image."""
    torch.save(actor.state_dict(), model_dir / "policy.pt")
    (model_dir / "policy.json").write_text(json.dumps(spec, indent=2))
    code_dir = model_dir / "code"
    code_dir.mkdir(exist_ok=True)
    shutil.copy2(inference_script(), code_dir / "inference.py")
    (code_dir / "requirements.txt").write_text(INFERENCE_REQUIREMENTS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The learner updates a 64-unit MLP in this process; more torch threads only contend with
    # the env runners for the host's cores.
    torch.set_num_threads(1)
    args.model_dir.mkdir(parents=True, exist_ok=True)
    args.output_data_dir.mkdir(parents=True, exist_ok=True)
    print(f"hyperparameters: {vars(args)}", flush=True)
    env = os.environ
    print(
        f"RAY_ADDRESS={env.get('RAY_ADDRESS') or '(unset: starting a local Ray)'} "
        f"SM_CURRENT_HOST={env.get('SM_CURRENT_HOST')} SM_HOSTS={env.get('SM_HOSTS')} "
        f"SM_NUM_CPUS={env.get('SM_NUM_CPUS')}",
        flush=True,
    )

    ray.init()
    algo = None
    try:
        print(f"ray nodes alive: {wait_for_hosts()}", flush=True)
        cpus = ray.cluster_resources().get("CPU", 0)
        runners = env_runner_count(args.num_env_runners)
        print(f"cluster CPUs: {cpus:g}; env runners: {runners}", flush=True)
        algo = build_config(args, runners).build_algo()
        summary = train(algo, args)
        module = trained_module(algo, args.model_dir)
    finally:
        if algo is not None:
            algo.stop()
        ray.shutdown()
    last_mean = summary["episode_reward_mean"]
    print(
        f"training: {summary['iterations']} iterations, {summary['timesteps']} timesteps, "
        f"{summary['train_seconds']:.1f} s, episode_reward_mean "
        f"{'n/a' if last_mean is None else f'{last_mean:.3f}'}"
        f" (target {args.target_reward:g} "
        f"{'reached' if summary['target_reached'] else 'NOT reached'})",
        flush=True,
    )

    actor, spec = actor_network(module)
    # Random observations well beyond CartPole's usual states, plus the states the evaluation
    # visits, so that the check covers both the whole input range and the served one.
    random_obs = np.random.default_rng(args.seed).normal(0.0, 2.0, size=(1000, spec["obs_dim"]))
    returns, seen = evaluate(actor, args.eval_episodes, args.seed)
    error = check_export(actor, module, np.concatenate([random_obs, seen]))
    print(
        f"export check: max logit difference {error:.1e} over {len(random_obs)} random and "
        f"{len(seen)} evaluation observations",
        flush=True,
    )
    save_model(actor, spec, args.model_dir)

    evaluation = {
        "env_id": ENV_ID,
        "episodes": len(returns),
        # The reward gate's metric: a deterministic evaluation of the exported (served) network.
        "eval_reward_mean": float(np.mean(returns)),
        "mean_reward": float(np.mean(returns)),  # the name examples/cartpole also writes
        "std_reward": float(np.std(returns)),
        "min_reward": float(np.min(returns)),
        "max_reward": float(np.max(returns)),
        "rewards": returns,
        "target_reward": args.target_reward,
        **summary,
    }
    (args.output_data_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
    print(
        f"eval_reward_mean: {evaluation['eval_reward_mean']:.3f} over {len(returns)} episodes "
        f"(min {evaluation['min_reward']:.0f}, max {evaluation['max_reward']:.0f})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
