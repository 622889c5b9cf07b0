"""Realtime transcription under load: how many live sessions one server keeps up with, and how fast finals come.

Each session opens ``/v1/realtime?intent=transcription`` and streams speech at real-time pace as OpenAI clients
do (PCM16 at 24 kHz, base64, 100 ms per ``input_audio_buffer.append``): a few clips of the workload with
``--gap`` seconds of silence between them, so the server's VAD cuts one utterance per clip. Measured per
utterance: the latency from the end of its speech audio (the moment its last chunk was sent) to its
``...transcription.completed`` event, which includes the VAD's silence wait (500 ms by default), and from
``speech_stopped`` to ``completed`` (the decode alone); how many deltas came before the final; WER of the finals.

Session counts are tried in increasing order. A level runs at real-time speed when every utterance of every
session completed and the p95 end-of-speech latency stays within ``--latency_bound`` seconds (while audio keeps
coming in at real-time pace, a server that falls behind shows growing latency); the sweep stops after the first
level that does not.

    python bench/realtime_bench.py --data DATA --model_dir MODEL --sessions 16,32,64,128,256 --engine vllm
    python bench/realtime_bench.py --data DATA --url http://127.0.0.1:8080 --sessions 1,2,4
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import random
import time
from pathlib import Path
from typing import Optional

import numpy as np
import websockets

from common import Item, append_jsonl, corpus_wer, load_workload, percentile, print_table
from http_bench import exit_on_sigterm, start_server, stop_server, wait_ready

WIRE_RATE = 24000
CHUNK_SECONDS = 0.1
TRAILING_SILENCE_SECONDS = 1.5


@dataclasses.dataclass
class Utterance:
    item: Item
    speech_end: float = 0.0  # wall time its last chunk was sent
    item_id: Optional[str] = None
    stopped: Optional[float] = None
    completed: Optional[float] = None
    deltas: int = 0
    first_delta: Optional[float] = None
    transcript: str = ""
    #: How late the client sent its session's chunks at worst (seconds behind real-time pace): when this grows,
    #: the load generator, not the server, is what falls behind.
    send_lag: float = 0.0


def wire_chunks(samples: np.ndarray) -> list[str]:
    """16 kHz float samples -> base64 PCM16 at 24 kHz, 100 ms per chunk."""
    count = int(round(samples.size * WIRE_RATE / 16000))
    upsampled = np.interp(np.arange(count) * 16000 / WIRE_RATE, np.arange(samples.size), samples)
    pcm = (np.clip(upsampled, -1, 1) * 32767).astype("<i2")
    step = int(CHUNK_SECONDS * WIRE_RATE)
    return [base64.b64encode(pcm[start : start + step].tobytes()).decode() for start in range(0, pcm.size, step)]


def session_audio(clips: list[Item], gap: float) -> tuple[np.ndarray, list[int]]:
    """The clips joined with silence, and the sample where each clip's speech ends."""
    silence = np.zeros(int(gap * 16000), dtype=np.float32)
    parts, ends, position = [], [], 0
    for clip in clips:
        parts += [clip.audio, silence]
        ends.append(position + clip.audio.size)
        position += clip.audio.size + silence.size
    parts.append(np.zeros(int(TRAILING_SILENCE_SECONDS * 16000), dtype=np.float32))
    return np.concatenate(parts), ends


async def stream_session(url: str, clips: list[Item], gap: float, timeout: float) -> list[Utterance]:
    audio, ends = session_audio(clips, gap)
    utterances = [Utterance(clip) for clip in clips]
    chunks = wire_chunks(audio)
    end_chunks = {min(len(chunks) - 1, int(end / 16000 / CHUNK_SECONDS)): index for index, end in enumerate(ends)}
    async with websockets.connect(f"{url}/v1/realtime?intent=transcription", max_size=None) as socket:
        created = json.loads(await socket.recv())
        assert created["type"] == "transcription_session.created", created
        receiver = asyncio.create_task(receive(socket, utterances))
        started = time.perf_counter()
        send_lag = 0.0
        for index, chunk in enumerate(chunks):
            due = started + index * CHUNK_SECONDS
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            send_lag = max(send_lag, time.perf_counter() - due)
            await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
            if index in end_chunks:
                utterances[end_chunks[index]].speech_end = time.perf_counter()
        try:
            await asyncio.wait_for(receiver, timeout)
        except asyncio.TimeoutError:
            pass
    for utterance in utterances:
        utterance.send_lag = send_lag
    return utterances


