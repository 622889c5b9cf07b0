"""RTFx and WER of one engine configuration, in process, through the runtime's own Transcriber.

Both engines get exactly the same path the server uses (decode -> quiet-point windows -> one batch ->
stitch), so the only difference between rows is the engine and its settings. One configuration per
process: vLLM does not give all GPU memory back on shutdown, and time-to-ready must be cold.

    python bench/engine_bench.py --engine vllm --model_dir M --data D --label all-on
    python bench/engine_bench.py --engine vllm --kv_cache_dtype auto --label no-fp8 ...
    python bench/engine_bench.py --engine transformers --label baseline ...
    python bench/engine_bench.py --benchmark_random_weights --model_dir SHAPE ...  # random weights, fixed tokens
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from prometheus_client import generate_latest

from common import (GpuSampler, PHASES_HEADER, Spread, accuracy, append_jsonl, audio_seconds, counters_of, load_workload,
                    per_request, phases_column, print_table, start_profiler)
from whisper_runtime import benchmark, contract
from whisper_runtime.audio import AudioLimits
from whisper_runtime.cli import build_engine
from whisper_runtime.transcriber import Transcriber


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="folder made by bench/prepare_data.py")
    parser.add_argument("--label", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=1, help="submit the workload this many times at once")
    parser.add_argument("--language", default="en")
    parser.add_argument("--kinds", type=lambda v: v.split(","), default=["long", "clip"], help="workload items to decode")
    parser.add_argument("--results", type=Path, help="append one JSON line per configuration")
    parser.add_argument("--profile", type=Path, help="folder for a py-spy profile of the first timed repeat")
    return contract.add_arguments(benchmark.add_arguments(parser)).parse_args()


async def measure(args: argparse.Namespace) -> dict:
    runtime_args = contract.RuntimeArgs.from_namespace(args)
    benchmark_mode = benchmark.from_namespace(args)
    items = load_workload(args.data, args.kinds)
    engine = build_engine(runtime_args, args.model_dir, benchmark_mode)
    gpu = GpuSampler()
    started = time.perf_counter()
    await engine.start()
    ready_seconds = time.perf_counter() - started
    transcriber = Transcriber(engine, AudioLimits.from_megabytes(4096, 24 * 3600), benchmark=benchmark_mode,
                              chunk_length_s=runtime_args.chunk_length_s)
    options = transcriber.options(language=args.language)

    batch = items * args.copies
    seconds = audio_seconds(batch)
    rtfx, texts = [], []
    await transcriber.transcribe_pcm(items[-1].audio, options)  # warm-up, not timed
    if args.profile:
        start_profiler(os.getpid(), args.profile / f"profile-{args.label}.txt")
    counters_before = counters_of(generate_latest().decode())
    for _ in range(args.repeats):
        gpu.measuring = True
        started = time.perf_counter()
        transcripts = await asyncio.gather(*(transcriber.transcribe_pcm(item.audio, options) for item in batch))
        rtfx.append(seconds / (time.perf_counter() - started))
        gpu.measuring = False
        texts = [transcript.text for transcript in transcripts[: len(items)]]
    phases = per_request(counters_before, counters_of(generate_latest().decode()), args.repeats * len(batch))
    await engine.stop()
    gpu.stop()
    return {
        "label": args.label,
        "engine": runtime_args.engine,
        "kv_cache_dtype": runtime_args.kv_cache_dtype,
        "compilation_level": runtime_args.compilation_level,
        "cuda_graphs": runtime_args.cuda_graphs,
        "quantization": runtime_args.quantization,
        "tokens_per_window": benchmark_mode.tokens_per_window if benchmark_mode else None,
        "audio_seconds_per_repeat": round(seconds, 1),
        "rtfx": rtfx,
        **accuracy(items, texts),
        "ready_seconds": round(ready_seconds, 1),
        "peak_gpu_gib": gpu.peak_gib(),
        "gpu_busy_percent": gpu.busy_percent(),
        "server_phases": phases,
    }


def main() -> None:
    args = parse_args()
    record = asyncio.run(measure(args))
    append_jsonl(args.results, record)
    print_table(
        f"{record['label']} ({record['engine']})",
        ["audio s/repeat", "RTFx", "WER all %", "WER long %", "WER clips %", "ready s", "GPU busy %", PHASES_HEADER],
        [[record["audio_seconds_per_repeat"], Spread(tuple(record["rtfx"])), record["wer_all"],
          record["wer_long"], record["wer_clips"], record["ready_seconds"], record["gpu_busy_percent"],
          phases_column(record["server_phases"])]],
    )


if __name__ == "__main__":
    main()
