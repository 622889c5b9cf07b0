"""Partial text that only grows: the words two decodes of the open utterance in a row agree on.

Each re-decode of a growing utterance may revise its last words (the speaker is mid-word). OpenAI's delta events
only append, so a word is sent once two consecutive hypotheses start with the same words up to and including it
(the "local agreement" policy of streaming Whisper): it will rarely change again, and the final transcript
replaces the partial text anyway.
"""

from __future__ import annotations


class LocalAgreement:
    def __init__(self) -> None:
        self._previous: list[str] = []
        self.sent: list[str] = []

    def update(self, hypothesis: str) -> str:
        """The text to append after this hypothesis ("" when nothing new is agreed)."""
        words = hypothesis.split()
        agreed = _common_prefix(self._previous, words)
        self._previous = words
        if len(agreed) <= len(self.sent) or agreed[: len(self.sent)] != self.sent:
            return ""
        new = agreed[len(self.sent) :]
        delta = " ".join(new) if not self.sent else " " + " ".join(new)
        self.sent = agreed
        return delta


def _common_prefix(first: list[str], second: list[str]) -> list[str]:
    prefix = []
    for a, b in zip(first, second):
        if a != b:
            break
        prefix.append(a)
    return prefix
