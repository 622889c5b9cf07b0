"""Audio helpers for the runtime tests (imported by name: the test folders are not packages)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16000
#: The test servers' limits: small, so that the 413/400/408 cases are cheap to provoke.
SERVER_MAX_UPLOAD_MB = 16
SERVER_MAX_AUDIO_SECONDS = 400
SERVER_HEADER_TIMEOUT = 3
SERVER_BODY_IDLE_TIMEOUT = 3
#: The key of the session's keyed server (``keyed_server``).
SERVER_API_KEY = "sk-test-6f1d2c9a8b7e4f3a0d5c6b7a8e9f0a1b"


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt)
    return buffer.getvalue()


def sine(seconds: float, rate: int = SAMPLE_RATE, frequency: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


#: Silence between the sentences of the long-form recording.
LONG_FORM_GAP_SECONDS = 0.5


def long_form_clips() -> list:
    """Every espeak clip and the first 12 again: 48 sentences, about 200 s."""
    from whisper_devkit import speech

    clips = speech.espeak_corpus("en")
    return clips + clips[:12]


def long_form_recording(folder: Path):
    """The long-form clips joined 0.5 s apart (eight windows)."""
    from whisper_devkit import speech

    return speech.join_clips(long_form_clips(), folder / "long.wav", gap_seconds=LONG_FORM_GAP_SECONDS)


def text_said_within(clips, gap_seconds: float, begin: float, end: float) -> str:
    """The text of the joined clips that start and end inside [begin, end] seconds of the recording."""
    texts, start = [], 0.0
    for clip in clips:
        if begin <= start and start + clip.duration <= end:
            texts.append(clip.text)
        start += clip.duration + gap_seconds
    return " ".join(texts)


def dropped_sentences(reference: str, hypothesis: str) -> list[str]:
    """Runs of 5+ consecutive reference words that the hypothesis deleted (a lost sentence, not a misheard word)."""
    import jiwer
    from whisper_devkit.wer import normalize

    reference_words = normalize(reference).split()
    alignment = jiwer.process_words(normalize(reference), normalize(hypothesis))
    return [
        " ".join(reference_words[chunk.ref_start_idx : chunk.ref_end_idx])
        for chunk in alignment.alignments[0]
        if chunk.type == "delete" and chunk.ref_end_idx - chunk.ref_start_idx >= 5
    ]


def http_client(server):
    """An httpx client on a runtime server, closed after the block (for module fixtures)."""
    import httpx

    with httpx.Client(base_url=server.http_url, timeout=300) as client:
        yield client


def openai_client_of(server):
    import openai

    return openai.OpenAI(base_url=f"{server.http_url}/v1", api_key="not-needed", timeout=300)
