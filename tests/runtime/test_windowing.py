import numpy as np
import pytest

from whisper_runtime.contract import SAMPLE_RATE
from whisper_runtime.windowing import (
    PAUSE_SECONDS,
    SLOWEST_WORDS_PER_SECOND,
    Segment,
    Window,
    Word,
    cut_windows,
    first_pause,
    is_silent,
    overruns_its_text,
    quietest_point,
    resumption,
    stitch_text,
    unfinished_tail,
)


def tone(seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def test_short_audio_is_one_window():
    audio = tone(12)
    windows = cut_windows(audio)
    assert len(windows) == 1
    assert windows[0].start_sample == 0 and len(windows[0].samples) == len(audio)


def test_windows_cover_the_audio_contiguously_and_never_exceed_30_seconds():
    audio = tone(100)
    windows = cut_windows(audio)
    assert all(len(w.samples) <= 30 * SAMPLE_RATE for w in windows)
    assert windows[0].start_sample == 0
    for before, after in zip(windows, windows[1:]):
        assert before.start_sample + len(before.samples) == after.start_sample
    assert sum(len(w.samples) for w in windows) == len(audio)


def test_cut_lands_in_the_pause_not_in_speech():
    # speech 0-27.0 s, a 300 ms pause, speech again: the cut must fall inside the pause
    audio = np.concatenate([tone(27.0), np.zeros(int(0.3 * SAMPLE_RATE), np.float32), tone(20)])
    first = cut_windows(audio)[0]
    cut_seconds = len(first.samples) / SAMPLE_RATE
    assert 27.0 <= cut_seconds <= 27.3


def test_quietest_point_prefers_the_latest_of_equal_quiet_frames():
    audio = np.concatenate([np.zeros(3200, np.float32), tone(0.2), np.zeros(3200, np.float32)])
    point = quietest_point(audio, 0, len(audio))
    assert point > 3200 + int(0.2 * SAMPLE_RATE)


def test_silence_detection():
    assert is_silent(np.zeros(SAMPLE_RATE, np.float32))
    assert is_silent(np.random.default_rng(0).normal(0, 1e-4, SAMPLE_RATE).astype(np.float32))
    assert not is_silent(tone(1, amplitude=0.05))
    assert is_silent(np.zeros(0, np.float32))


def test_shifting_a_segment_to_recording_time_shifts_its_words():
    segment = Segment(1.0, 3.0, "two words", (Word(1.0, 1.5, " two"), Word(1.6, 3.0, " words")))
    assert segment.shifted(28.0) == Segment(29.0, 31.0, "two words", (Word(29.0, 29.5, " two"), Word(29.6, 31.0, " words")))


def test_stitching_text_skips_empty_windows():
    assert stitch_text([" Hello there.", "", "  ", "General Kenobi. "]) == "Hello there. General Kenobi."


def test_unfinished_tail_is_the_speech_after_the_last_segment():
    window = Window(10 * SAMPLE_RATE, np.concatenate([tone(20), tone(5)]))
    tail = unfinished_tail(window, [Segment(0.0, 20.0, "twenty seconds")])
    assert tail is not None
    assert tail.offset_seconds == 30.0 and len(tail.samples) == 5 * SAMPLE_RATE


def test_no_tail_when_the_rest_is_short_silent_or_nothing_was_decoded():
    speech_then_silence = Window(0, np.concatenate([tone(20), np.zeros(5 * SAMPLE_RATE, np.float32)]))
    assert unfinished_tail(speech_then_silence, [Segment(0.0, 20.0, "x")]) is None
    assert unfinished_tail(Window(0, tone(20.5)), [Segment(0.0, 20.0, "x")]) is None
    assert unfinished_tail(Window(0, tone(20)), []) is None


def assert_same_window(actual: Window, expected: Window) -> None:
    assert actual.start_sample == expected.start_sample
    np.testing.assert_array_equal(actual.samples, expected.samples)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


#: 4 words: at most 3.3 voiced seconds at the slowest plausible rate
SENTENCE = "Turn left right now."


def test_a_segment_that_outlasts_its_text_over_speech_overruns():
    speech = Window(0, np.concatenate([tone(4), silence(0.5), tone(20)]))
    assert len(SENTENCE.split()) / SLOWEST_WORDS_PER_SECOND < 3.5
    assert overruns_its_text(speech, Segment(0.0, 20.0, SENTENCE))
    assert not overruns_its_text(speech, Segment(0.0, 4.5, SENTENCE)), "within the slowest rate plus a second"


def test_a_segment_stretched_over_silence_does_not_overrun():
    trailing_silence = Window(0, np.concatenate([tone(4), silence(16)]))
    assert not overruns_its_text(trailing_silence, Segment(0.0, 20.0, SENTENCE))


def test_slow_single_words_with_pauses_between_do_not_overrun():
    """Spelled digits: a long span and few characters, but each word is voiced only briefly."""
    digits = Window(0, np.concatenate([np.concatenate([tone(0.5), silence(1.0)]) for _ in range(10)]))
    assert not overruns_its_text(digits, Segment(0.0, 15.0, "1. 2. 3. 4. 5. 6. 7. 8. 9. 10."))


def test_first_pause_is_the_earliest_long_enough_quiet_stretch():
    short_gap, long_gap = PAUSE_SECONDS / 2, PAUSE_SECONDS * 2
    audio = np.concatenate([tone(1), silence(short_gap), tone(1), silence(long_gap), tone(1), silence(long_gap), tone(1)])
    pause = first_pause(audio, 0, len(audio))
    first_long_gap = (2 + short_gap) * SAMPLE_RATE
    assert first_long_gap < pause < first_long_gap + long_gap * SAMPLE_RATE
    assert first_pause(audio, int(first_long_gap + long_gap * SAMPLE_RATE), len(audio)) > 3 * SAMPLE_RATE
    assert first_pause(tone(5), 0, 5 * SAMPLE_RATE) is None


def test_overlong_last_segment_resumes_at_the_pause_after_its_text():
    window = Window(30 * SAMPLE_RATE, np.concatenate([tone(5), tone(3.5), silence(1), tone(14), tone(5)]))
    first = Segment(0.0, 5.0, "The first sentence is here.")
    resumed = resumption(window, [first, Segment(5.0, 29.0, SENTENCE)])
    assert resumed is not None
    assert resumed.kept[0] == first and resumed.kept[1].text == SENTENCE
    pause = resumed.kept[1].end
    assert 8.5 < pause < 9.5, "inside the quiet second after the sentence"
    assert resumed.rest.offset_seconds == pytest.approx(30 + pause, abs=0.001)
    assert resumed.rest.start_sample + len(resumed.rest.samples) == window.start_sample + len(window.samples)


def test_overlong_last_segment_without_a_pause_is_decoded_again_from_its_start():
    window = Window(0, tone(25))
    first = Segment(0.0, 5.0, "The first sentence is here.")
    resumed = resumption(window, [first, Segment(5.0, 25.0, SENTENCE)])
    assert resumed is not None and resumed.kept == (first,)
    assert_same_window(resumed.rest, Window(5 * SAMPLE_RATE, window.samples[5 * SAMPLE_RATE :]))


def test_overlong_segment_at_the_window_start_without_a_pause_is_not_decoded_again():
    """The same audio again would give the same text: only a short-ending tail would be worth decoding."""
    assert resumption(Window(0, tone(25)), [Segment(0.0, 25.0, SENTENCE)]) is None


def test_short_last_segment_resumes_after_it_keeping_every_segment():
    window = Window(0, np.concatenate([tone(20), tone(5)]))
    segments = [Segment(0.0, 20.0, "twenty seconds of speech, said at a normal rate, long enough.")]
    resumed = resumption(window, segments)
    assert resumed is not None and resumed.kept == tuple(segments)
    assert_same_window(resumed.rest, unfinished_tail(window, segments))
    assert resumption(Window(0, tone(20)), segments) is None
