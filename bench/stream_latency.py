"""Time to the first ``transcript.text.delta`` against time to ``transcript.text.done``: one long file streamed
through the OpenAI route (``stream=true``) of a ``whisper-runtime`` process started here.

    python bench/stream_latency.py --model_dir DIR --audio long.wav [--runs 2] -- --engine=transformers --max_num_seqs=4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import tempfile
import time
from pathlib import Path

import httpx
import soundfile

from http_bench import MODEL_NAME, start_server, wait_ready


async def stream_once(base_url: str, audio: bytes) -> tuple[float, float, int, str]:
    """(seconds to the first delta, seconds to done, number of deltas, the done text) of one streamed request."""
    first = None
    deltas = 0
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=3600) as client:
        form = {"model": MODEL_NAME, "stream": "true"}
        async with client.stream("POST", f"{base_url}/v1/audio/transcriptions", data=form, files={"file": ("a.wav", audio)}) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[len("data: "):])
                if event["type"] == "transcript.text.delta":
                    deltas += 1
                    first = first if first is not None else time.perf_counter() - started
                elif event["type"] == "transcript.text.done":
                    return first or 0.0, time.perf_counter() - started, deltas, event["text"]
    raise RuntimeError("the stream ended without transcript.text.done")


async def measure(model_dir: Path, audio_path: Path, runs: int, runtime_flags: list[str]) -> None:
    seconds = soundfile.info(audio_path).duration
    audio = audio_path.read_bytes()
    with tempfile.TemporaryDirectory() as scratch:
        process, base_url = start_server(model_dir, runtime_flags, Path(scratch) / "server.log")
        try:
            await wait_ready(base_url, process)
            for run in range(runs):
                first, done, deltas, _ = await stream_once(base_url, audio)
                print(f"run {run + 1}: {seconds:.0f} s audio, {deltas} deltas, first delta {first:.1f} s, "
                      f"done {done:.1f} s ({100 * first / done:.0f}%), flags {' '.join(runtime_flags)}")  # fmt: skip
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", type=Path, required=True)
    parser.add_argument("--audio", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("runtime_flags", nargs="*", help="whisper-runtime flags, after --")
    args = parser.parse_args()
    asyncio.run(measure(args.model_dir, args.audio, args.runs, args.runtime_flags))


if __name__ == "__main__":
    main()
