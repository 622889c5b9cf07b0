"""Word timestamps from cross-attention: Whisper's own method (openai-whisper's ``timing.py``, as faster-whisper
and Transformers' ``return_token_timestamps`` also do it), as pure functions over arrays.

The aligner (:mod:`whisper_runtime.aligner`) runs the model and hands over the alignment heads' attention from
each text token to the audio frames; here that matrix is normalised, smoothed, and warped onto time with DTW, the
tokens are grouped into words, punctuation is merged into its word, and the heuristics openai-whisper applies to
words that swallow a pause are applied the same way, so times agree with faster-whisper's ``word_timestamps``.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Callable, Sequence

import numpy as np

from .windowing import Segment, Word

#: Encoder frames per second (each covers 20 ms of audio).
FRAMES_PER_SECOND = 50
#: Width of the median filter over frames (openai-whisper's ``medfilt_width``).
MEDIAN_FILTER_WIDTH = 7
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
SENTENCE_END_MARKS = ".。!！?？"
#: Languages written without spaces between words: their words are split at character (unicode) boundaries.
UNSPACED_LANGUAGES = {"zh", "ja", "th", "lo", "my", "yue"}
#: A word's duration is capped at twice the median, and the median at this.
MAX_MEDIAN_WORD_SECONDS = 0.7


@dataclasses.dataclass
class WordTiming:
    """One word of a window, in window time (mutable: the merging and clamping steps edit it in place)."""

    word: str
    tokens: list[int]
    start: float
    end: float


def median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median over the last axis in a window of ``width`` (odd), edges reflected, as openai-whisper filters."""
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1), axis=-1)


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The monotonic path through ``cost`` (tokens x frames) of least total cost: (token indices, frame indices).

    openai-whisper's recurrence and tie-breaking (diagonal, then up, then left), computed one anti-diagonal at a
    time: every cell of a diagonal depends only on the two diagonals before it.
    """
    rows, cols = cost.shape
    total = np.full((rows + 1, cols + 1), np.inf, dtype=np.float32)
    trace = np.full((rows + 1, cols + 1), -1, dtype=np.int8)
    total[0, 0] = 0
    for diagonal in range(2, rows + cols + 1):
        i = np.arange(max(1, diagonal - cols), min(rows, diagonal - 1) + 1)
        j = diagonal - i
        c0, c1, c2 = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
        step = np.where((c0 < c1) & (c0 < c2), 0, np.where((c1 < c0) & (c1 < c2), 1, 2))
        total[i, j] = cost[i - 1, j - 1] + np.choose(step, [c0, c1, c2])
        trace[i, j] = step
    return _backtrace(trace)


def _backtrace(trace: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    trace = trace.copy()
    trace[0, :] = 2
    trace[:, 0] = 1
    i, j = trace.shape[0] - 1, trace.shape[1] - 1
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        step = trace[i, j]
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
    path_array = np.array(path[::-1])
    return path_array[:, 0], path_array[:, 1]


def token_frame_matrix(attention: np.ndarray, num_frames: int) -> np.ndarray:
    """Alignment heads' cross-attention (heads x tokens x all frames, softmaxed) -> one tokens x frames score.

    Only the frames that hold audio count: the weights are renormalised over them (the softmax over those frames
    alone), standardised per frame across tokens, median-filtered along time and averaged over the heads.
    """
    weights = attention[:, :, :num_frames]
    weights = weights / weights.sum(axis=-1, keepdims=True)
    mean = weights.mean(axis=-2, keepdims=True)
    std = weights.std(axis=-2, keepdims=True)
    weights = (weights - mean) / np.maximum(std, 1e-10)
    return median_filter(weights, MEDIAN_FILTER_WIDTH).mean(axis=0)


def split_into_words(
    tokens: Sequence[int], decode: Callable[[Sequence[int]], str], end_of_text: int, language: str | None
) -> tuple[list[str], list[list[int]]]:
    """Group text tokens (ending with ``end_of_text``) into words, as openai-whisper's tokenizer does."""
    subwords, subword_tokens = _split_on_unicode(tokens, decode)
    if language in UNSPACED_LANGUAGES:
        return subwords, subword_tokens
    words: list[str] = []
    word_tokens: list[list[int]] = []
    for subword, ids in zip(subwords, subword_tokens):
        starts_word = ids[0] >= end_of_text or subword.startswith(" ") or subword.strip() in string.punctuation
        if starts_word or not words:
            words.append(subword)
            word_tokens.append(list(ids))
        else:
            words[-1] += subword
            word_tokens[-1].extend(ids)
    return words, word_tokens


def _split_on_unicode(tokens: Sequence[int], decode: Callable[[Sequence[int]], str]) -> tuple[list[str], list[list[int]]]:
    """Cut where the decoded text is whole characters (a multi-byte character may span tokens)."""
    replacement = "\ufffd"
    full = decode(tokens)
    words, word_tokens, current = [], [], []
    offset = 0
    for token in tokens:
        current.append(token)
        decoded = decode(current)
        if replacement not in decoded or full[offset + decoded.index(replacement)] == replacement:
            words.append(decoded)
            word_tokens.append(current)
            current = []
            offset += len(decoded)
    return words, word_tokens


