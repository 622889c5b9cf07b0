"""Our server against the one a user would otherwise run, ``vllm serve``, on the same GPU, in one run.

Both servers get the same model, the same engine settings (the runtime contract's defaults, turned into
``vllm serve`` flags by ``peer_argv``), the same client and the same audio, one server at a time:

    python bench/peer_bench.py --server ours --model_dir M --data D [runtime flags ...]
    python bench/peer_bench.py --server peer --model_dir M --data D

Workloads (``bench/prepare_data.py`` makes the data): ``long`` one long-form file; ``c8`` the
``concurrent`` files sent at once; ``c32`` four copies of each sent at once; ``clips`` 64 short clips at
once and ``clip1`` the same clips one at a time (latency p50/p95). Each with the language given (en) and
detected. Routes: ours over OpenAI, v2 REST JSON (base64), v2 REST binary extension and v2 gRPC; the peer
over OpenAI; ``--routes "OpenAI,OpenAI words"`` adds what word timestamps cost (ours only). Every request body is built before the clock starts, so the client costs the same for every
server, and audio is sent as 16-bit WAV (what most clients upload). One JSON line per cell in --results,
a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable, Optional

import httpx
import numpy as np
import soundfile

from common import (GpuSampler, Item, accuracy, append_jsonl, counters_of, load_workload, per_request, percentile,
                    PHASES_HEADER, phases_column, print_table)
from http_bench import MODEL_NAME, exit_on_sigterm, free_port, start_server, stop_server, wait_ready

LANGUAGES = {"en": "en", "detected": None}


# -- the peer's command line -------------------------------------------------------------------------------

def peer_argv(model_dir: Path, port: int, runtime_flags: list[str]) -> list[str]:
    """``vllm serve`` with the engine arguments our runtime derives from the same flags (its defaults when
    none), less our timestamp-rules logits processor, which ``vllm serve`` does not have."""
    from whisper_runtime import contract
    from whisper_runtime.engines.vllm_engine import engine_args_from

    engine_args = engine_args_from(contract.parse(runtime_flags), model_dir)
    engine_args.pop("logits_processors")
    model = engine_args.pop("model")
    argv = [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", model, "--served-model-name", MODEL_NAME,
            "--host", "127.0.0.1", "--port", str(port)]
    for name, value in engine_args.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv += [flag] if value else []  # vLLM's boolean flags are off by default
        elif isinstance(value, (dict, list)):
            argv += [flag, json.dumps(value)]
        else:
            argv += [flag, str(value)]
    return argv


def start_peer(model_dir: Path, runtime_flags: list[str], log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    # vllm serve refuses uploads over 25 MB or 600 s unless told otherwise; a 46-minute WAV is 88 MB.
    env = {**os.environ, "VLLM_MAX_AUDIO_CLIP_FILESIZE_MB": "1024", "VLLM_MAX_AUDIO_DECODE_DURATION_S": "14400"}
    log = log_path.open("w")
    process = subprocess.Popen(peer_argv(model_dir, port, runtime_flags), stdout=log, stderr=subprocess.STDOUT,
                               env=env, start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


# -- requests, built before the clock starts ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HttpRequest:
    path: str
    headers: dict[str, str]
    body: bytes


def wav_bytes(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def openai_request(wav: bytes, language: Optional[str], words: bool = False) -> HttpRequest:
    boundary = "whisper-bench-boundary"
    fields = [("model", MODEL_NAME), ("response_format", "verbose_json" if words else "json")]
    fields += [("language", language)] if language else []
    fields += [("timestamp_granularities[]", "word")] if words else []
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="audio.wav"\r\n'
                 f"Content-Type: audio/wav\r\n\r\n".encode() + wav + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return HttpRequest("/v1/audio/transcriptions", {"content-type": f"multipart/form-data; boundary={boundary}"},
                       b"".join(parts))


def _v2_parameters(language: Optional[str]) -> dict:
    return {"language": language} if language else {}


def v2_json_request(wav: bytes, language: Optional[str]) -> HttpRequest:
    body = {"inputs": [{"name": "audio", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(wav).decode()]}],
            "parameters": _v2_parameters(language)}
    return HttpRequest(f"/v2/models/{MODEL_NAME}/infer", {"content-type": "application/json"}, json.dumps(body).encode())


def v2_binary_request(wav: bytes, language: Optional[str]) -> HttpRequest:
    """The binary tensor data extension as KServe's and Triton's clients write BYTES: each element after
    its 4-byte little-endian length."""
    tensor = len(wav).to_bytes(4, "little") + wav
    header = json.dumps({"inputs": [{"name": "audio", "datatype": "BYTES", "shape": [1],
                                     "parameters": {"binary_data_size": len(tensor)}}],
                         "parameters": _v2_parameters(language)}).encode()
    return HttpRequest(f"/v2/models/{MODEL_NAME}/infer",
                       {"content-type": "application/octet-stream", "inference-header-content-length": str(len(header))},
                       header + tensor)


def openai_words_request(wav: bytes, language: Optional[str]) -> HttpRequest:
    """The same upload asking for word timestamps (OpenAI's verbose_json with word granularity)."""
    return openai_request(wav, language, words=True)


def text_of_openai(body: bytes) -> str:
    return json.loads(body)["text"]


def text_of_openai_words(body: bytes) -> str:
    """The transcript, after checking that the words came with it."""
    answer = json.loads(body)
    if not answer.get("words"):
        raise RuntimeError("asked for word timestamps, got none")
    return answer["text"]


def text_of_v2(body: bytes) -> str:
    outputs = {output["name"]: output for output in json.loads(body)["outputs"]}
    return outputs["text"]["data"][0]


def grpc_request(wav: bytes, language: Optional[str]) -> bytes:
    """A serialized ``ModelInferRequest``: the audio as raw bytes (no length prefix needed for one element)."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name=MODEL_NAME)
    tensor = request.inputs.add(name="audio", datatype="BYTES", shape=[1])
    tensor.contents.bytes_contents.append(wav)
    if language:
        request.parameters["language"].string_param = language
    return request.SerializeToString()


def text_of_grpc(body: bytes) -> str:
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    response = pb.ModelInferResponse.FromString(body)
    names = [output.name for output in response.outputs]
    index = names.index("text")
    if response.raw_output_contents:
        raw = response.raw_output_contents[index]
        return raw[4:4 + int.from_bytes(raw[:4], "little")].decode()
    return response.outputs[index].contents.bytes_contents[0].decode()


# -- routes: build once, send many --------------------------------------------------------------------------

Send = Callable[[int], Awaitable[str]]  # request index -> transcript


@dataclasses.dataclass
class Route:
    name: str
    build: Callable[[bytes, Optional[str]], object]
    parse: Callable[[bytes], str]
    grpc: bool = False


ROUTES = {
    "OpenAI": Route("OpenAI", openai_request, text_of_openai),
    "v2 JSON": Route("v2 JSON", v2_json_request, text_of_v2),
    "v2 binary": Route("v2 binary", v2_binary_request, text_of_v2),
    "v2 gRPC": Route("v2 gRPC", grpc_request, text_of_grpc, grpc=True),
    "OpenAI words": Route("OpenAI words", openai_words_request, text_of_openai_words),
}
#: What each server is measured on unless --routes says otherwise (word timestamps only when asked for).
SERVER_ROUTES = {"ours": ["OpenAI", "v2 JSON", "v2 binary", "v2 gRPC"], "peer": ["OpenAI"]}
#: What each server can be asked on at all: --routes names a set for both, each gets its share.
SERVER_SUPPORTS = {"ours": list(ROUTES), "peer": ["OpenAI"]}


def routes_for(server: str, asked: Optional[list[str]]) -> list[str]:
    return [route for route in asked if route in SERVER_SUPPORTS[server]] if asked else SERVER_ROUTES[server]


class Client:
    """One HTTP and one gRPC connection pool, shared by all cells of a run."""

    def __init__(self, base_url: str, grpc_target: Optional[str]):
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=900.0,
                                      limits=httpx.Limits(max_connections=128, max_keepalive_connections=128))
        self.grpc_channel = None
        if grpc_target:
            import grpc

            unlimited = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
            self.grpc_channel = grpc.aio.insecure_channel(grpc_target, options=unlimited)
            self.grpc_infer = self.grpc_channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")

    async def send(self, route: Route, request) -> str:
        if route.grpc:
            return route.parse(await self.grpc_infer(request, timeout=900.0))
        response = await self.http.post(request.path, headers=request.headers, content=request.body)
        if response.status_code != 200:
            raise RuntimeError(f"{route.name}: HTTP {response.status_code}: {response.text[:300]}")
        return route.parse(response.content)

    async def server_counters(self) -> dict[str, float]:
        """Our server's phase and window counters from its /metrics (empty for a server without them)."""
        response = await self.http.get("/metrics")
        return counters_of(response.text) if response.status_code == 200 else {}

    async def close(self) -> None:
        await self.http.aclose()
        if self.grpc_channel is not None:
            await self.grpc_channel.close()


# -- workloads -----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    items: list[Item]  # what is sent, in order (repeats allowed)
    concurrency: int  # in flight at once


def workloads(data: Path, chosen: list[str]) -> list[Workload]:
    long_items = load_workload(data, ["long"])
    concurrent = load_workload(data, ["concurrent"])
    clips = load_workload(data, ["clip"])[:64]
    every = {
        "long": Workload("long", long_items, 1),
        "c8": Workload("c8", concurrent, len(concurrent)),
        "c32": Workload("c32", concurrent * (32 // max(1, len(concurrent))), 32),
        "clips": Workload("clips", clips, len(clips)),
        "clip1": Workload("clip1", clips[:16], 1),
    }
    return [every[name] for name in chosen if every[name].items]


async def run_cell(client: Client, route: Route, workload: Workload, language: Optional[str],
                   repeats: int, gpu: GpuSampler) -> dict:
    bodies = {item.name: route.build(wav_bytes(item.audio), language) for item in workload.items}
    gate = asyncio.Semaphore(workload.concurrency)

    async def one(item: Item) -> tuple[str, float]:
        async with gate:
            started = time.perf_counter()
            text = await client.send(route, bodies[item.name])
            return text, time.perf_counter() - started

    await client.send(route, bodies[workload.items[0].name])  # warm: first-use costs are not throughput
    walls, latencies, texts = [], [], []
    gpu.reset()
    counters_before = await client.server_counters()
    for _ in range(repeats):
        gpu.measuring = True
        started = time.perf_counter()
        results = await asyncio.gather(*(one(item) for item in workload.items))
        walls.append(time.perf_counter() - started)
        gpu.measuring = False
        latencies += [seconds for _, seconds in results]
        texts = [text for text, _ in results]
    server_phases = per_request(counters_before, await client.server_counters(), repeats * len(workload.items))
    seconds = sum(item.seconds for item in workload.items)
    distinct = {item.name: (item, text) for item, text in zip(workload.items, texts)}
    scores = accuracy([item for item, _ in distinct.values()], [text for _, text in distinct.values()])
    return {"rtfx": [round(seconds / wall, 1) for wall in walls], "audio_seconds": round(seconds, 1),
            "p50_s": round(percentile(latencies, 0.5), 3), "p95_s": round(percentile(latencies, 0.95), 3),
            "wer": scores["wer_all"], "gpu_busy_percent": gpu.busy_percent(), "peak_gpu_gib": gpu.peak_gib(),
            "server_phases": server_phases, "hypotheses": scores["hypotheses"]}


async def run(args: argparse.Namespace, runtime_flags: list[str]) -> None:
    chosen = workloads(args.data, args.workloads)
    if args.server == "ours":
        grpc_port = free_port()
        process, base_url = start_server(args.model_dir, [f"--grpc_port={grpc_port}", *runtime_flags], args.log)
        ready_path, grpc_target = f"/v2/models/{MODEL_NAME}/ready", f"127.0.0.1:{grpc_port}"
    else:
        process, base_url = start_peer(args.model_dir, runtime_flags, args.log)
        ready_path, grpc_target = "/health", None
    client = None
    gpu = GpuSampler()
    try:
        ready = await wait_ready(base_url, process, path=ready_path)
        print(f"{args.server} ready in {ready:.1f} s", flush=True)
        client = Client(base_url, grpc_target)
        rows = []
        for workload in chosen:
            for language_name in args.languages:
                language = LANGUAGES[language_name]
                for route_name in routes_for(args.server, args.routes):
                    label = f"{args.tag}{args.server} {route_name} {workload.name} {language_name}"
                    try:
                        cell = await run_cell(client, ROUTES[route_name], workload, language, args.repeats, gpu)
                    except Exception as error:  # one failing cell (e.g. the peer refusing a case) is a row too
                        cell = {"error": f"{type(error).__name__}: {error}"[:300]}
                    append_jsonl(args.results, {"label": label, "server": args.server, "route": route_name,
                                                "workload": workload.name, "language": language_name,
                                                "runtime_flags": runtime_flags,
                                                "ready_seconds": round(ready, 1), **cell})
                    rtfx = cell.get("rtfx")
                    rows.append([args.server, route_name, workload.name, language_name,
                                 f"{statistics.median(rtfx):.0f} {rtfx}" if rtfx else cell["error"],
                                 cell.get("p50_s", ""), cell.get("p95_s", ""), cell.get("wer", ""),
                                 cell.get("gpu_busy_percent", ""), cell.get("peak_gpu_gib", ""),
                                 phases_column(cell.get("server_phases", {}))])
                    print(" | ".join(str(cell) for cell in rows[-1]), flush=True)
        print_table(f"{args.server}: RTFx (median [each repeat]), latency per request, WER",
                    ["server", "route", "workload", "language", "RTFx", "p50 s", "p95 s", "WER %", "GPU busy %", "peak GiB",
                     PHASES_HEADER],
                    rows)
    finally:
        gpu.stop()
        if client is not None:
            await client.close()
        stop_server(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=SERVER_ROUTES, required=True)
    parser.add_argument("--model_dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--workloads", type=lambda v: v.split(","), default=["long", "c8", "c32", "clips", "clip1"])
    parser.add_argument("--routes", type=lambda v: v.split(","), help="routes to measure (each server on those it has)")
    parser.add_argument("--languages", type=lambda v: v.split(","), default=list(LANGUAGES), help="en, detected")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tag", default="", help="prefix of every label (e.g. the model shape)")
    parser.add_argument("--log", type=Path, default=Path("server.log"))
    parser.add_argument("--results", type=Path)
    args, runtime_flags = parser.parse_known_args()
    exit_on_sigterm()
    asyncio.run(run(args, runtime_flags))


if __name__ == "__main__":
    main()
