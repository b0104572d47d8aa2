"""The hosts of one multi-host job, run together inside a private network namespace.

A SageMaker job's hosts share a network of their own. Here they are processes on one machine, and
Ray's servers listen on every interface of it (``*:port``), which would expose them to
everything this machine can reach. So the runner starts this module under
``unshare --user --map-root-user --net``: a network namespace whose only interface is loopback,
brought up here. ``algo-k`` is ``127.0.0.(k+1)`` on it, and nothing the hosts open is reachable from
outside it, so two jobs running at once do not see each other either.

It is given the hosts' commands as JSON (a file named on the command line), starts each host in a
process group of its own, prefixes every output line with ``[algo-k]``, and ends when:

* every host has exited 0: exit 0;
* any host exits non-zero: the other hosts get SIGTERM, then SIGKILL after the grace period, and
  the first failure (host, exit code, its stderr tail) is written to the result file; exit 1;
* it gets SIGTERM itself (a stop request): the same for every host, exit 143.

Standard library only: it runs in the runner's interpreter, before any of the job's code.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from typing import IO, Any

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_STDERR_TAIL_LINES = 200
_POLL_SECONDS = 0.1


def loopback_up() -> None:
    """A new network namespace has ``lo`` down; bring it up (what ``ip link set lo up`` does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | _IFF_UP, b""))


class _Host:
    def __init__(self, spec: dict[str, Any], lock: threading.Lock) -> None:
        self.name: str = spec["name"]
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self.process = subprocess.Popen(
            spec["command"],
            cwd=spec["cwd"],
            env=spec["env"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            process_group=0,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self.readers = [
            threading.Thread(
                target=self._pump, args=(self.process.stdout, sys.stdout, None, lock), daemon=True
            ),
            threading.Thread(
                target=self._pump,
                args=(self.process.stderr, sys.stderr, self.stderr_tail, lock),
                daemon=True,
            ),
        ]
        for reader in self.readers:
            reader.start()

    def _pump(
        self, stream: IO[str], out: IO[str], keep: deque[str] | None, lock: threading.Lock
    ) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            with lock:
                out.write(f"[{self.name}] {line}\n")
                out.flush()
            if keep is not None:
                keep.append(line)

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def finish(self) -> None:
        self.signal(signal.SIGKILL)
        self.process.wait()
        for reader in self.readers:
            reader.join(timeout=5)


def _stop_all(hosts: list[_Host], grace: float) -> None:
    for host in hosts:
        if host.process.poll() is None:
            host.signal(signal.SIGTERM)
    end = time.monotonic() + grace
    while time.monotonic() < end and any(h.process.poll() is None for h in hosts):
        time.sleep(_POLL_SECONDS)


def run(spec: dict[str, Any]) -> int:
    loopback_up()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = threading.Lock()
    hosts = [_Host(host, lock) for host in spec["hosts"]]
    grace = float(spec.get("grace_seconds", 10))
    failure: dict[str, Any] | None = None
    try:
        while True:
            if stop.is_set():
                _stop_all(hosts, grace)
                return 143
            codes = {h.name: h.process.poll() for h in hosts}
            failed = [h for h in hosts if codes[h.name] not in (None, 0)]
            if failed:
                first = failed[0]
                failure = {
                    "host": first.name,
                    "exit_code": codes[first.name],
                    "stderr_tail": list(first.stderr_tail),
                }
                _stop_all(hosts, grace)
                return 1
            if all(code == 0 for code in codes.values()):
                return 0
            time.sleep(_POLL_SECONDS)
    finally:
        for host in hosts:
            host.finish()
        if failure is not None:
            # After finish(): the readers have drained the failed host's last lines.
            first = next(h for h in hosts if h.name == failure["host"])
            failure["stderr_tail"] = list(first.stderr_tail)
        with open(spec["result_file"], "w", encoding="utf-8") as result:
            json.dump({"failure": failure}, result)


def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as spec_file:
        spec = json.load(spec_file)
    return run(spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
