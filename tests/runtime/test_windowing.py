import numpy as np
import pytest

from whisper_runtime.contract import SAMPLE_RATE
from whisper_runtime.windowing import (
    Segment,
    Window,
    cut_windows,
    is_silent,
    quietest_point,
    stitch_segments,
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


def test_stitching_offsets_segments_by_window_start():
    windows = [Window(0, np.zeros(10)), Window(28 * SAMPLE_RATE, np.zeros(10))]
    stitched = stitch_segments(windows, [[Segment(0.0, 2.5, "one")], [Segment(1.0, 3.0, "two"), Segment(3.0, 4.0, "three")]])
    assert stitched == [Segment(0.0, 2.5, "one"), Segment(29.0, 31.0, "two"), Segment(31.0, 32.0, "three")]


def test_stitching_text_skips_empty_windows():
    assert stitch_text([" Hello there.", "", "  ", "General Kenobi. "]) == "Hello there. General Kenobi."


def test_stitching_needs_one_result_per_window():
    with pytest.raises(ValueError):
        stitch_segments([Window(0, np.zeros(1))], [])


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
