"""The loop detector on real texts: a loop the H200 benchmark produced (2026-12-04) and ordinary windows."""

from whisper_runtime.repetition import compression_ratio, is_loop, retry_temperatures

#: One window's text from the benchmark's 9-minute file `concurrent-2` when it looped (docs/benchmarks.md).
LOOPED = "20, 3, 30, 4, 40, 5, 50, 60, 7 70 8 8 9 9 10 9 10 8 9 10 9 10 9 10 " + "10 " * 200
#: The same stretch decoded well, and a telephone prompt.
SPOKEN = ("Press start to toggle pause. Press pound to enter a new dictation file name. 1, 10, 2, 20, 3, 30, 4, 40, "
          "5, 50, 6, 60, 7, 70, 8, 80, 9, 90, 100.")
PROMPT = "You have successfully installed and executed the Asterisk Open Source PBX."


def test_a_loop_is_caught_and_speech_is_not():
    assert is_loop(LOOPED) and compression_ratio(LOOPED) > 5
    assert not is_loop(SPOKEN) and not is_loop(PROMPT)
    assert compression_ratio("") == 0.0 and not is_loop("")


def test_retries_are_only_hotter_than_the_request():
    assert retry_temperatures(0.0) == (0.2, 0.4, 0.6)
    assert retry_temperatures(0.4) == (0.6,)
    assert retry_temperatures(1.0) == ()
