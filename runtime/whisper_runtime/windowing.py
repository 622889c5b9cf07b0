"""Cut long audio into Whisper windows and stitch the windows' results back together.

Whisper's encoder sees at most 30 seconds. Instead of fixed 30-second chunks (which split words
and, in the Transformers pipeline, drop whole sentences at the seams), each window ends at the
quietest moment of its last few seconds, so every word lands whole in exactly one window. All
windows of a recording are then decoded together as one batch.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from .contract import SAMPLE_RATE, WINDOW_SECONDS

#: How far back from a window's 30-second limit to look for a quiet cut point.
CUT_SEARCH_SECONDS = 5.0
#: Length of the frames whose energy is compared when choosing a cut.
ENERGY_FRAME_SECONDS = 0.02
#: A window whose decoded segments stop this long before its end has an unfinished tail.
UNFINISHED_TAIL_SECONDS = 1.0
#: Windows whose loudest frame stays below this level (dBFS) are silence and are not decoded.
SILENCE_DBFS = -45.0
#: Nobody speaks slower than this, counting only voiced time (frames not in a pause). Measured over espeak,
#: real telephone prompts (asterisk) and read speech: median 3.2, 1st percentile 1.3, slowest single word
#: ("Deactivated.") 1.06, spelled digits and letters 1.6. tiny.en's skipped sentences measured 0.94: one
#: sentence's 11 words over 11.7 voiced seconds.
SLOWEST_WORDS_PER_SECOND = 1.2
#: Nobody speaks faster than this: the pause after a segment's text is searched from here on.
FASTEST_WORDS_PER_SECOND = 6.0
#: A pause: 20 ms frames at least this far below the window's loudest frame, for at least ``PAUSE_SECONDS``.
PAUSE_BELOW_PEAK_DB = 30.0
PAUSE_SECONDS = 0.25
#: Samples in one energy frame.
FRAME_SAMPLES = int(ENERGY_FRAME_SECONDS * SAMPLE_RATE)


@dataclasses.dataclass(frozen=True)
class Window:
    start_sample: int
    samples: np.ndarray

    @property
    def offset_seconds(self) -> float:
        return self.start_sample / SAMPLE_RATE


@dataclasses.dataclass(frozen=True)
class Word:
    start: float
    end: float
    #: As Whisper writes it: with its leading space and any punctuation attached.
    word: str

    def shifted(self, seconds: float) -> "Word":
        return Word(start=round(self.start + seconds, 3), end=round(self.end + seconds, 3), word=self.word)


@dataclasses.dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    #: Filled in only when a request asks for word timestamps.
    words: tuple[Word, ...] = ()

    def shifted(self, seconds: float) -> "Segment":
        return Segment(
            start=round(self.start + seconds, 3),
            end=round(self.end + seconds, 3),
            text=self.text,
            words=tuple(word.shifted(seconds) for word in self.words),
        )


def cut_windows(
    audio: np.ndarray,
    window_seconds: float = WINDOW_SECONDS,
    search_seconds: float = CUT_SEARCH_SECONDS,
) -> list[Window]:
    """Split audio into consecutive windows of at most ``window_seconds``, cut at low-energy points."""
    limit = int(window_seconds * SAMPLE_RATE)
    search = int(search_seconds * SAMPLE_RATE)
    windows = []
    start = 0
    while len(audio) - start > limit:
        cut = quietest_point(audio, start + limit - search, start + limit)
        windows.append(Window(start, audio[start:cut]))
        start = cut
    if start < len(audio) or not windows:
        windows.append(Window(start, audio[start:]))
    return windows


def quietest_point(audio: np.ndarray, begin: int, end: int) -> int:
    """The sample index in [begin, end] at the centre of the lowest-energy frame (the latest one on ties)."""
    frame = FRAME_SAMPLES
    count = (end - begin) // frame
    if count < 1:
        return end
    frames = audio[begin : begin + count * frame].reshape(count, frame)
    energy = np.square(frames, dtype=np.float64).mean(axis=1)
    latest_quietest = count - 1 - int(np.argmin(energy[::-1]))
    return begin + latest_quietest * frame + frame // 2


def is_silent(samples: np.ndarray, threshold_dbfs: float = SILENCE_DBFS) -> bool:
    """True when no 20 ms frame of the window rises above ``threshold_dbfs`` (RMS)."""
    if samples.size == 0:
        return True
    return float(frame_levels_db(samples).max()) < threshold_dbfs


def frame_levels_db(samples: np.ndarray) -> np.ndarray:
    """RMS level (dBFS) of each 20 ms frame; a partial last frame counts as padded with zeros.

    Sums of squares are taken in place (``einsum``: no padded copy of the window, no squared temporary), in float32
    (320 squares of samples within [-1, 1]: a relative error near 1e-7, far below any level compared here); every
    window of every upload passes through here before it is decoded, on the request's path.
    """
    frame = FRAME_SAMPLES
    whole = samples.size // frame
    frames = samples[: whole * frame].reshape(whole, frame)
    energy = np.einsum("ij,ij->i", frames, frames).astype(np.float64)
    if samples.size % frame:
        tail = samples[whole * frame :]
        energy = np.append(energy, np.dot(tail, tail))
    rms = np.sqrt(energy / frame)
    return 20 * np.log10(np.maximum(rms, 1e-10))


@dataclasses.dataclass(frozen=True)
class Resumption:
    """A window's decode that stopped short: the segments that stand, and the rest of the window to decode again."""

    kept: tuple[Segment, ...]
    rest: Window


