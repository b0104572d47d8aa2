"""Train a PPO policy for gymnasium CartPole-v1 under the SageMaker training contract.

SageMaker (or local mode) runs this file with the job's hyperparameters as ``--key value``
arguments and the ``SM_*`` environment. It:

- trains Stable-Baselines3 PPO on one torch thread (an MLP this small gains nothing from more, and
  extra threads only contend with the environment loop);
- prints ``episode_reward_mean: <float>`` (and ``episode_reward_max``) after every rollout, the
  lines the RL estimator's default metric regexes scrape into CloudWatch metrics;
- exports the deterministic actor (observation -> action logits) as a plain ``state_dict`` plus a
  small JSON description, so serving needs only torch: no Stable-Baselines3 or gymnasium in the
  inference container, and no TorchScript/pickle version coupling between the two containers;
- copies ``inference.py`` into ``<model dir>/code/``, the PyTorch inference container's layout;
- evaluates the exported actor, the very network that will be served, over deterministic episodes
  and writes the result to ``<output data dir>/evaluation.json``.

A ``pretrained`` input channel holding a previous job's ``model.zip`` (or its ``model.tar.gz``)
continues training from that policy instead of starting from scratch.

Defaults reach the maximum score (500) on CartPole-v1: 50,000 steps, about half a minute on one CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

ENV_ID = "CartPole-v1"
HERE = Path(__file__).resolve().parent
ACTIVATIONS = {torch.nn.Tanh: "tanh", torch.nn.ReLU: "relu"}

# What the inference container must install for inference.py: nothing, torch comes with it.
INFERENCE_REQUIREMENTS = (
    "# inference.py needs only torch, which the SageMaker PyTorch inference container provides.\n"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])

    def add(name: str, kind: type, default: Any, text: str) -> None:
        # Hyperparameters arrive as --total_timesteps (the estimator's keys); accept dashes too.
        parser.add_argument(
            f"--{name}",
            f"--{name.replace('_', '-')}",
            type=kind,
            default=default,
            dest=name,
            help=f"{text} (default: {default})",
        )

    add("total_timesteps", int, 50_000, "environment steps to train for")
    add("learning_rate", float, 1e-3, "Adam learning rate")
    add("n_steps", int, 1024, "steps collected per rollout")
    add("batch_size", int, 64, "minibatch size")
    add("n_epochs", int, 10, "optimisation epochs per rollout")
    add("gamma", float, 0.98, "discount factor")
    add("gae_lambda", float, 0.8, "GAE lambda")
    add("clip_range", float, 0.2, "PPO clip range")
    add("ent_coef", float, 0.0, "entropy bonus coefficient")
    add("seed", int, 0, "random seed (training and evaluation)")
    add("eval_episodes", int, 20, "deterministic evaluation episodes")
    # Where to read and write: SageMaker's directories when it runs the script, else local ones.
    env = os.environ
    parser.add_argument("--model-dir", type=Path, default=Path(env.get("SM_MODEL_DIR", "model")))
    parser.add_argument(
        "--output-data-dir", type=Path, default=Path(env.get("SM_OUTPUT_DATA_DIR", "output/data"))
    )
    pretrained = env.get("SM_CHANNEL_PRETRAINED")
    parser.add_argument(
        "--pretrained-dir", type=Path, default=Path(pretrained) if pretrained else None
    )
    return parser.parse_args(argv)


class RewardMetrics(BaseCallback):
    """Print the metric lines after each rollout, from the last 100 finished episodes."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        episodes = self.model.ep_info_buffer
        if not episodes:
            return
        rewards = [float(info["r"]) for info in episodes]
        print(
            f"timesteps: {self.num_timesteps} "
            f"episode_reward_mean: {np.mean(rewards):.3f} "
            f"episode_reward_max: {np.max(rewards):.3f}",
            flush=True,
        )


def find_pretrained(directory: Path | None, scratch: Path) -> Path | None:
    """A ``model.zip`` in the pretrained channel, taken out of a ``model.tar.gz`` if need be."""
    if directory is None or not directory.is_dir():
        return None
    zips = sorted(directory.rglob("model.zip"))
    if zips:
        return zips[0]
    for archive in sorted(directory.rglob("*.tar.gz")):
        with tarfile.open(archive) as tar:
            try:
                member = tar.extractfile("model.zip")
            except KeyError:
                continue
            if member is None:
                continue
            target = scratch / "model.zip"
            target.write_bytes(member.read())
            return target
    raise FileNotFoundError(f"the pretrained channel {directory} holds no model.zip")


