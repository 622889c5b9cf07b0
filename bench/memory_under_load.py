"""Server RSS under concurrent long-form load: idle, peak while N long files are in flight, and after.

Starts whisper-runtime, sends ``--concurrency`` copies of the workload's long recording (tiled to
``--minutes``) at once through the OpenAI route, samples the server's RSS every 0.1 s, then waits
``--settle`` seconds and reads it again. Prints one JSON record (also appended to ``--results``).

    python bench/memory_under_load.py --model_dir DIR --data WORKLOAD --concurrency 8 --minutes 2 \
        --runtime_flags="--engine=transformers --dtype=float32 --max_num_seqs=8"
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile
from common import append_jsonl, load_workload
from http_bench import openai_transcribe, start_server, wait_ready


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class RssSampler:
    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.peak, self._done = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._done.wait(interval):
            self.peak = max(self.peak, rss_mib(self.pid))

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak


def long_file(data: Path, minutes: float) -> tuple[bytes, float]:
    """The workload's long recording tiled to ``minutes``, as 16 kHz FLAC."""
    audio = next(item.audio for item in load_workload(data, kinds=("long",)))
    samples = np.resize(audio, int(minutes * 60 * 16000))
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 16000, format="FLAC")
    return buffer.getvalue(), len(samples) / 16000


async def measure(args: argparse.Namespace) -> dict:
    encoded, seconds = long_file(args.data, args.minutes)
    process, base_url = start_server(args.model_dir, args.runtime_flags.split(), args.log)
    try:
        await wait_ready(base_url, process)
        await asyncio.sleep(2)
        idle = rss_mib(process.pid)
        sampler = RssSampler(process.pid)
        started = time.perf_counter()
        async with httpx.AsyncClient(timeout=3600, limits=httpx.Limits(max_connections=args.concurrency)) as client:
            await asyncio.gather(*(openai_transcribe(client, base_url, encoded) for _ in range(args.concurrency)))
        wall = time.perf_counter() - started
        peak = sampler.stop()
        await asyncio.sleep(args.settle)
        after = rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
    in_flight = args.concurrency * seconds
    return {
        "concurrency": args.concurrency,
        "audio_seconds_each": round(seconds, 1),
        "wall_seconds": round(wall, 1),
        "rss_idle_mib": round(idle),
        "rss_peak_mib": round(peak),
        "rss_after_mib": round(after),
        "peak_kib_per_in_flight_audio_second": round((peak - idle) * 1024 / in_flight, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a bench/prepare_data.py workload")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=2.0, help="length of each long file")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the load before 'after' is read")
    parser.add_argument("--runtime_flags", default="--engine=transformers --dtype=float32 --max_num_seqs=8")
    parser.add_argument("--log", type=Path, default=Path("memory_server.log"))
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    record = asyncio.run(measure(args))
    print(json.dumps(record))
    append_jsonl(args.results, record)


if __name__ == "__main__":
    main()
