"""The service the protocol adapters call: audio in, stitched transcript out.

Audio is decoded, cut into windows at quiet points, silent windows are dropped (no hallucinated
text from silence), all remaining windows go to the engine together, and the per-window results are
stitched back with recording-time timestamps. Whisper sometimes stops before the end of a window
(it judges the last sentence unfinished), or closes its last segment with a timestamp far past the text
it wrote; the rest of such windows is decoded again, all together in one second batch (never a third:
each window resumes at most once), as OpenAI's own sequential decoding does by seeking.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from typing import Optional

import numpy as np

from . import metrics
from .audio import AudioLimits, decode_audio, validate_pcm
from .contract import SAMPLE_RATE, TASKS
from .engines.base import DecodeOptions, SpeechEngine, WindowRequest, WindowResult
from .errors import EngineNotReady, InvalidRequest
from .memory import release_free_memory
from .windowing import Resumption, Segment, Window, cut_windows, is_silent, resumption, stitch_segments, stitch_text


#: Sampling divides the logits by the temperature: below this they overflow to inf and NaN.
MIN_TEMPERATURE = 0.01


@dataclasses.dataclass(frozen=True)
class Transcript:
    text: str
    language: Optional[str]
    duration: float
    segments: tuple[Segment, ...]
    num_tokens: int


@dataclasses.dataclass(frozen=True)
class RequestDefaults:
    language: Optional[str] = None
    task: str = "transcribe"


class Transcriber:
    def __init__(self, engine: SpeechEngine, limits: AudioLimits, defaults: RequestDefaults = RequestDefaults()):
        self.engine = engine
        self.limits = limits
        self.defaults = defaults
        self._running = 0

    def options(
        self,
        *,
        language: Optional[str] = None,
        task: Optional[str] = None,
        temperature: float = 0.0,
        prompt: Optional[str] = None,
    ) -> DecodeOptions:
        """Request parameters (server defaults filled in) checked against the model."""
        task = task or self.defaults.task
        if task not in TASKS:
            raise InvalidRequest(f"task must be one of {', '.join(TASKS)}, got {task!r}", param="task")
        if not (temperature == 0.0 or MIN_TEMPERATURE <= temperature <= 1.0):
            raise InvalidRequest(
                f"temperature must be 0 (greedy) or between {MIN_TEMPERATURE} and 1, got {temperature}", param="temperature"
            )
        if prompt:
            self.engine.vocabulary.check_prompt(prompt)
        requested = DecodeOptions(
            language=language or self.defaults.language,
            task=task,
            temperature=temperature,
            prompt=prompt or None,
        )
        return self.engine.vocabulary.resolve(requested)

    async def transcribe_file(self, data: bytes, options: DecodeOptions) -> Transcript:
        async with self._in_flight():
            audio = await asyncio.to_thread(decode_audio, data, self.limits)
            return await self.transcribe_pcm(audio, options)

    async def transcribe_pcm(self, samples: np.ndarray, options: DecodeOptions) -> Transcript:
        async with self._in_flight():
            return await self._transcribe_pcm(samples, options)

    @contextlib.asynccontextmanager
    async def _in_flight(self):
        """Counts transcriptions; when the last one ends, freed memory goes back to the system (docs/runtime.md)."""
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            if self._running == 0:
                await asyncio.to_thread(release_free_memory)

    async def _transcribe_pcm(self, samples: np.ndarray, options: DecodeOptions) -> Transcript:
        if not self.engine.healthy():
            raise EngineNotReady("the speech engine is not running")
        audio = validate_pcm(samples, self.limits)
        started = time.perf_counter()
        windows = [window for window in cut_windows(audio) if not is_silent(window.samples)]
        results = await self._decode(windows, options)
        resumptions = {
            index: resumed
            for index, (window, result) in enumerate(zip(windows, results))
            if (resumed := resumption(window, result.segments)) is not None
        }
        rests = [resumed.rest for resumed in resumptions.values()]
        rest_results = dict(zip(resumptions, await self._decode(rests, options)))
        windows, results = _with_rests(windows, results, resumptions, rest_results)
        duration = len(audio) / SAMPLE_RATE
        metrics.observe_transcription(duration, time.perf_counter() - started)
        return Transcript(
            text=stitch_text([result.text for result in results]),
            language=_most_common_language(results) or options.language,
            duration=round(duration, 3),
            segments=tuple(stitch_segments(windows, [result.segments for result in results])),
            num_tokens=sum(result.num_tokens for result in results),
        )


    async def _decode(self, windows: list[Window], options: DecodeOptions) -> list[WindowResult]:
        if not windows:
            return []
        return await self.engine.transcribe([WindowRequest(window.samples, options) for window in windows])


def _with_rests(
    windows: list[Window],
    results: list[WindowResult],
    resumptions: dict[int, Resumption],
    rest_results: dict[int, WindowResult],
) -> tuple[list[Window], list[WindowResult]]:
    """Cut each resumed window's result to its kept segments and put the rest's result right after it."""
    merged_windows, merged_results = [], []
    for index, (window, result) in enumerate(zip(windows, results)):
        resumed = resumptions.get(index)
        merged_windows.append(window)
        merged_results.append(result if resumed is None else _keeping(result, resumed.kept))
        if resumed is not None:
            merged_windows.append(resumed.rest)
            merged_results.append(rest_results[index])
    return merged_windows, merged_results


def _keeping(result: WindowResult, kept: tuple[Segment, ...]) -> WindowResult:
    """The result with only the segments that stand (and their text)."""
    if kept == result.segments:
        return result
    return dataclasses.replace(result, text=stitch_text([segment.text for segment in kept]), segments=kept)


def _most_common_language(results: list[WindowResult]) -> Optional[str]:
    counts = collections.Counter(result.language for result in results if result.language)
    return counts.most_common(1)[0][0] if counts else None
