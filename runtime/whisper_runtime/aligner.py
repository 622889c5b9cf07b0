"""The forced-alignment pass behind word timestamps, the same for every engine.

Whichever engine decoded a window, its text is run once more through the same weights in Transformers, teacher-
forced (``<|startoftranscript|>`` [language, task] ``<|notimestamps|>`` text ``<|endoftext|>``), and the alignment
heads' cross-attention (listed in the checkpoint's ``generation_config.alignment_heads``) is warped onto time by
:mod:`whisper_runtime.word_timing`. Only requests that ask for words pay for it; the weights load on the first one.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

from .contract import SAMPLE_RATE
from .engines.transformers_engine import choose_device_and_dtype
from .tokens import WhisperVocabulary
from .windowing import Segment
from .word_timing import WordTiming, split_into_words, token_frame_matrix, word_timings

#: Audio samples per log-mel frame; the encoder halves the frame rate.
HOP_LENGTH = 160


@dataclasses.dataclass(frozen=True)
class WindowText:
    """One decoded window to align: its audio, its segments (window time), its language and task."""

    audio: np.ndarray
    segments: Sequence[Segment]
    language: Optional[str]
    task: str = "transcribe"


@dataclasses.dataclass(frozen=True)
class WindowAlignment:
    words: list[WordTiming]
    #: Text tokens of each segment, in order: how the words are shared out among the segments.
    tokens_per_segment: list[int]


class WordAligner:
    def __init__(self, model_dir: Path, vocabulary: WhisperVocabulary, dtype: str = "bfloat16"):
        self._model_dir = Path(model_dir)
        self._vocabulary = vocabulary
        #: Resolved to a device at the first request, not here: touching CUDA at start-up, before vLLM forks its
        #: engine core, makes the fork fail ("Cannot re-initialize CUDA in forked subprocess", seen on the H200).
        self._requested_dtype = dtype
        self._features = WhisperFeatureExtractor.from_pretrained(self._model_dir)
        self._model: Optional[WhisperForConditionalGeneration] = None
        self._loading = threading.Lock()

    def align(self, windows: Sequence[WindowText]) -> list[WindowAlignment]:
        """Word timings (window time) of each window's text; blocking: call it from a worker thread."""
        tokens_per_window = [[self._segment_tokens(segment) for segment in window.segments] for window in windows]
        texts = [[token for tokens in segments for token in tokens] for segments in tokens_per_window]
        attentions = self._attention(windows, texts)
        return [
            WindowAlignment(self._words(window, text, attention), [len(tokens) for tokens in segment_tokens])
            for window, text, attention, segment_tokens in zip(windows, texts, attentions, tokens_per_window)
        ]

    def _segment_tokens(self, segment: Segment) -> list[int]:
        return self._vocabulary.tokenizer.encode(" " + segment.text.strip(), add_special_tokens=False)

    def _words(self, window: WindowText, text: list[int], attention: np.ndarray) -> list[WordTiming]:
        if not text:
            return []
        end_of_text = self._vocabulary.tokenizer.eos_token_id
        matrix = token_frame_matrix(attention, len(window.audio) // HOP_LENGTH // 2)
        words, word_tokens = split_into_words(
            [*text, end_of_text], self._vocabulary.tokenizer.decode, end_of_text, window.language
        )
        return word_timings(matrix, words, word_tokens)

    def _start_sequence(self, window: WindowText) -> list[int]:
        tokenizer = self._vocabulary.tokenizer
        start = [self._vocabulary.start_of_transcript]
        if self._vocabulary.multilingual:
            language = tokenizer.convert_tokens_to_ids(f"<|{window.language or 'en'}|>")
            start += [language, self._vocabulary.task_token_id(window.task)]
        return start + [tokenizer.convert_tokens_to_ids("<|notimestamps|>")]

    @torch.inference_mode()
    def _attention(self, windows: Sequence[WindowText], texts: Sequence[list[int]]) -> list[np.ndarray]:
        """Per window: the alignment heads' cross-attention from each text token (and end of text) to the frames."""
        model = self._loaded()
        end_of_text = self._vocabulary.tokenizer.eos_token_id
        starts = [self._start_sequence(window) for window in windows]
        rows = [start + text + [end_of_text] for start, text in zip(starts, texts)]
        width = max(len(row) for row in rows)
        # Padding after the end is harmless: the decoder is causal, earlier positions never see it.
        decoder_ids = torch.tensor([row + [end_of_text] * (width - len(row)) for row in rows], device=model.device)
        features = self._features([window.audio for window in windows], sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        # The encoder runs on its own: asked for attention, it would also return its own 1500 x 1500 maps.
        encoded = model.model.encoder(features.to(model.device, model.dtype))
        output = model(encoder_outputs=encoded, decoder_input_ids=decoder_ids, output_attentions=True)
        heads = model.generation_config.alignment_heads
        stacked = torch.stack([output.cross_attentions[layer][:, head] for layer, head in heads], dim=1).float().cpu().numpy()
        # The query at position p predicts token p + 1: the rows from <|notimestamps|> to the last text token.
        return [stacked[index, :, len(start) - 1 : len(row) - 1] for index, (start, row) in enumerate(zip(starts, rows))]

    def _loaded(self) -> WhisperForConditionalGeneration:
        with self._loading:
            if self._model is None:
                device, dtype = choose_device_and_dtype(self._requested_dtype)
                model = WhisperForConditionalGeneration.from_pretrained(
                    self._model_dir, dtype=dtype, attn_implementation="eager"
                )
                self._model = model.to(device).eval()
            return self._model
