"""Audio helpers for the runtime tests (imported by name: the test folders are not packages)."""

from __future__ import annotations

import io

import numpy as np
import soundfile

SAMPLE_RATE = 16000


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt)
    return buffer.getvalue()


def sine(seconds: float, rate: int = SAMPLE_RATE, frequency: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