def resumption(window: Window, segments: Sequence[Segment]) -> Resumption | None:
    """Where a window's decode must resume, if anywhere: inside an overlong last segment, else after the last one."""
    if segments and overruns_its_text(window, segments[-1]):
        resumed = resume_inside(window, segments)
        if resumed is not None:
            return resumed
    tail = unfinished_tail(window, segments)
    return Resumption(tuple(segments), tail) if tail is not None else None


def overruns_its_text(window: Window, segment: Segment) -> bool:
    """True when the segment holds over a second more speech than its words take at the slowest rate.

    tiny.en sometimes writes one sentence and closes it with a timestamp far later, skipping the sentences
    in between. Only voiced time counts, so pauses between slow single words (digits, letters) do not.
    """
    voiced = ~_quiet_frames(window.samples)[_frame(segment.start) : _frame(segment.end)]
    voiced_seconds = float(voiced.sum()) * ENERGY_FRAME_SECONDS
    return voiced_seconds - len(segment.text.split()) / SLOWEST_WORDS_PER_SECOND >= UNFINISHED_TAIL_SECONDS


def voiced_seconds(samples: np.ndarray) -> float:
    """Seconds of ``samples`` that are not pauses (frames ``PAUSE_BELOW_PEAK_DB`` under its loudest frame)."""
    return float((~_quiet_frames(samples)).sum()) * ENERGY_FRAME_SECONDS


def resume_inside(window: Window, segments: Sequence[Segment]) -> Resumption | None:
    """Keep the last segment's text up to the first pause after it and decode from there to the window end.

    Without a pause, the whole segment is decoded again, unless it starts the window: that is the same audio.
    """
    last = segments[-1]
    earliest_text_end = last.start + len(last.text.split()) / FASTEST_WORDS_PER_SECOND
    pause = first_pause(window.samples, _sample(earliest_text_end), _sample(last.end))
    if pause is not None:
        resume = round(pause / SAMPLE_RATE, 3)
        return Resumption((*segments[:-1], Segment(last.start, resume, last.text)), rest_of(window, pause))
    if _sample(last.start) == 0:
        return None
    return Resumption(tuple(segments[:-1]), rest_of(window, _sample(last.start)))


def first_pause(samples: np.ndarray, begin: int, end: int) -> int | None:
    """The middle of the first pause (``PAUSE_SECONDS`` of frames ``PAUSE_BELOW_PEAK_DB`` under the peak) in [begin, end)."""
    frame = FRAME_SAMPLES
    quiet = _quiet_frames(samples)
    needed = max(1, int(round(PAUSE_SECONDS / ENERGY_FRAME_SECONDS)))
    run = 0
    for index in range(begin // frame, min(len(quiet), -(-end // frame))):
        run = run + 1 if quiet[index] else 0
        if run == needed:
            return (index + 1 - needed // 2) * frame
    return None


def rest_of(window: Window, sample: int) -> Window:
    """The window's audio from ``sample`` (window time) to its end, placed in recording time."""
    return Window(window.start_sample + sample, window.samples[sample:])


def _sample(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


def _frame(seconds: float) -> int:
    return int(round(seconds / ENERGY_FRAME_SECONDS))


def _quiet_frames(samples: np.ndarray) -> np.ndarray:
    """Which 20 ms frames are at least ``PAUSE_BELOW_PEAK_DB`` below the loudest one (pauses, not speech)."""
    levels = frame_levels_db(samples)
    return levels <= levels.max(initial=-np.inf) - PAUSE_BELOW_PEAK_DB


def unfinished_tail(window: Window, segments: Sequence[Segment]) -> Window | None:
    """The audio after a window's last decoded segment, when it is long and not silent; else None.

    A window that produced no segment at all is not retried: decoding it again would give the same.
    """
    if not segments:
        return None
    rest = rest_of(window, _sample(segments[-1].end))
    if len(rest.samples) < UNFINISHED_TAIL_SECONDS * SAMPLE_RATE or is_silent(rest.samples):
        return None
    return rest


def stitch_text(texts: Sequence[str]) -> str:
    return " ".join(text.strip() for text in texts if text.strip())
