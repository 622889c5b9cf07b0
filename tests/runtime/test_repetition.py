"""The loop detector on real texts: a loop the H200 benchmark produced (2026-12-04), ordinary windows, and speech
that repeats itself (the benchmark's 46-minute file says one telephone prompt three times in a row)."""

import numpy as np
from runtime_samples import SAMPLE_RATE, sine
from whisper_runtime.engines.base import WindowResult
from whisper_runtime.repetition import compression_ratio, is_loop, retry_temperatures

#: One window's text from the benchmark's 9-minute file `concurrent-2` when it looped (docs/benchmarks.md).
LOOPED = "20, 3, 30, 4, 40, 5, 50, 60, 7 70 8 8 9 9 10 9 10 8 9 10 9 10 9 10 " + "10 " * 200
#: The same stretch decoded well, and a telephone prompt.
SPOKEN = ("Press start to toggle pause. Press pound to enter a new dictation file name. 1, 10, 2, 20, 3, 30, 4, 40, "
          "5, 50, 6, 60, 7, 70, 8, 80, 9, 90, 100.")
PROMPT = "You have successfully installed and executed the Asterisk Open Source PBX."
#: What base wrote, correctly, for 27.5 s of the 46-minute file (its reference says the first sentence three times).
SAID_THREE_TIMES = ("The conference will begin when our glorious leader arrives. " * 3 + "The conference will begin when "
                    "the leader arrives. 3D audio disabled. 3D audio enabled. The conference will now begin.")


def result(text: str, finish_reason: str = "stop") -> WindowResult:
    return WindowResult(text, (), "en", 100, finish_reason)


def speech_with_pauses(seconds: float, voiced_seconds: float) -> np.ndarray:
    """``voiced_seconds`` of tone spread over ``seconds``, the rest silence."""
    audio = np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)
    audio[: int(voiced_seconds * SAMPLE_RATE)] = sine(voiced_seconds)
    return audio


def test_a_loop_is_caught_and_speech_is_not():
    window = sine(27.5)
    assert is_loop(result(LOOPED, finish_reason="length"), window) and compression_ratio(LOOPED) > 5
    assert not is_loop(result(SPOKEN), window) and not is_loop(result(PROMPT), window)
    assert compression_ratio("") == 0.0 and not is_loop(result(""), window)


def test_speech_that_repeats_itself_is_no_loop_unless_the_decode_ran_to_the_limit():
    assert compression_ratio(SAID_THREE_TIMES) > 2.4
    assert not is_loop(result(SAID_THREE_TIMES), sine(27.5))
    assert is_loop(result(SAID_THREE_TIMES, finish_reason="length"), sine(27.5))


def test_a_repetitive_text_that_ended_is_a_loop_when_no_one_speaks_that_fast():
    """46 words in 27.5 s is a normal pace; in the 2 s of that window that are not silence, it is not speech."""
    assert not is_loop(result(SAID_THREE_TIMES), speech_with_pauses(27.5, voiced_seconds=20.0))
    assert is_loop(result(SAID_THREE_TIMES), speech_with_pauses(27.5, voiced_seconds=2.0))


def test_a_decode_the_engine_stopped_as_a_loop_is_one_whatever_its_text():
    """Stopped early, a loop may be too short to compress 2.4x ("9, 9, 9, 9, 9, 9, 9, 9")."""
    stopped = "60, 7, 70, 8, 80, 9, " + "9, " * 8
    assert compression_ratio(stopped) < 2.4 and is_loop(result(stopped, finish_reason="repetition"), sine(25.6))


def test_retries_are_only_hotter_than_the_request():
    assert retry_temperatures(0.0) == (0.2, 0.4, 0.6)
    assert retry_temperatures(0.4) == (0.6,)
    assert retry_temperatures(1.0) == ()
