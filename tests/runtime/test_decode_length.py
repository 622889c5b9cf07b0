"""How long a window may decode when serving: openai-whisper's ``sample_len``, in both engines."""

import asyncio
import shutil

import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from runtime_samples import sine
from whisper_runtime.engines.base import MAX_NEW_TOKENS, DecodeOptions, WindowRequest
from whisper_runtime.engines.transformers_engine import TransformersEngine
from whisper_runtime.engines.vllm_engine import fixed_length


def test_vllm_windows_stop_at_the_cap_or_the_decoders_room_whichever_is_first():
    assert MAX_NEW_TOKENS == 224  # half of Whisper's 448 decoder positions
    assert fixed_length(None, room=445) == {"max_tokens": MAX_NEW_TOKENS}
    assert fixed_length(None, room=100) == {"max_tokens": 100}  # a long prompt leaves less room


def test_a_window_that_never_ends_stops_at_the_cap(tiny_shape_dir, tmp_path):
    """Random weights never say end-of-text, as a window caught in a repetition loop does not: the cap, not the
    decoder's 448 positions, ends it (2 forced tokens + 224)."""
    model_dir = tmp_path / "random-tiny"
    shutil.copytree(tiny_shape_dir, model_dir)
    torch.manual_seed(0)
    WhisperForConditionalGeneration(WhisperConfig.from_pretrained(model_dir)).save_pretrained(model_dir)
    shutil.copy(tiny_shape_dir / "generation_config.json", model_dir / "generation_config.json")

    async def decode() -> int:
        engine = TransformersEngine(model_dir, dtype="float32", max_batch=2)
        await engine.start()
        try:
            audio = sine(10.0, amplitude=0.3).astype("float32")
            [result] = await engine.transcribe([WindowRequest(audio, DecodeOptions(language="en"))])
            return result.num_tokens
        finally:
            await engine.stop()

    assert MAX_NEW_TOKENS <= asyncio.run(decode()) <= MAX_NEW_TOKENS + 3
