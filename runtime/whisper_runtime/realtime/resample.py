"""PCM16 chunks of a live stream at any rate -> float32 at 16 kHz, one resampler state across chunks.

Resampling each chunk on its own would click at every chunk edge; libswresample keeps its filter state between
calls (its output lags the input by a few samples, which is silence by the time an utterance is committed).
"""

from __future__ import annotations

import av
import numpy as np

from ..contract import SAMPLE_RATE
from ..errors import InvalidAudio


class StreamResampler:
    def __init__(self, input_rate: int):
        self.input_rate = input_rate
        self._resampler = None if input_rate == SAMPLE_RATE else av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def pcm16(self, data: bytes) -> np.ndarray:
        """Little-endian signed 16-bit mono samples -> float32 at 16 kHz."""
        if len(data) % 2:
            raise InvalidAudio("PCM16 audio must be a whole number of 2-byte samples", param="audio")
        samples = np.frombuffer(data, dtype="<i2")
        if self._resampler is None or samples.size == 0:
            return samples.astype(np.float32) / 32768.0
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.input_rate
        pieces = self._resampler.resample(frame)
        if not pieces:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([piece.to_ndarray().reshape(-1) for piece in pieces]).astype(np.float32)
