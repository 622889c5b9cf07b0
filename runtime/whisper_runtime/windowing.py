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


@dataclasses.dataclass(frozen=True)
class Window:
    start_sample: int
    samples: np.ndarray

    @property
    def offset_seconds(self) -> float:
        return self.start_sample / SAMPLE_RATE


@dataclasses.dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str

    def shifted(self, seconds: float) -> "Segment":
        return Segment(start=round(self.start + seconds, 3), end=round(self.end + seconds, 3), text=self.text)


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
    frame = max(1, int(ENERGY_FRAME_SECONDS * SAMPLE_RATE))
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
    frame = max(1, int(ENERGY_FRAME_SECONDS * SAMPLE_RATE))
    padded = np.pad(samples, (0, (-samples.size) % frame))
    rms = np.sqrt(np.square(padded.reshape(-1, frame), dtype=np.float64).mean(axis=1))
    return 20 * np.log10(max(float(rms.max()), 1e-10)) < threshold_dbfs


def unfinished_tail(window: Window, segments: Sequence[Segment]) -> Window | None:
    """The audio after a window's last decoded segment, when it is long and not silent; else None.

    A window that produced no segment at all is not retried: decoding it again would give the same.
    """
    if not segments:
        return None
    covered = int(round(segments[-1].end * SAMPLE_RATE))
    rest = window.samples[covered:]
    if len(rest) < UNFINISHED_TAIL_SECONDS * SAMPLE_RATE or is_silent(rest):
        return None
    return Window(window.start_sample + covered, rest)


def stitch_text(texts: Sequence[str]) -> str:
    return " ".join(text.strip() for text in texts if text.strip())


def stitch_segments(windows: Sequence[Window], segments_per_window: Sequence[Sequence[Segment]]) -> list[Segment]:
    """Move each window's segments from window time to recording time, in order."""
    return [
        segment.shifted(window.offset_seconds)
        for window, segments in zip(windows, segments_per_window, strict=True)
        for segment in segments
    ]
