"""How long a window may decode when serving: openai-whisper's ``sample_len``, in both engines."""

import asyncio
import shutil
from pathlib import Path

import pytest
import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from runtime_samples import sine
from whisper_runtime.engines.base import MAX_NEW_TOKENS, DecodeOptions, WindowRequest, WindowResult
from whisper_runtime.engines.transformers_engine import TransformersEngine
from whisper_runtime.engines.vllm_engine import fixed_length
from whisper_runtime.repetition import compression_ratio, is_loop
from whisper_runtime.tokens import WhisperVocabulary


def test_vllm_windows_stop_at_the_cap_or_the_decoders_room_whichever_is_first():
    assert MAX_NEW_TOKENS == 224  # half of Whisper's 448 decoder positions
    assert fixed_length(None, room=445) == {"max_tokens": MAX_NEW_TOKENS}
    assert fixed_length(None, room=100) == {"max_tokens": 100}  # a long prompt leaves less room


@pytest.fixture(scope="module")
def random_tiny_dir(tiny_shape_dir, tmp_path_factory) -> Path:
    """tiny's shape with random weights: a decoder that never says end-of-text."""
    model_dir = tmp_path_factory.mktemp("random-tiny")
    shutil.copytree(tiny_shape_dir, model_dir, dirs_exist_ok=True)
    torch.manual_seed(0)
    WhisperForConditionalGeneration(WhisperConfig.from_pretrained(model_dir)).save_pretrained(model_dir)
    shutil.copy(tiny_shape_dir / "generation_config.json", model_dir / "generation_config.json")
    return model_dir


def decode_once(model_dir: Path, temperature: float) -> WindowResult:
    async def decode() -> WindowResult:
        engine = TransformersEngine(model_dir, dtype="float32", max_batch=2)
        await engine.start()
        try:
            audio = sine(10.0, amplitude=0.3).astype("float32")
            options = DecodeOptions(language="en", temperature=temperature)
            [result] = await engine.transcribe([WindowRequest(audio, options)])
            return result
        finally:
            await engine.stop()

    torch.manual_seed(0)
    return asyncio.run(decode())


def test_a_window_that_never_ends_stops_at_the_cap(random_tiny_dir):
    """Sampled at temperature 1, random weights write tokens that neither end nor repeat a pattern: the cap, not
    the decoder's 448 positions, ends the window: 224 tokens decoded (the 2 forced ones, language and task, not
    counted)."""
    result = decode_once(random_tiny_dir, temperature=1.0)
    assert result.num_tokens == MAX_NEW_TOKENS and result.finish_reason == "length"


def test_a_window_caught_in_a_loop_stops_when_the_loop_shows_not_at_the_cap(random_tiny_dir):
    """Greedy, the same weights fall into a loop at once, as a real model sometimes does ("9, 9, 9, ..."): the
    engine stops the row after the pattern's eighth repeat (loop_stop.py) and says why."""
    result = decode_once(random_tiny_dir, temperature=0.0)
    assert result.finish_reason == "repetition" and result.num_tokens < MAX_NEW_TOKENS / 4, result
    assert is_loop(result, sine(10.0)) and compression_ratio(result.text) < 2.4  # too short to compress as a loop


def test_a_window_that_ended_counts_its_tokens_up_to_end_of_text_not_the_batchs_padding(tiny_shape_dir):
    """A batched ``generate`` pads a window that ended early with end-of-text tokens up to the longest window."""
    vocabulary = WhisperVocabulary.from_model_dir(tiny_shape_dir)
    begin, eot = vocabulary.timestamp_begin, vocabulary.end_of_text
    text = vocabulary.tokenizer.encode(" Hello world.", add_special_tokens=False)
    generated = [begin, *text, begin + 50, eot]
    padded = vocabulary.parse([*generated, eot, eot, eot], window_seconds=2.0)
    assert padded == vocabulary.parse(generated, window_seconds=2.0)
    assert padded.num_tokens == len(generated) and padded.finish_reason == "stop" and padded.text == "Hello world."
    assert vocabulary.parse(generated[:-1], window_seconds=2.0).finish_reason == "length"
