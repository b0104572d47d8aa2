"""One Python environment per ``requirements.txt``, cached by its hash: local mode's images.

On SageMaker every job runs in its own container, so two examples can pin conflicting versions
(``ray[rllib]==2.60.0`` pins ``gymnasium==1.2.2``, the Stable-Baselines3 example 1.4.0). Local mode
runs jobs on this machine, so a job whose requirements the user's interpreter does not satisfy
gets a virtual environment of its own instead of rewriting the user's: built once under the cache
directory, keyed by the requirement lines and the Python version, and reused by every later job
with the same requirements. A job whose requirements are already satisfied runs in the user's
interpreter, as before (nothing would collide).

An environment is layered the way a framework image is: the user's interpreter's packages sit
underneath (a ``.pth`` file puts its site-packages after the environment's own, as an image's
preinstalled torch is there before ``requirements.txt``), and pip installs into the environment
only what they do not satisfy. Its own versions shadow the ones underneath (gymnasium 1.2.2 over
the user's 1.4.0) and nothing underneath is changed: pip does not uninstall outside an
environment. So an unpinned ``torch`` is the user's torch, as it is the image's on SageMaker.

The cache is ``$CDK_SAGEMAKER_RL_ENV_CACHE`` or ``~/.cache/cdk-sagemaker-rl/envs``. Builds take a
file lock, so concurrent jobs (or test workers) wait for one build instead of racing, and a build
counts only once its marker file is written: an interrupted build is started again.

Also a command: ``python -m cdk_sagemaker_rl.local.environments REQUIREMENTS...`` builds the
environments ahead of time (``make test`` does, so that the timed test run does not install).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from .requirements import check_requirements_with, requirement_lines

__all__ = ["CACHE_ENV", "build_environment", "cache_root", "environment_dir", "job_python"]

CACHE_ENV = "CDK_SAGEMAKER_RL_ENV_CACHE"
_COMPLETE = ".complete"


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "cdk-sagemaker-rl" / "envs"


_IDENTITY = "import os, sys; print(sys.version.split()[0], os.path.realpath(sys.prefix))"


def _interpreter_identity(python: str) -> str:
    """The Python version and the environment the interpreter belongs to: the cached environment
    layers over that one's packages, so two venvs of one Python version get one each."""
    if python == sys.executable:
        return f"{sys.version.split()[0]} {os.path.realpath(sys.prefix)}"
    result = subprocess.run([python, "-c", _IDENTITY], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def environment_dir(requirements: Path, python: str = sys.executable) -> Path:
    """Where the environment for these requirements (and this interpreter) lives: keyed by the
    requirement lines, so that editing a comment does not build a new one."""
    digest = hashlib.sha256()
    digest.update(_interpreter_identity(python).encode())
    for line in requirement_lines(requirements.read_text()):
        digest.update(b"\0" + line.encode())
    return cache_root() / digest.hexdigest()[:16]


def environment_python(directory: Path) -> Path:
    return directory / "bin" / "python"


def build_environment(
    requirements: Path,
    *,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
    run: Callable[[list[str], Mapping[str, str]], int] | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """The cached environment's interpreter for ``requirements``, built if it is not there yet.

    ``run`` runs a command and returns its exit code (the training runner passes one that streams
    to the job's log and honours stop requests); a failed ``pip install`` raises
    ``subprocess.CalledProcessError`` and leaves no environment behind.
    """
    environment = {**os.environ, **(env or {})}
    runner = run or _run_plain
    directory = environment_dir(requirements, python)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f"{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (directory / _COMPLETE).is_file() and _layers_intact(directory):
            log(f"Using the environment {directory} (built before for these requirements)")
            return environment_python(directory)
        if directory.exists():
            shutil.rmtree(directory)
        log(f"Building an environment for {requirements.name} in {directory} (once per hash)")
        steps = (
            # pip comes from the building interpreter (--python), so the venv needs none.
            [python, "-m", "venv", "--without-pip", str(directory)],
            [python, "-c", _LAYER_UNDER, str(environment_python(directory))],
            [
                python,
                "-m",
                "pip",
                "--python",
                str(environment_python(directory)),
                "install",
                "--no-input",
                "-r",
                str(requirements),
            ],
        )
        try:
            for command in steps:
                code = runner(command, environment)
                if code != 0:
                    raise subprocess.CalledProcessError(code, command)
        except BaseException:
            # Failed or stopped: nothing half-built may pass for this hash's environment.
            shutil.rmtree(directory, ignore_errors=True)
            raise
        (directory / _COMPLETE).write_text(requirements.read_text())
        return environment_python(directory)


#: Run by the building interpreter with the new environment's interpreter as argument: write a
#: ``.pth`` into the environment that appends the builder's site-packages to its path.
_LAYER_UNDER = """
import site, subprocess, sys
from pathlib import Path
purelib = subprocess.run(
    [sys.argv[1], "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
    capture_output=True, text=True, check=True,
).stdout.strip()
Path(purelib, "_cdk_sagemaker_rl_underneath.pth").write_text(
    "".join(p + "\\n" for p in site.getsitepackages())
)
"""


def _layers_intact(directory: Path) -> bool:
    """Whether the packages the environment layers over are still where its ``.pth`` says (a
    deleted or moved venv underneath means building it again)."""
    for pth in directory.glob("lib/python*/site-packages/_cdk_sagemaker_rl_underneath.pth"):
        return all(Path(line).is_dir() for line in pth.read_text().splitlines() if line)
    return False


def _run_plain(command: list[str], env: Mapping[str, str]) -> int:
    return subprocess.run(command, env=dict(env), check=False).returncode


def job_python(
    requirements: Path,
    python: str,
    env: Mapping[str, str],
    run: Callable[[list[str], Mapping[str, str]], int],
    log: Callable[[str], None],
) -> str:
    """The interpreter a job runs in: ``python`` when it satisfies ``requirements``, else the
    cached environment built for them."""
    missing = check_requirements_with(python, requirements, {**os.environ, **env})
    if not missing:
        log(f"requirements.txt is already satisfied by {python}: nothing to install")
        return python
    log(f"requirements.txt is not satisfied by {python} ({'; '.join(missing)})")
    return str(build_environment(requirements, python=python, env=env, run=run, log=log))


def main(argv: list[str]) -> int:
    for name in argv:
        print(build_environment(Path(name)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
