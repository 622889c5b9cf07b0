"""Whisper's timestamp rules, for a whole batch of rows at once.

Whisper decodes with timestamp tokens only well when the sampler follows the rules OpenAI's decoder and
Transformers' ``WhisperTimeStampLogitsProcessor`` apply: no ``<|notimestamps|>``; timestamps come in pairs
(except right before the end) and never go back; the first token is a timestamp within the first second; and
when the timestamps together are likelier than any text token, a timestamp comes next. Without them a window's
last segment often closes early and the text after it is lost: on the benchmark's 12.7-minute recording,
Transformers without these rules went from 4.9% to 21.6% WER (docs/benchmarks.md). vLLM applies none of them,
so its engine feeds every window's logits through ``TimestampRules.constrain`` (torch only: no vLLM here).

A window whose language is not given detects it in the same request: its decoder prompt ends at
``<|startoftranscript|>``, its first generated token is chosen among the language tokens (greedily, as Whisper's own
``detect_language`` does), the task token is forced next, and the timestamp rules apply from there on. The encoder
runs once per window, where a separate detection request would run it twice and make the transcription wait.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional, Sequence

import torch

#: The ``SamplingParams.extra_args`` key a vLLM request sets to be decoded under the rules.
OPT_IN = "whisper_timestamp_rules"
#: The ``SamplingParams.extra_args`` key of a request that detects its language: the task token id forced after it.
DETECT_LANGUAGE_THEN = "whisper_detect_language_then"
#: Where vLLM's engine process loads the rules from (``module:class``; that module imports vLLM).
VLLM_LOGITS_PROCESSOR = "whisper_runtime.engines.vllm_timestamp_rules:WhisperTimestampRules"
#: A row's forced token in ``constrain``: none (it follows the timestamp rules), or its likeliest language.
NOT_FORCED, CHOOSE_LANGUAGE = -1, -2


def to_device(values: Sequence, device: torch.device) -> torch.Tensor:
    """Host integers on ``device`` without waiting for it: a copy from pageable memory blocks the host until the GPU
    has finished all queued work (stalling the engine, which prepares the next step meanwhile); one from pinned
    memory is queued on the stream like a kernel."""
    host = torch.tensor(values, dtype=torch.int64, pin_memory=device.type == "cuda")
    return host.to(device, non_blocking=True)


@dataclasses.dataclass(frozen=True)
class TimestampRules:
    no_timestamps_id: int
    eos_id: int
    #: The first timestamp may be at most this many steps (0.02 s each) into the window.
    max_initial_timestamp_index: Optional[int] = 50
    #: The language tokens a row that detects its language chooses its first token from.
    language_ids: tuple[int, ...] = ()

    @property
    def timestamp_begin(self) -> int:
        return self.no_timestamps_id + 1

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> "TimestampRules":
        config = json.loads((Path(model_dir) / "generation_config.json").read_text())
        return cls(
            no_timestamps_id=config["no_timestamps_token_id"],
            eos_id=config["eos_token_id"],
            max_initial_timestamp_index=config.get("max_initial_timestamp_index"),
            language_ids=tuple(sorted(config.get("lang_to_id", {}).values())),
        )

    def track(self, tokens: list[int], then_task_id: Optional[int] = None) -> "GeneratedTokens":
        """Follow one row's generated tokens (prompt excluded), a list the decoder keeps appending to.

        With ``then_task_id`` the row first chooses its language, then ``then_task_id`` is forced; the timestamp
        rules apply to the tokens after those two.
        """
        return GeneratedTokens(tokens, self.timestamp_begin, then_task_id)

    def constrain(self, logits: torch.Tensor, rows: Sequence["GeneratedTokens"]) -> torch.Tensor:
        """Mask ``logits`` (rows x vocabulary, in place) given each row's generated tokens."""
        device = logits.device
        ids = torch.arange(logits.shape[1], device=device)
        is_timestamp = ids >= self.timestamp_begin
        limits = [self._row_limits(row) for row in rows]
        # One host-to-device copy for every row's limits.
        lowest_timestamp, no_timestamp, no_text, first, forced = to_device(limits, device).unbind(dim=1)
        no_timestamp, no_text, first = no_timestamp.bool(), no_text.bool(), first.bool()
        banned = (
            (ids == self.no_timestamps_id)
            | (is_timestamp & (ids < lowest_timestamp[:, None]))
            | (no_timestamp[:, None] & is_timestamp)
            | (no_text[:, None] & (ids < self.eos_id))
            | (first[:, None] & ~is_timestamp)
        )
        if self.max_initial_timestamp_index is not None:
            banned |= first[:, None] & (ids > self.timestamp_begin + self.max_initial_timestamp_index)
        following_rules = forced == NOT_FORCED
        if any(limit[-1] != NOT_FORCED for limit in limits):
            banned = torch.where(following_rules[:, None], banned, ids != self._prefix_token(logits, forced)[:, None])
        logits.masked_fill_(banned, float("-inf"))
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        timestamp_wins = logprobs[:, self.timestamp_begin :].logsumexp(dim=-1) > logprobs[:, : self.timestamp_begin].max(dim=-1).values
        logits.masked_fill_((timestamp_wins & following_rules)[:, None] & ~is_timestamp, float("-inf"))
        return logits

    def _prefix_token(self, logits: torch.Tensor, forced: torch.Tensor) -> torch.Tensor:
        """Each row's one allowed token while it is in its prefix: its likeliest language, or its forced task token."""
        languages = to_device(self.language_ids, logits.device)
        likeliest_language = languages[logits[:, languages].argmax(dim=-1)]
        return torch.where(forced == CHOOSE_LANGUAGE, likeliest_language, forced)

    def _row_limits(self, row: "GeneratedTokens") -> tuple[int, bool, bool, bool, int]:
        """(lowest allowed timestamp id, timestamps banned, text banned, first token, forced token) for one row.

        The forced token is ``NOT_FORCED`` once the row follows the timestamp rules, ``CHOOSE_LANGUAGE`` or a token
        id while it is still in its language-detection prefix.
        """
        begin, tokens = self.timestamp_begin, row.tokens
        generated = len(tokens) - row.rules_start
        if generated < 0:
            return begin, False, False, False, CHOOSE_LANGUAGE if generated == -2 else row.then_task_id
        last_was_timestamp = generated >= 1 and tokens[-1] >= begin
        penultimate_was_timestamp = generated < 2 or tokens[-2] >= begin
        last_timestamp = row.last_timestamp()
        if last_timestamp is None:
            lowest = begin
        elif last_was_timestamp and not penultimate_was_timestamp:
            lowest = last_timestamp  # the closing timestamp of a pair may repeat the opening one
        else:
            lowest = last_timestamp + 1
        return (
            lowest,
            last_was_timestamp and penultimate_was_timestamp,
            last_was_timestamp and not penultimate_was_timestamp,
            generated == 0,
            NOT_FORCED,
        )


