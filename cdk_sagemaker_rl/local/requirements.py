"""Which lines of a ``requirements.txt`` an interpreter does not satisfy yet.

The training container and the inference container always ``pip install -r requirements.txt``;
local mode runs in the user's own interpreter, where doing so every time would rewrite their
venv, so it installs only when something is missing. Training and the model server both ask here.

The job's interpreter may not be this one, so this module is also a script that interpreter runs
by path (``python requirements.py --check-requirements FILE``): it imports only the standard
library at import time (``packaging`` when called) and nothing relative.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["check_requirements_with", "requirement_lines", "unsatisfied_requirements"]


def requirement_lines(text: str) -> Iterable[str]:
    """Logical lines of a requirements file: continuations joined, comments and blanks dropped."""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        pending = ""
        if line.lstrip().startswith("#"):
            continue
        line = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if line:
            yield line


# Options that change where packages come from but name none: they cannot be unsatisfied.
_NEUTRAL_OPTIONS = (
    "--index-url",
    "-i",
    "--extra-index-url",
    "--find-links",
    "-f",
    "--trusted-host",
    "--pre",
    "--prefer-binary",
    "--no-binary",
    "--only-binary",
)


def unsatisfied_requirements(requirements_file: Path) -> list[str]:
    """The lines of ``requirements_file`` that the running interpreter does not satisfy.

    A line is satisfied when its distribution is installed at a version its specifier allows
    (and so are the requirements its extras add). Lines that cannot be checked this way (URLs,
    paths, ``-r``/``-e``/``-c`` options) count as unsatisfied, so pip gets to decide.
    """
    try:
        from importlib import metadata

        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:
        return ["packaging is not installed: cannot check " + str(requirements_file)]

    def satisfied(requirement: Requirement, seen: set[tuple[str, str]]) -> bool:
        if requirement.url:
            return False
        if requirement.marker is not None and not requirement.marker.evaluate():
            return True
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            return False
        if not requirement.specifier.contains(dist.version, prereleases=True):
            return False
        for extra in requirement.extras:
            if (requirement.name, extra) in seen:
                continue
            seen.add((requirement.name, extra))
            for text in dist.requires or []:
                sub = Requirement(text)
                if sub.marker is None or not sub.marker.evaluate({"extra": extra}):
                    continue
                if sub.marker.evaluate({"extra": ""}):
                    continue  # not specific to this extra: already a plain dependency
                sub.marker = None
                if not satisfied(sub, seen):
                    return False
        return True

    missing = []
    for line in requirement_lines(requirements_file.read_text(encoding="utf-8")):
        if line.startswith("-"):
            if not line.startswith(_NEUTRAL_OPTIONS):
                missing.append(line)
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            missing.append(line)
            continue
        if not satisfied(requirement, set()):
            missing.append(line)
    return missing


def check_requirements_with(
    python: str, requirements_file: Path, env: Mapping[str, str]
) -> list[str]:
    """Ask ``python`` (the job's interpreter, maybe not this one) what it does not satisfy."""
    try:
        completed = subprocess.run(
            [python, str(Path(__file__).resolve()), "--check-requirements", str(requirements_file)],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return [f"could not check with {python}: {error}"]
    if completed.returncode not in (0, 1):
        return [f"could not check with {python}: {completed.stderr.strip()[-500:]}"]
    return [line for line in completed.stdout.splitlines() if line.strip()]


def _main(argv: list[str]) -> int:
    """``requirements.py --check-requirements FILE``: print unsatisfied lines; exit 1 if any."""
    if len(argv) != 2 or argv[0] != "--check-requirements":
        print("usage: requirements.py --check-requirements REQUIREMENTS_FILE", file=sys.stderr)
        return 2
    missing = unsatisfied_requirements(Path(argv[1]))
    for line in missing:
        print(line)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
