"""The ceiling: vLLM's offline ``LLM.generate`` over the same windows, no server, no asyncio.

Windows are cut exactly as the runtime cuts them, so the difference to the HTTP path is only the
serving layer. The KV-cache capacity vLLM reports at start-up is printed in its log.

``--vllm_defaults`` starts vLLM as it comes (its own scheduler limits and compile settings, our timestamp
rules off), with only the precision settings of the contract (bf16, fp8 KV cache): what vLLM does out of the
box. With ``--benchmark_random_weights`` the model folder needs only a config (bench/model_shapes.py), and
every window decodes exactly ``--benchmark_tokens_per_window`` tokens.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from common import GpuSampler, Spread, accuracy, append_jsonl, audio_seconds, load_workload, print_table
from whisper_runtime import benchmark, contract
from whisper_runtime.engines.vllm_engine import MAX_MODEL_LEN, engine_args_from, fixed_length, window_prompt
from whisper_runtime.tokens import WhisperVocabulary
from whisper_runtime.engines.base import DecodeOptions
from whisper_runtime.engines.timestamp_rules import OPT_IN
from whisper_runtime.contract import SAMPLE_RATE
from whisper_runtime.windowing import cut_windows, is_silent, stitch_text

#: The engine arguments kept with ``--vllm_defaults``: the model, its precision and what a Whisper prompt needs.
VLLM_DEFAULTS_KEEP = ("model", "dtype", "kv_cache_dtype", "quantization", "load_format", "max_model_len",
                      "limit_mm_per_prompt", "gpu_memory_utilization")
#: Decoder positions the longest decoder prompt takes (start, language, task).
PROMPT_ROOM = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--results", type=Path)
    parser.add_argument("--label", default="vllm-offline")
    parser.add_argument("--kinds", type=lambda v: v.split(","), default=["long", "clip"], help="workload items to decode")
    parser.add_argument("--vllm_defaults", action="store_true", help="vLLM out of the box (precision settings only)")
    args = contract.add_arguments(benchmark.add_arguments(parser)).parse_args()
    os.environ.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")
    from vllm import LLM, SamplingParams

    runtime_args = contract.RuntimeArgs.from_namespace(args)
    benchmark_mode = benchmark.from_namespace(args)
    items = load_workload(args.data, args.kinds)
    vocabulary = WhisperVocabulary.from_model_dir(args.model_dir)
    decoder_prompt = vocabulary.decoder_prompt(vocabulary.resolve(DecodeOptions(language="en")))
    windows_per_item = [[w for w in cut_windows(item.audio) if not is_silent(w.samples)] for item in items]
    prompts = [window_prompt(w.samples, decoder_prompt) for windows in windows_per_item for w in windows]

    gpu = GpuSampler()
    started = time.perf_counter()
    engine_args = engine_args_from(runtime_args, args.model_dir, benchmark_mode)
    if args.vllm_defaults:
        engine_args = {name: engine_args[name] for name in VLLM_DEFAULTS_KEEP if name in engine_args}
    llm = LLM(**engine_args)
    ready_seconds = time.perf_counter() - started
    rules = {} if args.vllm_defaults else {"extra_args": {OPT_IN: True}}
    sampling = SamplingParams(temperature=0.0, skip_special_tokens=False,
                              **fixed_length(benchmark_mode, MAX_MODEL_LEN - PROMPT_ROOM), **rules)

    seconds = audio_seconds(items) * args.copies
    rtfx = []
    llm.generate(prompts[:8], sampling, use_tqdm=False)  # warm-up
    for _ in range(args.repeats):
        gpu.measuring = True
        started = time.perf_counter()
        outputs = llm.generate(prompts * args.copies, sampling, use_tqdm=False)
        rtfx.append(seconds / (time.perf_counter() - started))
        gpu.measuring = False
    gpu.stop()
    texts, position = [], 0
    for windows in windows_per_item:
        window_outputs = outputs[position : position + len(windows)]
        position += len(windows)
        texts.append(stitch_text([vocabulary.parse(list(o.outputs[0].token_ids), len(w.samples) / SAMPLE_RATE).text
                                  for o, w in zip(window_outputs, windows)]))
    record = {
        "label": args.label,
        "engine": "vllm-offline",
        "kv_cache_dtype": runtime_args.kv_cache_dtype,
        "quantization": runtime_args.quantization,
        "vllm_defaults": args.vllm_defaults,
        "tokens_per_window": benchmark_mode.tokens_per_window if benchmark_mode else None,
        "audio_seconds_per_repeat": round(seconds, 1),
        "windows_per_repeat": len(prompts) * args.copies,
        "rtfx": rtfx,
        **accuracy(items, texts),
        "ready_seconds": round(ready_seconds, 1),
        "peak_gpu_gib": gpu.peak_gib(),
        "gpu_busy_percent": gpu.busy_percent(),
    }
    append_jsonl(args.results, record)
    print_table(f"{args.label}: vLLM offline (engine alone)",
                ["audio s/repeat", "windows", "RTFx", "WER all %", "WER long %", "ready s", "GPU busy %", "peak GiB"],
                [[record["audio_seconds_per_repeat"], record["windows_per_repeat"], Spread(tuple(rtfx)),
                  record["wer_all"], record["wer_long"], record["ready_seconds"], record["gpu_busy_percent"],
                  record["peak_gpu_gib"]]])


if __name__ == "__main__":
    main()
