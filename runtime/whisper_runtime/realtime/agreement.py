"""Partial text that only grows: the words two decodes of the open utterance in a row agree on.

Each re-decode of a growing utterance may revise its last words (the speaker is mid-word). OpenAI's delta events
only append, so a word is sent once two consecutive hypotheses start with the same words up to and including it
(the "local agreement" policy of streaming Whisper): it will rarely change again, and the final transcript
replaces the partial text anyway. Words are compared without case and punctuation ("round-fox" and "roundfox",
"dog." and "dog" agree); the newer hypothesis's spelling is sent.
"""

from __future__ import annotations

import re

_NOT_A_WORD_CHARACTER = re.compile(r"[^\w']+")


class LocalAgreement:
    def __init__(self) -> None:
        self._previous: list[str] = []
        self.sent: list[str] = []

    def update(self, hypothesis: str) -> str:
        """The text to append after this hypothesis ("" when nothing new is agreed)."""
        words = hypothesis.split()
        agreed = _common_prefix(self._previous, words)
        self._previous = words
        if agreed <= len(self.sent) or [_key(w) for w in words[: len(self.sent)]] != [_key(w) for w in self.sent]:
            return ""
        new = words[len(self.sent) : agreed]
        delta = " ".join(new) if not self.sent else " " + " ".join(new)
        self.sent = self.sent + new
        return delta


def _common_prefix(first: list[str], second: list[str]) -> int:
    """How many leading words the two hypotheses share."""
    for count, (a, b) in enumerate(zip(first, second)):
        if _key(a) != _key(b):
            return count
    return min(len(first), len(second))


def _key(word: str) -> str:
    return _NOT_A_WORD_CHARACTER.sub("", word.lower())
