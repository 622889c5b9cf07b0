"""Whisper's guard against repetition loops: a window whose text compresses too well is decoded again, hotter.

Greedy decoding sometimes falls into a loop ("thank you. thank you. thank you. ...") until the token limit,
and under batching whether it does can depend on which windows share a step (bf16 with an fp8 KV cache is not
batch-invariant). openai-whisper and faster-whisper detect such a window by the gzip compression ratio of its
text (above 2.4: a loop) and decode it again at rising temperatures, keeping the first result that passes.
"""

from __future__ import annotations

import zlib
from typing import Sequence

#: openai-whisper's ``compression_ratio_threshold``: ordinary speech compresses 1.2-2.0x, a loop far more.
LOOP_COMPRESSION_RATIO = 2.4
#: Temperatures of the retries, in order (openai-whisper's schedule, cut short: each retry is a batch round).
RETRY_TEMPERATURES: tuple[float, ...] = (0.2, 0.4, 0.6)


def compression_ratio(text: str) -> float:
    encoded = text.encode("utf-8")
    return len(encoded) / len(zlib.compress(encoded)) if encoded else 0.0


def is_loop(text: str) -> bool:
    return compression_ratio(text) > LOOP_COMPRESSION_RATIO


def retry_temperatures(requested: float) -> Sequence[float]:
    """The retries for a request decoded at ``requested`` temperature: only those hotter than it."""
    return tuple(temperature for temperature in RETRY_TEMPERATURES if temperature > requested)
