"""The transcriber's repetition-loop guard, driven by a scripted engine: which tries are made, which text stands,
and how many tokens a recording waits for in series.

The engine here is a test double on purpose: a real model cannot be made to loop on demand. The loop text is one
the vLLM engine produced on the H200 (docs/benchmarks.md, 2026-12-04).
"""

import asyncio
import gc

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
    seconds into the window, or at its end). Records the temperature each try asked for, how many tries were in
    flight together at most, and which tries were cancelled; tries hotter than ``never_ending_above`` never end, tries
    hotter than ``failing_above`` raise."""

    name, multilingual, vocabulary = "scripted", False, None

    def __init__(
        self,
        *texts_by_try: str,
        spoken_until: float = float("inf"),
        never_ending_above: float = 1.0,
        failing_above: float = 1.0,
    ):
        self.texts_by_try = list(texts_by_try)
        self.spoken_until = spoken_until
        self.never_ending_above = never_ending_above
        self.failing_above = failing_above
        self.temperatures: list[float] = []
        self.cancelled: list[float] = []
        self.in_flight = self.most_in_flight = 0

    def healthy(self) -> bool:
        return True

    async def transcribe(self, windows):
        [window] = windows
        temperature = window.options.temperature
        text = self.texts_by_try[min(len(self.temperatures), len(self.texts_by_try) - 1)]
        self.temperatures.append(temperature)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # other tries submitted at the same time start meanwhile
            if temperature > self.never_ending_above:
                await asyncio.Event().wait()
            if temperature > self.failing_above:
                raise RuntimeError(f"the try at {temperature} failed")
        except asyncio.CancelledError:
            self.cancelled.append(temperature)
            raise
        finally:
            self.in_flight -= 1
        end = min(self.spoken_until, len(window.audio) / 16000)
        return [WindowResult(text, (Segment(0.0, end, text),), "en", TOKENS_PER_TRY)]


def transcribe(engine: ScriptedEngine, temperature: float = 0.0) -> str:
    transcriber = Transcriber(engine, AudioLimits.from_megabytes(16, 60))
    options = DecodeOptions(language="en", temperature=temperature)
    return asyncio.run(transcriber.transcribe_pcm(sine(5.0), options)).text


def test_a_looping_window_is_decoded_again_at_every_hotter_temperature_at_once_and_the_clean_try_stands():
    engine = ScriptedEngine(LOOP, SPEECH)
    assert transcribe(engine) == SPEECH
    assert engine.temperatures == [0.0, 0.2, 0.4, 0.6] and engine.most_in_flight == 3


def test_the_coolest_clean_try_stands_and_the_hotter_ones_still_running_are_cancelled():
    engine = ScriptedEngine(LOOP, SPEECH, never_ending_above=0.2)

    async def transcribe_then_look():
        transcriber = Transcriber(engine, AudioLimits.from_megabytes(16, 60))
        transcript = await transcriber.transcribe_pcm(sine(5.0), DecodeOptions(language="en"))
        await asyncio.sleep(0)  # a cancelled task ends at its next step
        return transcript.text, list(engine.cancelled)  # seen before asyncio.run cancels what is left

    assert asyncio.run(transcribe_then_look()) == (SPEECH, [0.4, 0.6])
    other = "Please call me back tomorrow morning after the meeting."
    assert transcribe(ScriptedEngine(LOOP, LOOP, SPEECH, other)) == SPEECH  # 0.4 stands, not the hotter 0.6


def test_hotter_tries_that_failed_after_a_cooler_one_stood_leave_no_lost_exception():
    """Such a failure changes nothing (the cooler text stands) and must not reach the log as "never retrieved"."""
    lost: list[dict] = []
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda _, context: lost.append(context))
    transcriber = Transcriber(ScriptedEngine(LOOP, SPEECH, failing_above=0.2), AudioLimits.from_megabytes(16, 60))
    try:
        transcript = loop.run_until_complete(transcriber.transcribe_pcm(sine(5.0), DecodeOptions(language="en")))
        loop.run_until_complete(asyncio.sleep(0))
        gc.collect()  # an unretrieved exception is reported when its task is collected
    finally:
        loop.close()
    assert transcript.text == SPEECH and lost == []


def test_a_clean_window_is_decoded_once():
    engine = ScriptedEngine(SPEECH)
    assert transcribe(engine) == SPEECH and engine.temperatures == [0.0]


def test_speech_that_repeats_itself_is_decoded_once():
    """Repetitive text at a speaking pace, ended by the model: the speaker repeated, the decoder did not loop."""
    said_eight_times = "Press one. " * 8
    engine = ScriptedEngine(said_eight_times)
    assert transcribe(engine) == said_eight_times.strip() and engine.temperatures == [0.0]


def test_when_every_try_loops_the_least_repetitive_stands():
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


def test_tokens_in_series_count_a_window_and_its_retries_as_two_rounds():
    assert serial_tokens_of(ScriptedEngine(SPEECH)) == TOKENS_PER_TRY
    assert serial_tokens_of(ScriptedEngine(LOOP, SPEECH)) == 2 * TOKENS_PER_TRY
    assert serial_tokens_of(ScriptedEngine(LOOP)) == 2 * TOKENS_PER_TRY  # four tries, the three retries side by side


def test_tokens_in_series_count_a_resumed_rest_after_its_window():
    """Speech ends 2 s into a voiced 5 s window: its rest is decoded once more, after it."""
    engine = ScriptedEngine(SPEECH, spoken_until=2.0)
    assert serial_tokens_of(engine) == 2 * TOKENS_PER_TRY and len(engine.temperatures) == 2
