"""Whisper's timestamp rules as a vLLM (v1) batch logits processor; imported only where vLLM runs.

vLLM builds one instance per engine process and tells it which requests join, leave or move in the running
batch. Only requests that ask for it (``SamplingParams.extra_args``) are constrained; a request that also names
the task token to force after its detected language (``DETECT_LANGUAGE_THEN``) first chooses its language.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

from .timestamp_rules import DETECT_LANGUAGE_THEN, OPT_IN, GeneratedTokens, TimestampRules, to_device


class WhisperTimestampRules(LogitsProcessor):
    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool):
        self._rules = TimestampRules.from_model_dir(Path(vllm_config.model_config.model))
        #: Batch row -> that request's generated tokens (vLLM's own list, which it keeps up to date).
        self._generated: dict[int, GeneratedTokens] = {}

    def is_argmax_invariant(self) -> bool:
        return False

    def update_state(self, batch_update: Optional[BatchUpdate]) -> None:
        process_dict_updates(self._generated, batch_update, self._track_if_opted_in)

    def _track_if_opted_in(self, params: SamplingParams, _prompt: Optional[list[int]], generated: list[int]):
        extra = params.extra_args or {}
        return self._rules.track(generated, extra.get(DETECT_LANGUAGE_THEN)) if extra.get(OPT_IN) else None

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self._generated:
            return logits
        rows = sorted(self._generated)
        generated = [self._generated[row] for row in rows]
        if len(rows) == logits.shape[0]:  # every row follows the rules (the usual case): no gather and scatter
            return self._rules.constrain(logits, generated)
        index = to_device(rows, logits.device)
        logits[index] = self._rules.constrain(logits[index], generated)
        return logits
