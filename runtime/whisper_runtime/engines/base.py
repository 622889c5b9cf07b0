"""The interface every engine implements; the server never knows which engine it has."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional, Protocol, Sequence

import numpy as np

from ..windowing import Segment

#: Tokens a window may generate: openai-whisper's ``sample_len`` (half the decoder's 448 positions). Thirty seconds
#: of fast speech takes about 150 with timestamps; a window that falls into a repetition loop runs to this limit, and
#: the whole recording waits for its slowest window (and that window's loop retry), so the cap halves what a loop
#: costs. A window cut at the cap mid-sentence is resumed after its last complete segment, like any unfinished one.
MAX_NEW_TOKENS = 224

if TYPE_CHECKING:
    from ..tokens import WhisperVocabulary


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
    """How to decode: the same for every window of one request.

    Windows are always decoded with timestamp tokens: the transcriber needs them to find a window's
    last complete segment and re-decode an unfinished tail.
    """

    language: Optional[str] = None
    task: str = "transcribe"
    temperature: float = 0.0
    prompt: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class WindowRequest:
    audio: np.ndarray
    options: DecodeOptions
    #: Engines that queue windows decode the lowest first: (when its request began, seconds into the recording).
    #: Requests are served in arrival order, and within one, a window's resumed rest overtakes the later windows,
    #: so the recording's text becomes final from its start (what streaming needs).
    priority: tuple[float, float] = (0.0, 0.0)


@dataclasses.dataclass(frozen=True)
class WindowResult:
    text: str
    segments: tuple[Segment, ...]
    language: Optional[str]
    #: Generated tokens up to and including end-of-text (none of a batch's padding after it).
    num_tokens: int
    #: Why the decode ended: "stop" (the model wrote end-of-text), "length" (the token limit cut it) or "repetition"
    #: (stopped as a loop, engines/loop_stop.py). vLLM's names.
    finish_reason: str = "stop"


class SpeechEngine(Protocol):
    """Decodes Whisper windows (at most 30 s each); batches concurrent calls internally."""

    name: str
    #: Whether the model knows languages other than English (and so translation and detection).
    multilingual: bool
    #: The model's special tokens: validates options and parses generated ids.
    vocabulary: "WhisperVocabulary"

    async def start(self) -> None:
        """Load weights and allocate what decoding needs."""

    async def transcribe(self, windows: Sequence[WindowRequest]) -> list[WindowResult]:
        """Decode windows, in order; windows of concurrent calls may share a batch."""

    def healthy(self) -> bool:
        """True while the engine can decode."""

    def queue_depth(self) -> int:
        """Windows accepted but not yet decoded."""

    async def stop(self) -> None:
        """Release the model and any worker."""
