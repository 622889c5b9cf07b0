"""Whisper's timestamp rules, for a whole batch of rows at once.

Whisper decodes with timestamp tokens only well when the sampler follows the rules OpenAI's decoder and
Transformers' ``WhisperTimeStampLogitsProcessor`` apply: no ``<|notimestamps|>``; timestamps come in pairs
(except right before the end) and never go back; the first token is a timestamp within the first second; and
when the timestamps together are likelier than any text token, a timestamp comes next. Without them a window's
last segment often closes early and the text after it is lost: on the benchmark's 12.7-minute recording,
Transformers without these rules went from 4.9% to 21.6% WER (docs/benchmarks.md). vLLM applies none of them,
so its engine feeds every window's logits through ``TimestampRules.constrain`` (torch only: no vLLM here).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional, Sequence

import torch

#: The ``SamplingParams.extra_args`` key a vLLM request sets to be decoded under the rules.
OPT_IN = "whisper_timestamp_rules"
#: Where vLLM's engine process loads the rules from (``module:class``; that module imports vLLM).
VLLM_LOGITS_PROCESSOR = "whisper_runtime.engines.vllm_timestamp_rules:WhisperTimestampRules"


@dataclasses.dataclass(frozen=True)
class TimestampRules:
    no_timestamps_id: int
    eos_id: int
    #: The first timestamp may be at most this many steps (0.02 s each) into the window.
    max_initial_timestamp_index: Optional[int] = 50

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
        )

    def track(self, tokens: list[int]) -> "GeneratedTokens":
        """Follow one row's generated tokens (prompt excluded), a list the decoder keeps appending to."""
        return GeneratedTokens(tokens, self.timestamp_begin)

    def constrain(self, logits: torch.Tensor, rows: Sequence["GeneratedTokens"]) -> torch.Tensor:
        """Mask ``logits`` (rows x vocabulary, in place) given each row's generated tokens."""
        device = logits.device
        ids = torch.arange(logits.shape[1], device=device)
        is_timestamp = ids >= self.timestamp_begin
        # One host-to-device copy for every row's limits.
        lowest_timestamp, no_timestamp, no_text, first = torch.tensor(
            [self._row_limits(row) for row in rows], device=device).unbind(dim=1)
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
        logits.masked_fill_(banned, float("-inf"))
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        timestamp_wins = logprobs[:, self.timestamp_begin :].logsumexp(dim=-1) > logprobs[:, : self.timestamp_begin].max(dim=-1).values
        logits.masked_fill_(timestamp_wins[:, None] & ~is_timestamp, float("-inf"))
        return logits

    def _row_limits(self, row: "GeneratedTokens") -> tuple[int, bool, bool, bool]:
        """(lowest allowed timestamp id, timestamps banned, text banned, first token) for one row."""
        begin, tokens = self.timestamp_begin, row.tokens
        last_was_timestamp = len(tokens) >= 1 and tokens[-1] >= begin
        penultimate_was_timestamp = len(tokens) < 2 or tokens[-2] >= begin
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
            len(tokens) == 0,
        )


class GeneratedTokens:
    """One row's generated tokens and the last timestamp among them.

    The rules need every row's last timestamp at every decoding step, on the engine's critical path. Scanning
    only the tokens appended since the previous step keeps that to a few tokens per row: 0.35 ms a step for 256
    rows on this project's CI machine, where rescanning cost 1.1 ms at 100 tokens a row and grows with the row.
    """

    __slots__ = ("tokens", "_timestamp_begin", "_scanned", "_last_timestamp")

    def __init__(self, tokens: list[int], timestamp_begin: int):
        self.tokens = tokens
        self._timestamp_begin = timestamp_begin
        self._scanned = 0
        self._last_timestamp: Optional[int] = None

    def last_timestamp(self) -> Optional[int]:
        tokens = self.tokens
        if len(tokens) < self._scanned:  # the decoder took tokens back (vLLM can, after a failed KV load)
            self._scanned, self._last_timestamp = 0, None
        for index in range(self._scanned, len(tokens)):
            if tokens[index] >= self._timestamp_begin:
                self._last_timestamp = tokens[index]
        self._scanned = len(tokens)
        return self._last_timestamp
