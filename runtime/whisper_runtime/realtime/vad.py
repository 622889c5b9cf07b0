"""Server voice activity detection: where speech starts and stops in a stream of 16 kHz samples.

Energy-based, on the same 20 ms RMS frames as the windowing: a frame is voiced when its level is above the
threshold; speech starts after ``START_FRAMES`` voiced frames in a row (a click is not speech) and stops after
``silence_duration_ms`` without a voiced frame. OpenAI's ``threshold`` (0-1, higher needs louder speech) maps
linearly onto -70..-10 dBFS, so its default 0.5 is -40 dBFS: quiet speech into a laptop microphone passes,
room noise does not.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from ..windowing import FRAME_SAMPLES, frame_levels_db

#: Voiced frames in a row that make speech (60 ms).
START_FRAMES = 3
QUIETEST_THRESHOLD_DBFS = -70.0
LOUDEST_THRESHOLD_DBFS = -10.0


@dataclasses.dataclass(frozen=True)
class TurnDetection:
    """OpenAI's ``server_vad`` settings, with its defaults."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500

    @property
    def threshold_dbfs(self) -> float:
        return QUIETEST_THRESHOLD_DBFS + self.threshold * (LOUDEST_THRESHOLD_DBFS - QUIETEST_THRESHOLD_DBFS)

    @property
    def silence_frames(self) -> int:
        return max(1, round(self.silence_duration_ms * 16 / FRAME_SAMPLES))


@dataclasses.dataclass(frozen=True)
class Turn:
    """Speech started (``stopped`` is False) or stopped at ``sample`` of the stream."""

    stopped: bool
    sample: int


class EnergyVad:
    """Feeds on any number of samples at a time; keeps the part of a frame it has not judged yet."""

    def __init__(self, settings: TurnDetection, speaking: bool = False):
        self.settings = settings
        self.speaking = speaking
        self._leftover = np.zeros(0, dtype=np.float32)
        #: Stream position of the first sample of ``_leftover``.
        self._position = 0
        self._voiced_run = 0
        self._silent_run = 0
        self._last_voiced_end = 0

    def feed(self, samples: np.ndarray) -> list[Turn]:
        audio = np.concatenate([self._leftover, samples])
        whole = audio.size - audio.size % FRAME_SAMPLES
        self._leftover = audio[whole:]
        turns = []
        for index, level in enumerate(frame_levels_db(audio[:whole]) if whole else ()):
            turn = self._judge(level > self.settings.threshold_dbfs, self._position + index * FRAME_SAMPLES)
            if turn is not None:
                turns.append(turn)
        self._position += whole
        return turns

    def reset(self) -> None:
        """Forget the speech in progress (the client cleared its buffer); the stream position stays."""
        self.speaking = False
        self._voiced_run = self._silent_run = 0

    def _judge(self, voiced: bool, frame_start: int) -> Optional[Turn]:
        if voiced:
            self._voiced_run += 1
            self._silent_run = 0
            self._last_voiced_end = frame_start + FRAME_SAMPLES
            if not self.speaking and self._voiced_run >= START_FRAMES:
                self.speaking = True
                return Turn(stopped=False, sample=frame_start - (START_FRAMES - 1) * FRAME_SAMPLES)
            return None
        self._voiced_run = 0
        self._silent_run += 1
        if self.speaking and self._silent_run >= self.settings.silence_frames:
            self.speaking = False
            return Turn(stopped=True, sample=self._last_voiced_end)
        return None
