"""The files of one local-mode installation under ``.local-mode/`` (``--state-dir``), and the lock
that lets one deploy or destroy run at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from .messages import LocalModeError

__all__ = ["State", "alive", "exclusive"]


class State:
    """The files of one local-mode installation."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root.resolve()
        self.port = port
        self.emulator_dir = self.root / "emulator"
        self.outputs = self.root / "outputs.json"
        self.lock_file = self.root / "deploy.lock"
        self.cdk_out = self.root / "cdk.out"
        #: Where the CLI runs when it needs no app (no cdk.json there).
        self.no_app_dir = self.root / "cdk-no-app"

    @property
    def pid_file(self) -> Path:
        return self.emulator_dir / "emulator.pid"

    @property
    def log_file(self) -> Path:
        return self.emulator_dir / "emulator.log"

    @property
    def training_log(self) -> Path:
        return self.emulator_dir / "training.log"

    def emulator_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if alive(pid) else None

    def emulator_port(self) -> int | None:
        try:
            return int(json.loads((self.emulator_dir / "emulator.json").read_text())["port"])
        except (OSError, ValueError, KeyError):
            return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as dead.
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields and fields[0] == "Z":
            return False
    return True


@contextlib.contextmanager
def exclusive(state: State, what: str) -> Iterator[None]:
    """One deploy/destroy at a time: a second one is refused at once, never queued or hung."""
    state.root.mkdir(parents=True, exist_ok=True)
    with open(state.lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LocalModeError(
                f"cannot {what}: a local-mode deploy or destroy is already running ({holder}). "
                "Wait for it to finish, or stop it first."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}: {what}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
