"""Why the vLLM engine applies Whisper's timestamp rules: the Transformers engine with and without them.

Transformers applies the rules (``WhisperTimeStampLogitsProcessor``) whenever it decodes with timestamps; vLLM
applies none. Switching them off in Transformers shows what their absence costs on the workload's long-form
recording, on any machine (CPU included):

    python bench/timestamp_rules_ablation.py --model_dir ~/.cache/whisper-kserve/models/base --data bench-data
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import transformers.generation.logits_process as logits_process

from common import accuracy, load_workload, print_table
from whisper_runtime.audio import AudioLimits
from whisper_runtime.engines.transformers_engine import TransformersEngine
from whisper_runtime.transcriber import Transcriber


async def long_form_wer(model_dir: Path, data: Path, dtype: str) -> float | None:
    items = [item for item in load_workload(data) if item.kind == "long"]
    engine = TransformersEngine(model_dir, dtype=dtype, max_batch=16)
    await engine.start()
    transcriber = Transcriber(engine, AudioLimits(max_bytes=1 << 30, max_seconds=4 * 3600))
    options = transcriber.options(language="en")
    texts = [(await transcriber.transcribe_pcm(item.audio, options)).text for item in items]
    await engine.stop()
    return accuracy(items, texts)["wer_long"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    with_rules = asyncio.run(long_form_wer(args.model_dir, args.data, args.dtype))
    logits_process.WhisperTimeStampLogitsProcessor.__call__ = lambda self, input_ids, scores: scores
    without_rules = asyncio.run(long_form_wer(args.model_dir, args.data, args.dtype))
    print_table("Transformers engine, long-form WER %", ["with timestamp rules", "without"],
                [[with_rules, without_rules]])


if __name__ == "__main__":
    main()
