"""Stop a window's decode as soon as it is caught in a loop, instead of at the token limit.

A looping window ("9, 9, 9, ...") otherwise decodes to the 224-token cap, the slowest row of its batch, and its
retry starts only after that: on a GPU the whole recording waits for both (on the benchmark's 46-minute file, base
on CPU: 226 + 226 tokens in series where no other window took more than 119). Exact repetition of a short pattern
at the end of the generated tokens marks the loop early; vLLM (``SamplingParams.repetition_detection``) and the
Transformers engine (``RepetitionStop``) stop the row with the same test, and the transcriber retries it hotter
(repetition.py). Loops of whole sentences carry new timestamps each time and are not exact: the token limit and the
compression test still catch those.
"""

from __future__ import annotations

from typing import Sequence

#: The longest pattern (in tokens) whose repetition stops a decode: a few words ("Thank you.", ", 9" or " 10").
LOOP_PATTERN_MAX_TOKENS = 16
#: How many times in a row the pattern must repeat. People rarely say the same words eight times running; when they
#: do, the retry gives the same, and the rest of the window is decoded again after it (windowing.resumption).
LOOP_PATTERN_REPEATS = 8


def ends_in_loop(token_ids: Sequence[int]) -> bool:
    """True when the last tokens are one pattern of 1 to ``LOOP_PATTERN_MAX_TOKENS`` tokens repeated
    ``LOOP_PATTERN_REPEATS`` times (vLLM's ``check_sequence_repetition`` with ``vllm_repetition_detection()``)."""
    ids = list(token_ids[-LOOP_PATTERN_MAX_TOKENS * LOOP_PATTERN_REPEATS :])
    for size in range(1, LOOP_PATTERN_MAX_TOKENS + 1):
        span = size * LOOP_PATTERN_REPEATS
        if span > len(ids):
            return False
        tail = ids[-span:]
        if tail[size:] == tail[:-size]:  # periodic with period ``size``
            return True
    return False


def vllm_repetition_detection() -> dict[str, int]:
    """``RepetitionDetectionParams`` keyword arguments for the same test in vLLM's scheduler."""
    return {"max_pattern_size": LOOP_PATTERN_MAX_TOKENS, "min_pattern_size": 1, "min_count": LOOP_PATTERN_REPEATS}
