"""Shared fixtures: real runtime servers on CPU, started once per session: tiny.en for most server tests, the
multilingual base model for language detection and translation."""

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
from runtime_samples import (SERVER_API_KEY, SERVER_BODY_IDLE_TIMEOUT, SERVER_HEADER_TIMEOUT, SERVER_MAX_AUDIO_SECONDS,
                             SERVER_MAX_UPLOAD_MB, http_client, openai_client_of)


@dataclasses.dataclass(frozen=True)
class RuntimeServer:
    model_name: str
    http_url: str
    grpc_address: str
    log: Path
    pid: int


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


def serve(model_dir: Path, log: Path, *extra_flags: str):
    """Start whisper-runtime on ``model_dir`` (Transformers, fp32, CPU), yield it once ready, stop it after."""
    http_port, grpc_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "whisper_runtime",
        "--model_name=whisper", f"--model_dir={model_dir}", "--engine=transformers", "--dtype=float32",
        f"--http_port={http_port}", f"--grpc_port={grpc_port}", "--max_num_seqs=8",
        f"--max_upload_mb={SERVER_MAX_UPLOAD_MB}", f"--max_audio_seconds={SERVER_MAX_AUDIO_SECONDS}",
        f"--header_timeout={SERVER_HEADER_TIMEOUT}", f"--body_idle_timeout={SERVER_BODY_IDLE_TIMEOUT}", *extra_flags,
    ]  # fmt: skip
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=os.environ | {"OMP_NUM_THREADS": "2"})
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_ready(url, process, log)
        yield RuntimeServer("whisper", url, f"127.0.0.1:{grpc_port}", log, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def runtime_server(tiny_en_dir: Path, tmp_path_factory) -> RuntimeServer:
    yield from serve(tiny_en_dir, tmp_path_factory.mktemp("runtime") / "server.log")


@pytest.fixture(scope="session")
def keyed_server(tiny_en_dir: Path, tmp_path_factory) -> RuntimeServer:
    """tiny.en with an API key (``SERVER_API_KEY``) in a file, as a mounted Secret gives it."""
    folder = tmp_path_factory.mktemp("runtime-keyed")
    key_file = folder / "api-key"
    key_file.write_text(SERVER_API_KEY + "\n")  # what `kubectl create secret --from-file` of an echoed key leaves
    yield from serve(tiny_en_dir, folder / "server.log", f"--api_key_file={key_file}")


@pytest.fixture(scope="session")
def base_server(tmp_path_factory) -> RuntimeServer:
    from whisper_devkit.models import ensure_model

    yield from serve(ensure_model("base"), tmp_path_factory.mktemp("runtime-base") / "server.log")


@pytest.fixture(scope="module")
def server(runtime_server) -> RuntimeServer:
    """The server a module's ``http`` and ``openai_client`` talk to: tiny.en unless the module overrides it."""
    return runtime_server


@pytest.fixture(scope="module")
def http(server: RuntimeServer):
    yield from http_client(server)


@pytest.fixture(scope="module")
def openai_client(server: RuntimeServer):
    return openai_client_of(server)


#: What a benchmark-mode window decodes in the tests: few tokens, so random weights on CPU stay fast.
BENCHMARK_TOKENS = 12


@pytest.fixture(scope="session")
def tiny_shape_dir(tmp_path_factory) -> Path:
    """Tiny's architecture without weights (bench/model_shapes.py), for the runtime's benchmark mode."""
    from whisper_devkit.models import ensure_model

    out = tmp_path_factory.mktemp("shapes")
    bench = Path(__file__).resolve().parents[2] / "bench"
    subprocess.run([sys.executable, str(bench / "model_shapes.py"), "--tokenizer_from", str(ensure_model("base")),
                    "--out", str(out), "tiny"], check=True, capture_output=True)
    return out / "tiny"


@pytest.fixture(scope="module")
def benchmark_server(tiny_shape_dir: Path, tmp_path_factory) -> RuntimeServer:
    log = tmp_path_factory.mktemp("runtime-benchmark") / "server.log"
    yield from serve(tiny_shape_dir, log, "--benchmark_random_weights", f"--benchmark_tokens_per_window={BENCHMARK_TOKENS}")
