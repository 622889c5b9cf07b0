"""The transcriber's repetition-loop guard, driven by a scripted engine: which tries are made, which text stands,
and how many tokens a recording waits for in series.

The engine here is a test double on purpose: a real model cannot be made to loop on demand. The loop text is one
the vLLM engine produced on the H200 (docs/benchmarks.md, 2026-12-04).
"""

import asyncio

from prometheus_client import REGISTRY

from runtime_samples import sine
from whisper_runtime.audio import AudioLimits
from whisper_runtime.engines.base import DecodeOptions, WindowResult
from whisper_runtime.transcriber import Transcriber
from whisper_runtime.windowing import Segment

LOOP = "7 70 8 8 9 9 10 9 10 8 9 10 " + "10 " * 150
TOKENS_PER_TRY = 10
SPEECH = "Press start to toggle pause. Press pound to enter a new dictation file name."


class ScriptedEngine:
    """Answers each try with the next text of ``texts_by_try`` (10 tokens, one segment that ends ``spoken_until``
    seconds into the window, or at its end) and records the temperature it was asked for."""

    name, multilingual, vocabulary = "scripted", False, None

    def __init__(self, *texts_by_try: str, spoken_until: float = float("inf")):
        self.texts_by_try = list(texts_by_try)
        self.spoken_until = spoken_until
        self.temperatures: list[float] = []

    def healthy(self) -> bool:
        return True

    async def transcribe(self, windows):
        results = []
        for window in windows:
            text = self.texts_by_try[min(len(self.temperatures), len(self.texts_by_try) - 1)]
            self.temperatures.append(window.options.temperature)
            end = min(self.spoken_until, len(window.audio) / 16000)
            results.append(WindowResult(text, (Segment(0.0, end, text),), "en", TOKENS_PER_TRY))
        return results


def transcribe(engine: ScriptedEngine, temperature: float = 0.0) -> str:
    transcriber = Transcriber(engine, AudioLimits.from_megabytes(16, 60))
    options = DecodeOptions(language="en", temperature=temperature)
    return asyncio.run(transcriber.transcribe_pcm(sine(5.0), options)).text


def test_a_looping_window_is_decoded_again_hotter_and_the_clean_try_stands():
    engine = ScriptedEngine(LOOP, SPEECH)
    assert transcribe(engine) == SPEECH
    assert engine.temperatures == [0.0, 0.2]


def test_a_clean_window_is_decoded_once():
    engine = ScriptedEngine(SPEECH)
    assert transcribe(engine) == SPEECH and engine.temperatures == [0.0]


def test_speech_that_repeats_itself_is_decoded_once():
    """Repetitive text at a speaking pace, ended by the model: the speaker repeated, the decoder did not loop."""
    said_eight_times = "Press one. " * 8
    engine = ScriptedEngine(said_eight_times)
    assert transcribe(engine) == said_eight_times.strip() and engine.temperatures == [0.0]


def test_retries_stop_at_the_last_temperature_and_keep_the_least_repetitive_try():
    less_loopy = "one two three four five " + "ten " * 40
    engine = ScriptedEngine(LOOP, LOOP, less_loopy, LOOP)
    assert transcribe(engine) == less_loopy.strip()
    assert engine.temperatures == [0.0, 0.2, 0.4, 0.6]


def test_a_request_already_hot_gets_only_hotter_retries():
    engine = ScriptedEngine(LOOP, LOOP, LOOP)
    transcribe(engine, temperature=0.5)
    assert engine.temperatures == [0.5, 0.6]


def serial_tokens_of(engine: ScriptedEngine) -> float:
    """What one transcription adds to ``whisper_serial_tokens``: its longest chain of decodes in series."""
    before = REGISTRY.get_sample_value("whisper_serial_tokens_sum") or 0.0
    transcribe(engine)
    return REGISTRY.get_sample_value("whisper_serial_tokens_sum") - before


def test_tokens_in_series_count_every_try_of_a_window():
    assert serial_tokens_of(ScriptedEngine(SPEECH)) == TOKENS_PER_TRY
    assert serial_tokens_of(ScriptedEngine(LOOP, SPEECH)) == 2 * TOKENS_PER_TRY


def test_tokens_in_series_count_a_resumed_rest_after_its_window():
    """Speech ends 2 s into a voiced 5 s window: its rest is decoded once more, after it."""
    engine = ScriptedEngine(SPEECH, spoken_until=2.0)
    assert serial_tokens_of(engine) == 2 * TOKENS_PER_TRY and len(engine.temperatures) == 2
