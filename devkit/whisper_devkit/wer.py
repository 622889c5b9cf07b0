"""Word error rate the way Whisper's authors score it: normalize both texts, then count word edits.

English uses Whisper's ``EnglishTextNormalizer`` (as Transformers ships it: lower case, no punctuation, numbers
as digits, "mr" for "mister", ...) without the British-to-American spelling table, which only the hub carries.
Other languages use Whisper's ``BasicTextNormalizer`` (lower case, no punctuation or symbols).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import jiwer
from transformers.models.whisper.english_normalizer import BasicTextNormalizer, EnglishTextNormalizer


@lru_cache(maxsize=None)
def _normalizer(language: str) -> Callable[[str], str]:
    return EnglishTextNormalizer({}) if language == "en" else BasicTextNormalizer()


def normalize(text: str, language: str = "en") -> str:
    return " ".join(_normalizer(language)(text).split())


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str], language: str = "en") -> float:
    """Corpus WER as a fraction: word edits summed over all pairs / reference words.

    Pairs whose reference normalizes to nothing are skipped: they have no words to get wrong.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    pairs = [(normalize(ref, language), normalize(hyp, language)) for ref, hyp in zip(references, hypotheses)]
    pairs = [(ref, hyp) for ref, hyp in pairs if ref]
    if not pairs:
        raise ValueError("no reference has any words")
    return jiwer.wer([ref for ref, _ in pairs], [hyp for _, hyp in pairs])