async def receive(socket, utterances: list[Utterance]) -> None:
    """Events until every utterance completed; utterances are matched to items in the order speech started."""
    by_item: dict[str, Utterance] = {}
    while sum(u.completed is not None for u in utterances) < len(utterances):
        event = json.loads(await socket.recv())
        now = time.perf_counter()
        kind = event["type"]
        if kind == "input_audio_buffer.speech_started" and len(by_item) < len(utterances):
            by_item[event["item_id"]] = utterances[len(by_item)]
        utterance = by_item.get(event.get("item_id", ""))
        if utterance is None:
            continue
        if kind == "input_audio_buffer.speech_stopped":
            utterance.stopped = now
        elif kind.endswith("transcription.delta"):
            utterance.deltas += 1
            utterance.first_delta = utterance.first_delta or now
        elif kind.endswith("transcription.completed"):
            utterance.completed, utterance.transcript = now, event["transcript"]
        elif kind.endswith("transcription.failed") or kind == "error":
            raise RuntimeError(f"the server failed a transcription: {event}")


async def run_level(url: str, clips: list[Item], sessions: int, utterances: int, gap: float, bound: float) -> dict:
    rng = random.Random(sessions)

    async def one(index: int) -> list[Utterance]:
        await asyncio.sleep(rng.random())  # sessions start apart, as real users do
        chosen = [clips[(index * utterances + k) % len(clips)] for k in range(utterances)]
        return await stream_session(url, chosen, gap, timeout=max(30.0, 4 * bound))

    results = [u for group in await asyncio.gather(*(one(i) for i in range(sessions))) for u in group]
    done = [u for u in results if u.completed is not None]
    from_speech_end = [u.completed - u.speech_end for u in done]
    from_stopped = [u.completed - u.stopped for u in done if u.stopped is not None]
    record = {
        "sessions": sessions,
        "utterances": len(results),
        "completed": len(done),
        "latency_p50": round(percentile(from_speech_end, 0.5), 3) if done else None,
        "latency_p95": round(percentile(from_speech_end, 0.95), 3) if done else None,
        "after_stopped_p50": round(percentile(from_stopped, 0.5), 3) if from_stopped else None,
        "after_stopped_p95": round(percentile(from_stopped, 0.95), 3) if from_stopped else None,
        "with_partials": sum(u.deltas > 0 and u.first_delta < u.completed for u in done),
        "wer": corpus_wer([u.item for u in done], [u.transcript for u in done]),
        "client_send_lag_max": round(max(u.send_lag for u in results), 3),
        "transcripts": [[u.item.text, u.transcript] for u in done],
    }
    record["real_time"] = len(done) == len(results) and record["latency_p95"] <= bound
    return record


async def sweep(url: str, args: argparse.Namespace) -> list[dict]:
    clips = load_workload(args.data, kinds=("clip",))
    levels = []
    for sessions in args.sessions:
        level = await run_level(url, clips, sessions, args.utterances, args.gap, args.latency_bound)
        levels.append(level)
        if not level["real_time"]:
            break
    return levels


async def run(args: argparse.Namespace, runtime_flags: list[str]) -> None:
    process = None
    url = args.url
    if url is None:
        process, url = start_server(args.model_dir, runtime_flags, args.log)
    try:
        if process is not None:
            await wait_ready(url, process)
        levels = await sweep(url.replace("http", "ws", 1), args)
    finally:
        if process is not None:
            stop_server(process)
    keeping_up = [level["sessions"] for level in levels if level["real_time"]]
    record = {"label": args.label, "latency_bound": args.latency_bound, "levels": levels,
              "max_real_time_sessions": max(keeping_up, default=0)}
    print_table(f"{args.label}: realtime sessions at real-time pace (p95 bound {args.latency_bound} s)",
                ["sessions", "utterances", "completed", "end of speech -> completed p50 / p95 s",
                 "speech_stopped -> completed p50 / p95 s", "with partials", "WER %", "client lag max s", "real time"],
                [[level["sessions"], level["utterances"], level["completed"],
                  f"{level['latency_p50']} / {level['latency_p95']}",
                  f"{level['after_stopped_p50']} / {level['after_stopped_p95']}", level["with_partials"],
                  level["wer"], level["client_send_lag_max"], level["real_time"]] for level in levels])
    append_jsonl(args.results, record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a workload folder (bench/prepare_data.py); its clips")
    parser.add_argument("--url", help="an already running runtime (http://host:port); else one is started")
    parser.add_argument("--model_dir", type=Path, help="the model of the runtime this starts")
    parser.add_argument("--label", default="realtime")
    parser.add_argument("--sessions", type=lambda v: [int(x) for x in v.split(",")], default=[1, 8, 32, 64, 128, 256])
    parser.add_argument("--utterances", type=int, default=3, help="clips each session says")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds of silence after each clip")
    parser.add_argument("--latency_bound", type=float, default=2.0, help="p95 end-of-speech -> completed, seconds")
    parser.add_argument("--log", type=Path, default=Path("server.log"))
    parser.add_argument("--results", type=Path)
    args, runtime_flags = parser.parse_known_args()
    if args.url is None and args.model_dir is None:
        parser.error("give --url of a running runtime or --model_dir to start one")
    exit_on_sigterm()
    asyncio.run(run(args, runtime_flags))


if __name__ == "__main__":
    main()
