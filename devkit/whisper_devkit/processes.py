"""Long-running child processes of the local control plane, each with its own log file."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class ClusterStartError(RuntimeError):
    """A control-plane component exited or never became ready; the message carries its log tail."""


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


class ManagedProcess:
    """One binary started in its own process group, so stopping it stops anything it spawned."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None):
        """``env``: the child's whole environment (default: this process's)."""
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True, env=self.env)

    def check_alive(self) -> None:
        if self._process is None or self._process.poll() is not None:
            raise ClusterStartError(f"{self.name} is not running; {self.log_path}:\n{log_tail(self.log_path)}")

    def stop(self, grace_seconds: float = 10) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()


def wait_until(condition: Callable[[], bool], what: str, timeout: float, watched: list[ManagedProcess]) -> None:
    """Poll ``condition`` until true; fail early with a log tail if a watched process dies meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        for process in watched:
            process.check_alive()
        if time.monotonic() > deadline:
            raise ClusterStartError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.3)
