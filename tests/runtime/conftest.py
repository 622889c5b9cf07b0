"""Shared fixtures: one real runtime server (tiny.en on CPU) for every server test of the session."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

#: Small limits so that the 413/400 cases are cheap to provoke.
SERVER_MAX_UPLOAD_MB = 16
SERVER_MAX_AUDIO_SECONDS = 400


@dataclasses.dataclass(frozen=True)
class RuntimeServer:
    model_name: str
    http_url: str
    grpc_address: str
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_en_dir() -> Path:
    from whisper_devkit.models import ensure_model

    return ensure_model("tiny.en")


def _wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"whisper-runtime exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"whisper-runtime not ready after {timeout} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def runtime_server(tiny_en_dir: Path, tmp_path_factory) -> RuntimeServer:
    http_port, grpc_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("runtime") / "server.log"
    command = [
        sys.executable, "-m", "whisper_runtime",
        "--model_name=whisper", f"--model_dir={tiny_en_dir}", "--engine=transformers", "--dtype=float32",
        f"--http_port={http_port}", f"--grpc_port={grpc_port}", "--max_num_seqs=8",
        f"--max_upload_mb={SERVER_MAX_UPLOAD_MB}", f"--max_audio_seconds={SERVER_MAX_AUDIO_SECONDS}",
    ]  # fmt: skip
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=os.environ | {"OMP_NUM_THREADS": "2"})
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_ready(url, process, log)
        yield RuntimeServer("whisper", url, f"127.0.0.1:{grpc_port}", log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
