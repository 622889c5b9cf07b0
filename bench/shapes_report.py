"""The model-shape rows of a GPU run (bench/gpu_suite.sh shapes) beside their hardware limit (roofline.py).

    python bench/shapes_report.py RESULTS.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from model_shapes import SHAPES
from roofline import WINDOW_SECONDS, limit_rtfx
from whisper_runtime import benchmark, contract
from whisper_runtime.benchmark import DEFAULT_TOKENS_PER_WINDOW

#: vLLM's sequence limit at our defaults: windows decoding at once.
MAX_BATCH = 256


def shape_of(label: str) -> str | None:
    """The shape a label starts with (the longest name that fits: large-v3-turbo before large-v3)."""
    return max((name for name in SHAPES if label.startswith(name + "-") or label.startswith(name + " ")), key=len, default=None)


def settings_of(record: dict) -> tuple[int, str, str]:
    """(tokens per window, quantization, KV-cache dtype) a row was measured with: a server cell's from the flags it
    was started with (parsed by the runtime's own parsers), an in-process row's from its own fields."""
    flags = record.get("runtime_flags")
    if flags is None:
        return record.get("tokens_per_window") or DEFAULT_TOKENS_PER_WINDOW, record["quantization"], record["kv_cache_dtype"]
    arguments, mode = contract.parse(flags), benchmark.parse(flags)
    return mode.tokens_per_window if mode else DEFAULT_TOKENS_PER_WINDOW, arguments.quantization, arguments.kv_cache_dtype


def row(record: dict) -> list | None:
    shape_name = shape_of(record["label"])
    if shape_name is None or not record.get("rtfx"):
        return None
    tokens, quantization, kv_cache_dtype = settings_of(record)
    transformers = record.get("engine") == "transformers"  # its cache is in the compute precision
    kv_bytes = 1.0 if kv_cache_dtype == "fp8" and not transformers else 2.0
    windows = max(1, round(record.get("audio_seconds_per_repeat", record.get("audio_seconds", 0)) / WINDOW_SECONDS))
    batch = 64 if transformers else min(windows, MAX_BATCH)
    limit = limit_rtfx(SHAPES[shape_name], tokens, batch, windows, kv_bytes=kv_bytes, fp8_weights=quantization == "fp8")
    rtfx = statistics.median(record["rtfx"])
    return [record["label"], f"{rtfx:.0f}", f"{limit:.0f}", f"{100 * rtfx / limit:.1f}",
            record.get("gpu_busy_percent", ""), record.get("peak_gpu_gib", "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    rows = [each for each in (row(json.loads(line)) for line in args.results.read_text().splitlines() if line.strip()) if each]
    print("| row | RTFx (median) | roofline RTFx | % of roofline | GPU busy % | peak GiB |")
    print("|---|---|---|---|---|---|")
    for each in rows:
        print("| " + " | ".join(str(cell) for cell in each) + " |")


if __name__ == "__main__":
    main()
