"""The pure steps of word timing: DTW, the median filter, word splitting, punctuation, segments."""

import numpy as np

from whisper_runtime.windowing import Segment
from whisper_runtime.word_timing import (
    WordTiming,
    attach_words,
    dtw,
    median_filter,
    merge_punctuations,
    split_into_words,
    word_timings,
)


def test_dtw_follows_the_cheap_cells_monotonically():
    cost = np.ones((3, 6), np.float32)
    for token, frames in enumerate([(0, 1), (2, 3), (4, 5)]):
        cost[token, list(frames)] = 0
    tokens, frames = dtw(cost)
    assert tokens.tolist() == [0, 0, 1, 1, 2, 2] and frames.tolist() == [0, 1, 2, 3, 4, 5]


def test_median_filter_removes_a_spike_and_keeps_the_shape():
    row = np.array([[0, 0, 0, 9, 0, 0, 0, 1, 1, 1, 1]], np.float32)
    assert median_filter(row, 3).tolist() == [[0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]]


PIECES = {1: " Hello", 2: ",", 3: " wor", 4: "ld", 5: ".", 99: "<|endoftext|>"}


def decode(tokens):
    return "".join(PIECES[token] for token in tokens)


def test_tokens_group_into_words_at_spaces_and_punctuation():
    words, tokens = split_into_words([1, 2, 3, 4, 5, 99], decode, end_of_text=99, language="en")
    assert words == [" Hello", ",", " world", ".", "<|endoftext|>"]
    assert tokens == [[1], [2], [3, 4], [5], [99]]


def test_word_times_come_from_where_the_path_reaches_each_word():
    matrix = np.full((4, 100), -1.0, np.float32)  # scores: 3 text tokens + end of text, over 2 s of frames
    for token, (begin, end) in enumerate([(0, 20), (20, 60), (60, 90), (90, 100)]):
        matrix[token, begin:end] = 1.0
    timings = word_timings(matrix, [" one", " two", " three", "<|endoftext|>"], [[1], [2], [3], [99]])
    assert [(t.word, t.start, t.end) for t in timings] == [(" one", 0.0, 0.4), (" two", 0.4, 1.2), (" three", 1.2, 1.8)]


def test_punctuation_joins_its_word():
    alignment = [WordTiming(" (", [1], 0, 0.1), WordTiming("yes", [2], 0.1, 0.5), WordTiming(")", [3], 0.5, 0.6)]
    merge_punctuations(alignment)
    assert [t.word for t in alignment] == ["", " (yes)", ""]


def test_words_are_shared_out_to_segments_by_tokens_in_recording_time():
    alignment = [WordTiming(" a", [1], 0.0, 0.3), WordTiming(" b", [2], 0.3, 0.6), WordTiming(" c", [3], 1.0, 1.3)]
    segments, last = attach_words([Segment(10.0, 10.6, "a b"), Segment(11.0, 11.3, "c")], [2, 1], alignment, 10.0, 0.0)
    assert [[(w.word, w.start, w.end) for w in s.words] for s in segments] == [
        [(" a", 10.0, 10.3), (" b", 10.3, 10.6)], [(" c", 11.0, 11.3)]
    ]
    assert last == 11.3