def actor_network(model: PPO) -> tuple[torch.nn.Sequential, dict[str, Any]]:
    """The deterministic actor as a plain Sequential, and what inference.py needs to rebuild it."""
    policy = model.policy
    layers = [*policy.mlp_extractor.policy_net, policy.action_net]
    linears = [layer for layer in layers if isinstance(layer, torch.nn.Linear)]
    activations = {ACTIVATIONS.get(type(layer)) for layer in layers if layer not in linears}
    if None in activations or len(activations) > 1 or len(layers) != 2 * len(linears) - 1:
        raise TypeError(f"cannot export {layers}: expected Linear layers with one activation")
    actor = torch.nn.Sequential(*copy.deepcopy(layers)).cpu().eval()
    spec = {
        "format": "cartpole-ppo-actor/1",
        "env_id": ENV_ID,
        "obs_dim": linears[0].in_features,
        "n_actions": linears[-1].out_features,
        "hidden_sizes": [layer.out_features for layer in linears[:-1]],
        "activation": activations.pop() if activations else "tanh",
    }
    return actor, spec


def evaluate(
    actor: torch.nn.Sequential, episodes: int, seed: int
) -> tuple[list[float], np.ndarray]:
    """Returns of deterministic episodes played by ``actor``, and every observation it saw."""
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    args.model_dir.mkdir(parents=True, exist_ok=True)
    args.output_data_dir.mkdir(parents=True, exist_ok=True)
    prefix = "SM_CHANNEL_"
    channels = {k[len(prefix) :].lower(): v for k, v in os.environ.items() if k.startswith(prefix)}
    print(f"channels: {channels or 'none'}; hyperparameters: {vars(args)}", flush=True)

    env = gym.make(ENV_ID)
    with tempfile.TemporaryDirectory() as scratch:
        pretrained = find_pretrained(args.pretrained_dir, Path(scratch))
        if pretrained is not None:
            print(f"continuing from {pretrained}", flush=True)
            model = PPO.load(pretrained, env=env, device="cpu")
            model.set_random_seed(args.seed)
        else:
            model = PPO(
                "MlpPolicy",
                env,
                learning_rate=args.learning_rate,
                n_steps=args.n_steps,
                batch_size=args.batch_size,
                n_epochs=args.n_epochs,
                gamma=args.gamma,
                gae_lambda=args.gae_lambda,
                clip_range=args.clip_range,
                ent_coef=args.ent_coef,
                seed=args.seed,
                device="cpu",
                verbose=0,
            )
    started = time.perf_counter()
    model.learn(
        total_timesteps=args.total_timesteps,
        callback=RewardMetrics(),
        reset_num_timesteps=pretrained is None,
    )
    train_seconds = time.perf_counter() - started
    print(f"trained {model.num_timesteps} timesteps in {train_seconds:.1f} s", flush=True)

    actor, spec = actor_network(model)
    returns, observations = evaluate(actor, args.eval_episodes, args.seed)
    # The exported network must act exactly like the trained policy it was cut from.
    with torch.no_grad():
        exported = actor(torch.from_numpy(observations)).argmax(dim=1).numpy()
    original, _ = model.predict(observations, deterministic=True)
    if not np.array_equal(exported, original):
        raise RuntimeError("the exported actor disagrees with the trained policy")

    torch.save(actor.state_dict(), args.model_dir / "policy.pt")
    (args.model_dir / "policy.json").write_text(json.dumps(spec, indent=2))
    model.save(args.model_dir / "model.zip")  # the full SB3 model, to continue training from
    code_dir = args.model_dir / "code"
    code_dir.mkdir(exist_ok=True)
    shutil.copy2(HERE / "inference.py", code_dir / "inference.py")
    (code_dir / "requirements.txt").write_text(INFERENCE_REQUIREMENTS)

    evaluation = {
        "env_id": ENV_ID,
        "episodes": len(returns),
        "mean_reward": float(np.mean(returns)),
        "std_reward": float(np.std(returns)),
        "min_reward": float(np.min(returns)),
        "max_reward": float(np.max(returns)),
        "rewards": returns,
        "timesteps": int(model.num_timesteps),
        "train_seconds": round(train_seconds, 2),
    }
    (args.output_data_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
    mean = evaluation["mean_reward"]
    print(f"eval_reward_mean: {mean:.3f} over {len(returns)} episodes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
