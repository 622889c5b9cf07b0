"""Hugging Face Transformers engine: runs anywhere (CPU in CI) and is the GPU baseline.

Windows of all concurrent requests are gathered by a micro-batcher; each batch is split into groups
that share decoding options (Transformers' ``generate`` takes one set per call) and decoded with
one batched ``generate`` per group.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from transformers import (
    GenerationConfig,
    StoppingCriteria,
    StoppingCriteriaList,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)

from ..benchmark import BenchmarkMode
from ..contract import SAMPLE_RATE
from ..tokens import WhisperVocabulary
from .base import MAX_NEW_TOKENS, DecodeOptions, WindowRequest, WindowResult
from .batching import MicroBatcher
from .loop_stop import LOOP_PATTERN_MAX_TOKENS, LOOP_PATTERN_REPEATS, ends_in_loop

_TORCH_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def choose_device_and_dtype(requested_dtype: str) -> tuple[str, torch.dtype]:
    """bf16/fp16 only where a GPU runs them fast; CPUs decode in fp32."""
    if not torch.cuda.is_available():
        return "cpu", torch.float32
    return "cuda", _TORCH_DTYPES.get(requested_dtype, torch.bfloat16)


class TransformersEngine:
    name = "transformers"

    def __init__(
        self, model_dir: Path, dtype: str = "bfloat16", max_batch: int = 16, benchmark: Optional[BenchmarkMode] = None
    ):
        self._model_dir = Path(model_dir)
        self._benchmark = benchmark
        self._device, self._dtype = choose_device_and_dtype(dtype)
        self._batcher = MicroBatcher(self._decode_batch, max_batch=max_batch, key=lambda window: window.priority)
        self._model: Optional[WhisperForConditionalGeneration] = None
        self.vocabulary = WhisperVocabulary.from_model_dir(self._model_dir)
        self.multilingual = self.vocabulary.multilingual
        self._features = WhisperFeatureExtractor.from_pretrained(self._model_dir)

    async def start(self) -> None:
        if self._benchmark is None:
            model = WhisperForConditionalGeneration.from_pretrained(self._model_dir, dtype=self._dtype).to(self._device)
        else:
            model = self._random_model()
        self._model = model.eval()
        self._batcher.start()

    def _random_model(self) -> WhisperForConditionalGeneration:
        """Benchmark mode: random weights of config.json's shape, initialised on the device (fast even for large-v3)."""
        with torch.device(self._device):
            model = WhisperForConditionalGeneration(WhisperConfig.from_pretrained(self._model_dir)).to(self._dtype)
        model.generation_config = GenerationConfig.from_pretrained(self._model_dir)
        return model

    async def transcribe(self, windows: Sequence[WindowRequest]) -> list[WindowResult]:
        return await self._batcher.submit(windows)

    def healthy(self) -> bool:
        return self._model is not None and self._batcher.running

    def queue_depth(self) -> int:
        return self._batcher.depth()

    async def stop(self) -> None:
        await self._batcher.stop()
        self._model = None

    def _decode_batch(self, windows: Sequence[WindowRequest]) -> list[WindowResult]:
        """Decode a mixed batch: detect missing languages, then one ``generate`` per options group."""
        features = self._input_features([window.audio for window in windows])
        options = self._with_detected_languages([window.options for window in windows], features)
        results: list[Optional[WindowResult]] = [None] * len(windows)
        order = sorted(range(len(windows)), key=lambda index: repr(options[index]))
        for group_options, group in itertools.groupby(order, key=lambda index: options[index]):
            indices = list(group)
            for index, (token_ids, looped) in zip(indices, self._generate(features[indices], group_options)):
                result = self.vocabulary.parse(token_ids, len(windows[index].audio) / SAMPLE_RATE, stopped_as_loop=looped)
                results[index] = dataclasses.replace(
                    result,
                    language=result.language or group_options.language,
                    num_tokens=result.num_tokens - self._forced_after_start,
                )
        return results

    @property
    def _forced_after_start(self) -> int:
        """The tokens ``generate`` forces after ``<|startoftranscript|>`` (language, task) and returns with the
        decoded ones: not decoded, so not counted, as vLLM counts (a window's tokens in series, OpenAI's usage)."""
        return 2 if self.multilingual else 0

    def _input_features(self, audios: Sequence[np.ndarray]) -> torch.Tensor:
        features = self._features(list(audios), sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        return features.to(self._device, self._dtype)

    @torch.inference_mode()
    def _with_detected_languages(self, options: list[DecodeOptions], features: torch.Tensor) -> list[DecodeOptions]:
        """Fill in the language of windows that did not name one (multilingual models only)."""
        undecided = [index for index, option in enumerate(options) if option.language is None]
        if not self.multilingual or not undecided:
            return options
        token_ids = self._model.detect_language(input_features=features[undecided]).reshape(-1).tolist()
        detected = dict(zip(undecided, token_ids))
        return [
            dataclasses.replace(option, language=self.vocabulary.language_of(detected[index])) if index in detected else option
            for index, option in enumerate(options)
        ]

    @torch.inference_mode()
    def _generate(self, features: torch.Tensor, options: DecodeOptions) -> list[tuple[list[int], bool]]:
        """Each row's token ids, and whether it was stopped as a loop (its padding after the loop removed)."""
        # One generate call per window, like vLLM: the transcriber, not Transformers, re-decodes unfinished tails.
        kwargs = {"return_timestamps": True, "force_unique_generate_call": True}
        if self.multilingual:
            kwargs.update(language=options.language, task=options.task)
        if options.temperature > 0:
            kwargs.update(do_sample=True, temperature=options.temperature)
        loops = RepetitionStop(self.vocabulary.end_of_text)
        if self._benchmark is None:
            kwargs.update(max_new_tokens=MAX_NEW_TOKENS, stopping_criteria=StoppingCriteriaList([loops]))
        else:
            tokens = self._benchmark.tokens_per_window
            kwargs.update(min_new_tokens=tokens, max_new_tokens=tokens)
        if options.prompt:
            kwargs["prompt_ids"] = torch.tensor(self.vocabulary.tokenizer.get_prompt_ids(options.prompt), device=self._device)
        sequences = self._model.generate(features, **kwargs)
        rows = [row.tolist() for row in sequences]
        return [(_without_padding(ids, loops.pad_id) if row in loops.stopped else ids, row in loops.stopped)
                for row, ids in enumerate(rows)]


class RepetitionStop(StoppingCriteria):
    """Stops each row whose tokens end in a loop (loop_stop.py), as vLLM's ``repetition_detection`` does, and
    remembers which rows it stopped: Transformers pads a stopped row with end-of-text, which would otherwise read
    as the model ending it."""

    def __init__(self, pad_id: int):
        #: Whisper pads with its end-of-text token; a row that ends in it has finished.
        self.pad_id = pad_id
        self.stopped: set[int] = set()

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        for row, tail in enumerate(input_ids[:, -LOOP_PATTERN_MAX_TOKENS * LOOP_PATTERN_REPEATS :].tolist()):
            if tail[-1] != self.pad_id and ends_in_loop(tail):
                self.stopped.add(row)
        return torch.tensor([row in self.stopped for row in range(input_ids.shape[0])], device=input_ids.device)


def _without_padding(ids: list[int], pad_id: int) -> list[int]:
    end = len(ids)
    while end and ids[end - 1] == pad_id:
        end -= 1
    return ids[:end]
