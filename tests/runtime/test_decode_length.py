"""How long a window may decode when serving: openai-whisper's ``sample_len``, in both engines."""

import asyncio
import shutil

import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from runtime_samples import sine
from whisper_runtime.engines.base import MAX_NEW_TOKENS, DecodeOptions, WindowRequest, WindowResult
from whisper_runtime.engines.transformers_engine import TransformersEngine
from whisper_runtime.engines.vllm_engine import fixed_length
from whisper_runtime.tokens import WhisperVocabulary


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

    async def decode() -> WindowResult:
        engine = TransformersEngine(model_dir, dtype="float32", max_batch=2)
        await engine.start()
        try:
            audio = sine(10.0, amplitude=0.3).astype("float32")
            [result] = await engine.transcribe([WindowRequest(audio, DecodeOptions(language="en"))])
            return result
        finally:
            await engine.stop()

    result = asyncio.run(decode())
    assert MAX_NEW_TOKENS <= result.num_tokens <= MAX_NEW_TOKENS + 3 and result.hit_token_limit


def test_a_window_that_ended_counts_its_tokens_up_to_end_of_text_not_the_batchs_padding(tiny_shape_dir):
    """A batched ``generate`` pads a window that ended early with end-of-text tokens up to the longest window."""
    vocabulary = WhisperVocabulary.from_model_dir(tiny_shape_dir)
    begin, eot = vocabulary.timestamp_begin, vocabulary.end_of_text
    text = vocabulary.tokenizer.encode(" Hello world.", add_special_tokens=False)
    generated = [begin, *text, begin + 50, eot]
    padded = vocabulary.parse([*generated, eot, eot, eot], window_seconds=2.0)
    assert padded == vocabulary.parse(generated, window_seconds=2.0)
    assert padded.num_tokens == len(generated) and not padded.hit_token_limit and padded.text == "Hello world."
    assert vocabulary.parse(generated[:-1], window_seconds=2.0).hit_token_limit
