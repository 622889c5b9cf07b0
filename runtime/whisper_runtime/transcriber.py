"""The service the protocol adapters call: audio in, stitched transcript out.

Audio is decoded, cut into windows at quiet points, silent windows are dropped (no hallucinated
text from silence), all remaining windows go to the engine together, and the per-window results are
stitched back with recording-time timestamps. Whisper sometimes stops before the end of a window
(it judges the last sentence unfinished), or closes its last segment with a timestamp far past the text
it wrote; the rest of such a window is decoded again as soon as the window is done (never a third time: each
window resumes at most once), as OpenAI's own sequential decoding does by seeking. Stretches whose text is
final come out in recording order while later windows are still decoding (``final_windows``), for streaming.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from typing import AsyncIterator, Optional

import numpy as np

from . import metrics
from .aligner import WindowText, WordAligner
from .audio import AudioLimits, decode_audio, validate_pcm
from .benchmark import BenchmarkMode
from .contract import SAMPLE_RATE, TASKS, WINDOW_SECONDS
from .engines.base import DecodeOptions, SpeechEngine, WindowRequest, WindowResult
from .errors import EngineNotReady, InvalidRequest
from .memory import release_free_memory
from .repetition import compression_ratio, is_loop, retry_temperatures
from .windowing import Segment, Window, cut_windows, is_silent, resumption, stitch_text
from .word_timing import attach_words


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
class FinalWindow:
    """A stretch of the recording whose text will not change: a window, or the resumed rest of one."""

    window: Window
    result: WindowResult

    @property
    def segments(self) -> list[Segment]:
        """The segments in recording time."""
        return [segment.shifted(self.window.offset_seconds) for segment in self.result.segments]


@dataclasses.dataclass
class _Progress:
    """One recording's bookkeeping for the metrics: when its windows went to the engine, when the last window's own
    decode was in, and its longest chain of tokens decoded one after another (a window's tries, then its rest)."""

    started: float
    first_round_end: float
    serial_tokens: int = 0

    def add_chain(self, tokens: int) -> None:
        self.serial_tokens = max(self.serial_tokens, tokens)


@dataclasses.dataclass(frozen=True)
class RequestDefaults:
    language: Optional[str] = None
    task: str = "transcribe"


class Transcriber:
    def __init__(
        self,
        engine: SpeechEngine,
        limits: AudioLimits,
        defaults: RequestDefaults = RequestDefaults(),
        aligner: Optional[WordAligner] = None,
        benchmark: Optional[BenchmarkMode] = None,
        chunk_length_s: float = WINDOW_SECONDS,
    ):
        self.engine = engine
        #: The longest window a recording is cut into (the contract's ``chunk_length_s``).
        self.chunk_length_s = chunk_length_s
        self.limits = limits
        self.defaults = defaults
        self.aligner = aligner
        #: Benchmark mode (random weights, benchmark.py): each window is decoded once, neither resumed nor retried,
        #: so every engine does the same work whatever the random text says.
        self.benchmark = benchmark
        self._running = 0
        #: The last trim started when the server went idle (kept referenced: asyncio holds tasks weakly).
        self._trim: Optional[asyncio.Task] = None

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

    def check_words_available(self) -> None:
        if self.aligner is None:
            raise InvalidRequest("word timestamps are not enabled on this server", param="timestamp_granularities")

    async def decode(self, data: bytes) -> np.ndarray:
        """An uploaded file as 16 kHz mono PCM, within the limits."""
        async with self._in_flight():
            started = time.perf_counter()
            samples = await asyncio.to_thread(decode_audio, data, self.limits)
            metrics.observe_audio_decode(time.perf_counter() - started)
            return samples

    async def transcribe_file(self, data: bytes, options: DecodeOptions, words: bool = False) -> Transcript:
        async with self._in_flight():
            return await self.transcribe_pcm(await self.decode(data), options, words)

    async def transcribe_pcm(self, samples: np.ndarray, options: DecodeOptions, words: bool = False) -> Transcript:
        """The whole transcript; with ``words``, every segment carries its words' timestamps."""
        if words:
            self.check_words_available()
        async with self._in_flight():
            finals = [final async for final in self.final_windows(samples, options)]
            segments = await self._with_words(finals, options.task) if words else None
        return transcript_of(finals, len(samples), options, segments)

    @contextlib.asynccontextmanager
    async def _in_flight(self):
        """Counts the work in flight; when the last piece ends, freed memory goes back to the system (memory.py),
        in a worker thread after the answer, not before it."""
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            if self._running == 0:
                self._trim = asyncio.ensure_future(asyncio.to_thread(release_free_memory))

    async def final_windows(self, samples: np.ndarray, options: DecodeOptions) -> AsyncIterator[FinalWindow]:
        """Each stretch of the recording as soon as its text is final, in recording order.

        Every window is submitted at once (the engine batches them); a window that must resume submits its rest
        as soon as its own result is in, without waiting for the other windows. Checks run before the first
        result is awaited, so a caller can turn a bad request into an error before it answers anything.
        """
        if not self.engine.healthy():
            raise EngineNotReady("the speech engine is not running")
        audio = validate_pcm(samples, self.limits)
        windows = [window for window in cut_windows(audio, self.chunk_length_s) if not is_silent(window.samples)]
        started = time.perf_counter()
        progress = _Progress(started=started, first_round_end=started)
        pending = [asyncio.ensure_future(self._decode_window(window, options, progress)) for window in windows]
        try:
            async with self._in_flight():
                for task in pending:
                    for final in await task:
                        yield final
            ended = time.perf_counter()
            metrics.observe_transcription(len(audio) / SAMPLE_RATE, ended - started)
            metrics.observe_windows(progress.first_round_end - started, ended - progress.first_round_end)
            metrics.observe_serial_tokens(progress.serial_tokens)
        finally:
            for task in pending:
                task.cancel()

    async def _decode_window(self, window: Window, options: DecodeOptions, progress: _Progress) -> list[FinalWindow]:
        """A window's final stretches: the window itself, and the rest it resumed at, if any (decoded once more)."""
        result, tokens = await self._decode_without_loops(window, options, progress.started)
        progress.first_round_end = time.perf_counter()
        resumed = None if self.benchmark else resumption(window, result.segments)
        if resumed is None:
            progress.add_chain(tokens)
            return [FinalWindow(window, result)]
        metrics.observe_resumption()
        rest_result, rest_tokens = await self._decode_without_loops(resumed.rest, options, progress.started)
        progress.add_chain(tokens + rest_tokens)
        return [FinalWindow(window, _keeping(result, resumed.kept)), FinalWindow(resumed.rest, rest_result)]

    async def _decode_without_loops(
        self, window: Window, options: DecodeOptions, started: float
    ) -> tuple[WindowResult, int]:
        """One window's result, and the tokens decoded for it in series.

        A window whose decode looped (repetition.py) is decoded again at every hotter temperature at once, as
        concurrent requests the engine batches, not one after another as openai-whisper does: each serial retry
        would be one more decode the whole recording waits for. The coolest try that did not loop stands (the
        hotter ones still running are cancelled); when all looped, the least repetitive.
        """
        priority = (started, window.offset_seconds)
        first = await self._decode(window, options, priority)
        if self.benchmark or not is_loop(first, window.samples):
            return first, first.num_tokens
        retries = [
            asyncio.ensure_future(self._decode(window, dataclasses.replace(options, temperature=temperature), priority))
            for temperature in retry_temperatures(options.temperature)
        ]
        metrics.observe_loop_retries(len(retries))
        retried: list[WindowResult] = []
        clean: Optional[WindowResult] = None
        try:
            for retry in retries:
                retried.append(await retry)
                if not is_loop(retried[-1], window.samples):
                    clean = retried[-1]
                    break
        finally:
            for retry in retries:
                retry.cancel()
        stands = clean if clean is not None else min([first, *retried], key=lambda each: compression_ratio(each.text))
        return stands, first.num_tokens + max((each.num_tokens for each in retried), default=0)

    async def _decode(self, window: Window, options: DecodeOptions, priority: tuple[float, float]) -> WindowResult:
        [result] = await self.engine.transcribe([WindowRequest(window.samples, options, priority)])
        return result

    async def _with_words(self, finals: list[FinalWindow], task: str) -> list[Segment]:
        """Recording-time segments with their words, from one alignment pass over all the final stretches."""
        texts = [WindowText(final.window.samples, final.result.segments, final.result.language, task) for final in finals]
        alignments = await asyncio.to_thread(self.aligner.align, texts)
        segments: list[Segment] = []
        last_speech = 0.0
        for final, alignment in zip(finals, alignments):
            with_words, last_speech = attach_words(
                final.segments, alignment.tokens_per_segment, alignment.words, final.window.offset_seconds, last_speech
            )
            segments += with_words
        return segments


def transcript_of(
    finals: list[FinalWindow], sample_count: int, options: DecodeOptions, segments: Optional[list[Segment]] = None
) -> Transcript:
    """The whole transcript from all of a recording's final stretches (``segments``: when they carry words)."""
    results = [final.result for final in finals]
    return Transcript(
        text=stitch_text([result.text for result in results]),
        language=_most_common_language(results) or options.language,
        duration=round(sample_count / SAMPLE_RATE, 3),
        segments=tuple(segments if segments is not None else [s for final in finals for s in final.segments]),
        num_tokens=sum(result.num_tokens for result in results),
    )


def _keeping(result: WindowResult, kept: tuple[Segment, ...]) -> WindowResult:
    """The result with only the segments that stand (and their text)."""
    if kept == result.segments:
        return result
    return dataclasses.replace(result, text=stitch_text([segment.text for segment in kept]), segments=kept)


def _most_common_language(results: list[WindowResult]) -> Optional[str]:
    counts = collections.Counter(result.language for result in results if result.language)
    return counts.most_common(1)[0][0] if counts else None