def word_timings(
    matrix: np.ndarray, words: Sequence[str], word_tokens: Sequence[Sequence[int]]
) -> list[WordTiming]:
    """DTW over the (text tokens + end of text) x frames score -> each word's start and end, in window seconds."""
    if len(word_tokens) <= 1:
        return []
    token_indices, frame_indices = dtw(-matrix)
    boundaries = np.pad(np.cumsum([len(ids) for ids in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(token_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = frame_indices[jumps] / FRAMES_PER_SECOND
    starts, ends = jump_times[boundaries[:-1]], jump_times[boundaries[1:]]
    return [
        WordTiming(word, list(ids), float(start), float(end))
        for word, ids, start, end in zip(words[:-1], word_tokens[:-1], starts, ends)
    ]


def merge_punctuations(alignment: list[WordTiming]) -> None:
    """Opening punctuation joins the next word, closing punctuation the previous one (the emptied entry stays)."""
    i, j = len(alignment) - 2, len(alignment) - 1
    while i >= 0:
        previous, following = alignment[i], alignment[j]
        if previous.word.startswith(" ") and previous.word.strip() in PREPEND_PUNCTUATIONS:
            following.word, following.tokens = previous.word + following.word, previous.tokens + following.tokens
            previous.word, previous.tokens = "", []
        else:
            j = i
        i -= 1
    i, j = 0, 1
    while j < len(alignment):
        previous, following = alignment[i], alignment[j]
        if not previous.word.endswith(" ") and following.word in APPEND_PUNCTUATIONS:
            previous.word, previous.tokens = previous.word + following.word, previous.tokens + following.tokens
            following.word, following.tokens = "", []
        else:
            i = j
        j += 1


def median_word_seconds(alignment: Sequence[WordTiming]) -> float:
    durations = np.array([timing.end - timing.start for timing in alignment])
    durations = durations[durations.nonzero()]
    return min(MAX_MEDIAN_WORD_SECONDS, float(np.median(durations))) if len(durations) else 0.0


def clamp_sentence_ends(alignment: list[WordTiming], median: float) -> None:
    """A sentence mark, or the word after one, longer than twice the median word is cut to that length."""
    longest = median * 2
    for i in range(1, len(alignment)):
        if alignment[i].end - alignment[i].start > longest:
            if alignment[i].word in SENTENCE_END_MARKS:
                alignment[i].end = alignment[i].start + longest
            elif alignment[i - 1].word in SENTENCE_END_MARKS:
                alignment[i].start = alignment[i].end - longest


def attach_words(
    segments: Sequence[Segment],
    tokens_per_segment: Sequence[int],
    alignment: list[WordTiming],
    offset_seconds: float,
    last_speech: float,
) -> tuple[list[Segment], float]:
    """Give each segment (recording time) its words; returns them and the end of the last speech.

    Words go to segments by token count. A first word right after a long pause that is too long is shortened,
    and where a segment's own start or end timestamp and its first or last word disagree by over half a second,
    the segment timestamp wins, as in openai-whisper; otherwise the segment is fitted to its words.
    """
    median = median_word_seconds(alignment)
    clamp_sentence_ends(alignment, median)
    merge_punctuations(alignment)
    longest = median * 2
    result, index = [], 0
    for segment, token_count in zip(segments, tokens_per_segment):
        words: list[Word] = []
        taken = 0
        while index < len(alignment) and taken < token_count:
            timing = alignment[index]
            if timing.word:
                words.append(Word(round(offset_seconds + timing.start, 2), round(offset_seconds + timing.end, 2), timing.word))
            taken += len(timing.tokens)
            index += 1
        start, end = segment.start, segment.end
        if words:
            first_too_long = words[0].end - words[0].start > longest
            pair_too_long = len(words) > 1 and words[1].end - words[0].start > longest * 2
            if words[0].end - last_speech > median * 4 and (first_too_long or pair_too_long):
                if len(words) > 1 and words[1].end - words[1].start > longest:
                    boundary = max(words[1].end / 2, words[1].end - longest)
                    words[0] = dataclasses.replace(words[0], end=boundary)
                    words[1] = dataclasses.replace(words[1], start=boundary)
                words[0] = dataclasses.replace(words[0], start=max(0.0, words[0].end - longest))
            if start < words[0].end and start - 0.5 > words[0].start:
                words[0] = dataclasses.replace(words[0], start=max(0.0, min(words[0].end - median, start)))
            else:
                start = words[0].start
            if end > words[-1].start and end + 0.5 < words[-1].end:
                words[-1] = dataclasses.replace(words[-1], end=max(words[-1].start + median, end))
            else:
                end = words[-1].end
            last_speech = end
        result.append(Segment(start, end, segment.text, tuple(words)))
    return result, last_speech
