"""The runtime as users meet it: ``whisper-runtime`` started as a process, called over HTTP on loopback.

Measures time to ready, throughput (RTFx) and WER of the whole workload sent at once through the
KServe v2 REST protocol and through the OpenAI route, and p50/p95 latency of short clips at several
concurrency levels. Every request is bounded in count and time; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx

from common import (GpuSampler, Spread, accuracy, append_jsonl, audio_seconds, load_workload, percentile, print_table,
                    start_profiler)

MODEL_NAME = "whisper"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_dir: Path, runtime_flags: list[str], log_path: Path) -> tuple[subprocess.Popen, str]:
    http_port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "whisper_runtime", f"--model_name={MODEL_NAME}", f"--model_dir={model_dir}",
               f"--http_port={http_port}", f"--grpc_port={grpc_port}", *runtime_flags]
    log = log_path.open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return process, f"http://127.0.0.1:{http_port}"


async def wait_ready(base_url: str, process: subprocess.Popen, timeout: float = 420.0,
                     path: str = f"/v2/models/{MODEL_NAME}/ready") -> float:
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=5.0) as client:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
            try:
                if (await client.get(f"{base_url}{path}")).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise TimeoutError(f"the server was not ready after {timeout:.0f} s")


def exit_on_sigterm() -> None:
    """``timeout`` sends SIGTERM: exit through the ``finally`` blocks, so the server is stopped, not left holding
    the GPU for the next step."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (vLLM's engine core included), SIGKILL after a minute; a server
    that already exited is left alone (its log says why)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def v2_body(encoded: bytes) -> dict:
    return {"inputs": [{"name": "audio", "datatype": "BYTES", "shape": [1],
                        "data": [base64.b64encode(encoded).decode()]}],
            "parameters": {"language": "en"}}


async def v2_transcribe(client: httpx.AsyncClient, base_url: str, encoded: bytes) -> tuple[str, float]:
    started = time.perf_counter()
    response = await client.post(f"{base_url}/v2/models/{MODEL_NAME}/infer", json=v2_body(encoded))
    response.raise_for_status()
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    return outputs["text"]["data"][0], time.perf_counter() - started


async def openai_transcribe(client: httpx.AsyncClient, base_url: str, encoded: bytes) -> tuple[str, float]:
    started = time.perf_counter()
    response = await client.post(f"{base_url}/v1/audio/transcriptions",
                                 files={"file": ("audio.flac", encoded, "audio/flac")},
                                 data={"model": MODEL_NAME, "language": "en", "response_format": "json"})
    response.raise_for_status()
    return response.json()["text"], time.perf_counter() - started


ROUTES = {"v2 REST": v2_transcribe, "OpenAI": openai_transcribe}


def send_share(base_url: str, route: str, paths: list[str]) -> list[str]:
    """One load-generator process: its share of the requests, all in flight at once; texts in order."""
    async def send() -> list[str]:
        files = [Path(path).read_bytes() for path in paths]
        limits = httpx.Limits(max_connections=len(files))
        async with httpx.AsyncClient(timeout=600.0, limits=limits) as client:
            results = await asyncio.gather(*(ROUTES[route](client, base_url, data) for data in files))
        return [text for text, _ in results]

    return asyncio.run(send())


def throughput(base_url: str, paths: list[str], route: str, repeats: int, copies: int,
               clients: int) -> tuple[list[float], list[str]]:
    """The whole workload sent at once by ``clients`` processes (one Python client saturates before the
    server does), ``repeats`` times: wall seconds per repeat and the texts of the first copy."""
    requests = paths * copies
    shares = [requests[index::clients] for index in range(clients)]
    walls = []
    with ProcessPoolExecutor(clients) as pool:
        for _ in range(repeats):
            started = time.perf_counter()
            results = list(pool.map(send_share, [base_url] * clients, [route] * clients, shares))
            walls.append(time.perf_counter() - started)
    return walls, [results[index % clients][index // clients] for index in range(len(paths))]


async def latencies(base_url: str, clips: list[bytes], concurrency: int, requests: int) -> list[float]:
    """``requests`` clips through v2 REST with at most ``concurrency`` in flight."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=300.0, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(data: bytes) -> float:
            async with gate:
                return (await v2_transcribe(client, base_url, data))[1]
        return list(await asyncio.gather(*(one(clips[i % len(clips)]) for i in range(requests))))


async def run(args: argparse.Namespace, runtime_flags: list[str]) -> None:
    items = load_workload(args.data)
    paths = [str(args.data / item.name) for item in items]
    clips = [(args.data / item.name).read_bytes() for item in items if item.kind == "clip"]
    seconds = audio_seconds(items) * args.copies
    process, base_url = start_server(args.model_dir, runtime_flags, args.log)
    try:
        ready = await wait_ready(base_url, process)
        rows = []
        record = {"label": args.label, "ready_seconds": round(ready, 1), "audio_seconds_per_repeat": seconds,
                  "clients": args.clients}
        for route in ROUTES:
            target = args.profile / f"profile-{route.replace(' ', '-').lower()}.txt" if args.profile else None
            profiler = start_profiler(process.pid, target) if target else None
            gpu = GpuSampler()
            gpu.measuring = True
            walls, texts = await asyncio.to_thread(
                throughput, base_url, paths, route, args.repeats, args.copies, args.clients)
            gpu.stop()
            if profiler is not None:
                profiler.wait(timeout=120)
            rtfx = tuple(seconds / wall for wall in walls)
            scores = accuracy(items, texts)
            record[route] = {"rtfx": list(rtfx), **scores, "gpu_busy_percent": gpu.busy_percent()}
            rows.append([route, round(seconds, 1), Spread(rtfx), scores["wer_all"], scores["wer_long"],
                         gpu.busy_percent()])
        print_table(f"{args.label}: throughput over HTTP (ready in {ready:.1f} s)",
                    ["route", "audio s/repeat", "RTFx", "WER all %", "WER long %", "GPU busy %"], rows)
        latency_rows = []
        for concurrency in args.concurrency:
            values = await latencies(base_url, clips, concurrency, max(args.latency_requests, concurrency * 4))
            record[f"latency_c{concurrency}"] = {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}
            latency_rows.append([concurrency, len(values), f"{percentile(values, 0.5):.3f}",
                                 f"{percentile(values, 0.95):.3f}"])
        print_table(f"{args.label}: v2 REST latency of short clips", ["concurrency", "requests", "p50 s", "p95 s"],
                    latency_rows)
        append_jsonl(args.results, record)
    finally:
        stop_server(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--label", default="runtime")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--clients", type=int, default=4, help="load-generator processes")
    parser.add_argument("--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[1, 4, 16, 64])
    parser.add_argument("--latency_requests", type=int, default=64)
    parser.add_argument("--log", type=Path, default=Path("server.log"))
    parser.add_argument("--results", type=Path)
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles of the server under load")
    args, runtime_flags = parser.parse_known_args()
    exit_on_sigterm()
    asyncio.run(run(args, runtime_flags))


if __name__ == "__main__":
    main()
