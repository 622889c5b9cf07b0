"""Whisper's guard against repetition loops: a window whose decode looped is decoded again, hotter.

Greedy decoding sometimes falls into a loop ("thank you. thank you. thank you. ...") until the token limit,
and under batching whether it does can depend on which windows share a step (bf16 with an fp8 KV cache is not
batch-invariant). openai-whisper and faster-whisper detect such a window by the gzip compression ratio of its
text (above 2.4: a loop) and decode it again at rising temperatures, keeping the first result that passes.

Speech repeats too: telephone prompts, lists, a sentence said three times. Those texts compress as well, but their
decode ends with end-of-text at a pace people speak at; every retry then gives the same text, and on a GPU each
retry is one more decode in series that the whole recording waits for (three of them on the benchmark's
46-minute file, docs/benchmarks.md). So a compressible text counts as a loop only when the decode also ran to the
token limit or wrote more words than anyone speaks in the window's voiced time. A decode the engine stopped
as a loop while it ran (engines/loop_stop.py) is one whatever its text.
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from .engines.base import WindowResult
from .windowing import FASTEST_WORDS_PER_SECOND, voiced_seconds

#: openai-whisper's ``compression_ratio_threshold``: ordinary speech compresses 1.2-2.0x, a loop far more.
LOOP_COMPRESSION_RATIO = 2.4
#: Temperatures of the retries, in order (openai-whisper's schedule, cut short: each retry is a batch round).
RETRY_TEMPERATURES: tuple[float, ...] = (0.2, 0.4, 0.6)


def compression_ratio(text: str) -> float:
    encoded = text.encode("utf-8")
    return len(encoded) / len(zlib.compress(encoded)) if encoded else 0.0


def is_loop(result: WindowResult, window_samples: np.ndarray) -> bool:
    """True when the window's decode looped (not its speaker): the engine stopped it as a loop, or its text is
    repetitive and was either cut by the token limit or is faster than ``FASTEST_WORDS_PER_SECOND`` over the
    window's voiced seconds."""
    if result.finish_reason == "repetition":
        return True
    if compression_ratio(result.text) <= LOOP_COMPRESSION_RATIO:
        return False
    if result.finish_reason == "length":
        return True
    return len(result.text.split()) > FASTEST_WORDS_PER_SECOND * voiced_seconds(window_samples)


def retry_temperatures(requested: float) -> Sequence[float]:
    """The retries for a request decoded at ``requested`` temperature: only those hotter than it."""
    return tuple(temperature for temperature in RETRY_TEMPERATURES if temperature > requested)
