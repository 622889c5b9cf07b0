"""``--chunk_length_s``: the longest window a recording is cut into, from the contract to the transcriber."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from runtime_samples import sine
from whisper_runtime import benchmark, contract
from whisper_runtime.audio import AudioLimits
from whisper_runtime.engines.transformers_engine import TransformersEngine
from whisper_runtime.transcriber import Transcriber
from whisper_runtime.windowing import cut_windows


def test_a_shorter_chunk_length_cuts_every_window_of_a_recording_shorter(tiny_shape_dir):
    recording = np.tile(sine(30.0, amplitude=0.3).astype(np.float32), 3)

    async def windows(chunk_length_s: float) -> list[tuple[float, float]]:
        mode = benchmark.BenchmarkMode(4)  # random weights, 4 tokens a window: only the cutting is under test
        engine = TransformersEngine(tiny_shape_dir, dtype="float32", max_batch=8, benchmark=mode)
        await engine.start()
        transcriber = Transcriber(engine, AudioLimits(2**24, 600), benchmark=mode, chunk_length_s=chunk_length_s)
        finals = [final async for final in transcriber.final_windows(recording, transcriber.options(language="en"))]
        await engine.stop()
        return [(final.window.offset_seconds, len(final.window.samples) / contract.SAMPLE_RATE) for final in finals]

    default, shorter = asyncio.run(windows(contract.WINDOW_SECONDS)), asyncio.run(windows(20.0))
    assert [offset for offset, _ in default] == [window.offset_seconds for window in cut_windows(recording)]
    assert [offset for offset, _ in shorter] == [window.offset_seconds for window in cut_windows(recording, 20.0)]
    assert max(seconds for _, seconds in default) > 29 and max(seconds for _, seconds in shorter) <= 20.0
    assert len(shorter) > len(default)


@pytest.mark.parametrize("seconds", [5.0, 31.0])
def test_chunk_lengths_whisper_cannot_take_are_refused(seconds):
    with pytest.raises(ValueError, match="chunk_length_s must be between 10 and 30"):
        contract.RuntimeArgs(chunk_length_s=seconds)
    assert contract.RuntimeArgs(chunk_length_s=25.0).to_argv()[-1] == "--chunk_length_s=25"
