"""Transcribe corpora on CPU with the converted model (Transformers) and the original (faster-whisper), and score.

This is how the converter is checked and how the WER bounds in docs/models.md were measured:
``whisper-devkit accuracy`` prints the table; tests call the same functions on smaller samples.
Both engines decode greedily (temperature 0, no fallback, no previous-text conditioning) from the same
16 kHz samples, so differences come from the weights and arithmetic, not from decoding options.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from whisper_devkit.speech import Utterance
from whisper_devkit.wer import word_error_rate

SAMPLE_RATE = 16000
MAX_CLIP_SECONDS = 30.0  # one Whisper window; long-form chunking is the runtime's job


def load_audio(path: Path) -> np.ndarray:
    """Mono float32 at 16 kHz (resampled by PyAV through faster-whisper's decoder, as for both engines)."""
    from faster_whisper.audio import decode_audio

    return decode_audio(str(path), sampling_rate=SAMPLE_RATE)


def single_window(utterances: Sequence[Utterance]) -> list[Utterance]:
    return [item for item in utterances if item.duration <= MAX_CLIP_SECONDS]


def every_nth(utterances: Sequence[Utterance], count: int) -> list[Utterance]:
    """``count`` utterances spread evenly over the corpus (a fixed, reproducible sample)."""
    step = max(1, len(utterances) // count)
    return list(utterances[::step][:count])


class TransformersTranscriber:
    """The converted Hugging Face model on CPU in float32, greedy, batched."""

    def __init__(self, model_dir: Path, batch_size: int = 8):
        import torch
        from transformers import AutoProcessor, WhisperForConditionalGeneration

        self.processor = AutoProcessor.from_pretrained(str(model_dir))
        self.model = WhisperForConditionalGeneration.from_pretrained(str(model_dir), dtype=torch.float32).eval()
        self.multilingual = bool(self.model.generation_config.is_multilingual)
        self.batch_size = batch_size

    def features(self, audio: Sequence[np.ndarray]):
        return self.processor(list(audio), sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features

    def transcribe(self, utterances: Sequence[Utterance]) -> list[str]:
        import torch

        texts: list[str] = []
        for start in range(0, len(utterances), self.batch_size):
            batch = utterances[start : start + self.batch_size]
            language = {"language": batch[0].language, "task": "transcribe"} if self.multilingual else {}
            with torch.inference_mode():
                ids = self.model.generate(self.features([load_audio(item.path) for item in batch]), **language)
            texts += [text.strip() for text in self.processor.batch_decode(ids, skip_special_tokens=True)]
        return texts


class FasterWhisperTranscriber:
    """The original CTranslate2 model through faster-whisper on CPU, decoded like ``TransformersTranscriber``."""

    def __init__(self, ct2_dir: Path, compute_type: str = "float32"):
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(ct2_dir), device="cpu", compute_type=compute_type, cpu_threads=0)

    def transcribe(self, utterances: Sequence[Utterance]) -> list[str]:
        return [self._one(item) for item in utterances]

    def _one(self, item: Utterance) -> str:
        language = item.language if self.model.model.is_multilingual else None
        segments, _ = self.model.transcribe(
            load_audio(item.path),
            language=language,
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        return " ".join(segment.text.strip() for segment in segments)


@dataclasses.dataclass(frozen=True)
class Score:
    corpus: str
    clips: int
    audio_seconds: float
    wer: float
    seconds: float


def score(name: str, transcriber, utterances: Sequence[Utterance]) -> tuple[Score, list[str]]:
    """Transcribe ``utterances`` and score them against their reference text."""
    started = time.perf_counter()
    hypotheses = transcriber.transcribe(utterances)
    elapsed = time.perf_counter() - started
    wer = word_error_rate([item.text for item in utterances], hypotheses, utterances[0].language)
    audio = sum(item.duration for item in utterances)
    return Score(name, len(utterances), audio, wer, elapsed), hypotheses


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One model on one corpus: the converted model, the original, and how far apart their transcripts are."""

    model: str
    transformers: Score
    faster_whisper: Score
    #: WER of the Transformers transcripts scored against faster-whisper's
    disagreement: float

    def markdown_row(self) -> str:
        hf, fw = self.transformers, self.faster_whisper
        return (
            f"| {self.model} | {hf.corpus} | {hf.clips} | {hf.audio_seconds / 60:.1f} | {100 * hf.wer:.1f} | "
            f"{100 * fw.wer:.1f} | {100 * self.disagreement:.1f} | {hf.seconds:.0f} | {fw.seconds:.0f} |"
        )


MARKDOWN_HEADER = (
    "| model | corpus | clips | audio min | WER % Transformers (converted) | WER % faster-whisper (original) "
    "| disagreement % | Transformers s | faster-whisper s |\n|---|---|---|---|---|---|---|---|---|"
)


def compare(model: str, hf: TransformersTranscriber, fw: FasterWhisperTranscriber, corpus: str,
            utterances: Sequence[Utterance]) -> Comparison:  # fmt: skip
    hf_score, hf_texts = score(corpus, hf, utterances)
    fw_score, fw_texts = score(corpus, fw, utterances)
    return Comparison(model, hf_score, fw_score, word_error_rate(fw_texts, hf_texts, utterances[0].language))