class GeneratedTokens:
    """One row's generated tokens and the last timestamp among them.

    The rules need every row's last timestamp at every decoding step, on the engine's critical path. Scanning
    only the tokens appended since the previous step keeps that to a few tokens per row: 0.35 ms a step for 256
    rows on this project's CI machine, where rescanning cost 1.1 ms at 100 tokens a row and grows with the row.
    """

    __slots__ = ("tokens", "then_task_id", "rules_start", "_timestamp_begin", "_scanned", "_last_timestamp")

    def __init__(self, tokens: list[int], timestamp_begin: int, then_task_id: Optional[int] = None):
        self.tokens = tokens
        self.then_task_id = then_task_id
        #: Where the tokens the rules govern begin: after the detected language and the task token, if any.
        self.rules_start = 0 if then_task_id is None else 2
        self._timestamp_begin = timestamp_begin
        self._scanned = self.rules_start
        self._last_timestamp: Optional[int] = None

    def last_timestamp(self) -> Optional[int]:
        tokens = self.tokens
        if len(tokens) < self._scanned:  # the decoder took tokens back (vLLM can, after a failed KV load)
            self._scanned, self._last_timestamp = self.rules_start, None
        for index in range(self._scanned, len(tokens)):
            if tokens[index] >= self._timestamp_begin:
                self._last_timestamp = tokens[index]
        self._scanned = max(self._scanned, len(tokens))
        return self._last_timestamp
