"""One live transcription session: an audio buffer, turn detection, partial and final transcripts.

Audio arrives as 16 kHz float32 chunks. With turn detection, the VAD opens an utterance where speech starts
(``prefix_padding_ms`` earlier) and commits it after ``silence_duration_ms`` of silence; without it, the client
commits the buffer itself. While an utterance is open, the server's ``PartialScheduler`` has it decoded again
every few hundred ms, and the words two decodes in a row agree on are sent as deltas. A committed utterance is
decoded once more, at once, for its final transcript; finals are sent in commit order. Every decode goes
through the shared transcriber, so the engine batches the windows of all sessions together.

Nothing here knows the wire protocol: events are plain values handed to ``emit``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from typing import Callable, Optional, Union

import numpy as np

from ..contract import SAMPLE_RATE
from ..engines.base import DecodeOptions, WindowRequest
from ..errors import InvalidRequest, WhisperError
from ..transcriber import Transcriber
from ..windowing import FRAME_SAMPLES, is_silent
from .agreement import LocalAgreement
from .vad import EnergyVad, TurnDetection

#: An open utterance shorter than this gets no partial decode (nothing worth reading yet).
MIN_PARTIAL_SECONDS = 0.5
#: Whisper's window: longer speech without a pause is committed at this length and continues as a new utterance.
MAX_UTTERANCE_SECONDS = 30.0
#: OpenAI refuses to commit less than 100 ms of audio.
MIN_COMMIT_SECONDS = 0.1


@dataclasses.dataclass(frozen=True)
class SpeechStarted:
    item_id: str
    audio_start_ms: int


@dataclasses.dataclass(frozen=True)
class SpeechStopped:
    item_id: str
    audio_end_ms: int


@dataclasses.dataclass(frozen=True)
class Committed:
    item_id: str
    previous_item_id: Optional[str]


@dataclasses.dataclass(frozen=True)
class Cleared:
    pass


@dataclasses.dataclass(frozen=True)
class TranscriptDelta:
    item_id: str
    delta: str


@dataclasses.dataclass(frozen=True)
class TranscriptCompleted:
    item_id: str
    transcript: str
    audio_seconds: float


@dataclasses.dataclass(frozen=True)
class TranscriptFailed:
    item_id: str
    message: str


Event = Union[SpeechStarted, SpeechStopped, Committed, Cleared, TranscriptDelta, TranscriptCompleted, TranscriptFailed]


@dataclasses.dataclass
class _Utterance:
    item_id: str
    start_sample: int
    agreement: LocalAgreement = dataclasses.field(default_factory=LocalAgreement)
    #: Set once its final (or failure) is sent: no delta may follow it.
    finished: bool = False
    decoded_samples: int = 0


class TranscriptionSession:
    def __init__(
        self,
        transcriber: Transcriber,
        options: DecodeOptions,
        turn_detection: Optional[TurnDetection],
        emit: Callable[[Event], None],
    ):
        self.transcriber = transcriber
        self.options = options
        self.turn_detection = turn_detection
        self._emit = emit
        self._vad = EnergyVad(turn_detection) if turn_detection else None
        self._buffer = np.zeros(0, dtype=np.float32)
        #: Stream position of the buffer's first sample, and of the next sample to arrive.
        self._buffer_start = 0
        self._position = 0
        self._open: Optional[_Utterance] = None
        self._last_item: Optional[str] = None
        self._item_numbers = itertools.count(1)
        self._last_final: Optional[asyncio.Task] = None
        self._tasks: set[asyncio.Task] = set()

    async def close(self) -> None:
        """Stop decoding for this session: finals still pending are dropped."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def finals_pending(self) -> bool:
        return bool(self._tasks)

    def configure(self, options: DecodeOptions, turn_detection: Optional[TurnDetection]) -> None:
        """New settings for what comes next; an open utterance stays open (under the new VAD, as speech)."""
        self.options = options
        if turn_detection != self.turn_detection:
            self.turn_detection = turn_detection
            self._vad = EnergyVad(turn_detection, speaking=self._open is not None) if turn_detection else None

    def append(self, samples: np.ndarray) -> None:
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float32, copy=False)])
        self._position += samples.size
        if self._vad is None:
            self._check_manual_buffer()
            if self._open is None and samples.size:
                self._open = _Utterance(self._new_item_id(), self._buffer_start)
            return
        for turn in self._vad.feed(samples):
            if turn.stopped:
                self._emit(SpeechStopped(self._open.item_id, _ms(turn.sample)))
                self._commit(min(self._position, turn.sample + self._vad.settings.silence_frames * FRAME_SAMPLES))
            else:
                padding = self.turn_detection.prefix_padding_ms * SAMPLE_RATE // 1000
                self._open_utterance(max(self._buffer_start, turn.sample - padding))
        self._split_overlong_utterance()
        self._forget_unspoken_audio()

    def commit(self) -> None:
        """The client's commit: everything buffered is one utterance."""
        start = self._open.start_sample if self._open else self._buffer_start
        if self._position - start < MIN_COMMIT_SECONDS * SAMPLE_RATE:
            raise InvalidRequest(
                f"the audio buffer holds {(self._position - start) / SAMPLE_RATE * 1000:.0f} ms; commit needs at least "
                f"{MIN_COMMIT_SECONDS * 1000:.0f} ms",
                param="input_audio_buffer",
            )
        if self._open is None:
            self._open = _Utterance(self._new_item_id(), start)
        if self._vad is not None:
            self._vad.reset()
        self._commit(self._position)

    def clear(self) -> None:
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = self._position
        self._open = None
        if self._vad is not None:
            self._vad.reset()
        self._emit(Cleared())

    def _open_utterance(self, start_sample: int) -> None:
        self._drop_before(start_sample)
        self._open = _Utterance(self._new_item_id(), start_sample)
        self._emit(SpeechStarted(self._open.item_id, _ms(start_sample)))

    def _commit(self, end_sample: int) -> None:
        utterance, self._open = self._open, None
        audio = self._buffer[utterance.start_sample - self._buffer_start : end_sample - self._buffer_start]
        self._drop_before(end_sample)
        self._emit(Committed(utterance.item_id, self._last_item))
        self._last_item = utterance.item_id
        task = asyncio.get_running_loop().create_task(self._final(utterance, audio.copy(), self._last_final))
        self._last_final = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _split_overlong_utterance(self) -> None:
        if self._open is None or self._position - self._open.start_sample < MAX_UTTERANCE_SECONDS * SAMPLE_RATE:
            return
        self._emit(SpeechStopped(self._open.item_id, _ms(self._position)))
        self._commit(self._position)
        self._open_utterance(self._position)

    def _forget_unspoken_audio(self) -> None:
        """Between utterances only the prefix padding (and a frame the VAD has not judged) is worth keeping."""
        if self._open is None:
            keep = self.turn_detection.prefix_padding_ms * SAMPLE_RATE // 1000 + FRAME_SAMPLES
            self._drop_before(self._position - keep)

    def _check_manual_buffer(self) -> None:
        seconds = (self._position - self._buffer_start) / SAMPLE_RATE
        if seconds > self.transcriber.limits.max_seconds:
            self.clear()
            raise InvalidRequest(
                f"the uncommitted audio reached {seconds:.0f} s (this server transcribes at most "
                f"{self.transcriber.limits.max_seconds:.0f} s at once); the buffer was cleared: commit more often",
                param="input_audio_buffer",
            )

    def _drop_before(self, sample: int) -> None:
        if sample > self._buffer_start:
            self._buffer = self._buffer[sample - self._buffer_start :]
            self._buffer_start = sample

    def _new_item_id(self) -> str:
        return f"item_{next(self._item_numbers):04d}"

    async def _final(self, utterance: _Utterance, audio: np.ndarray, previous: Optional[asyncio.Task]) -> None:
        decode = asyncio.ensure_future(self.transcriber.transcribe_pcm(audio, self.options))
        try:
            if previous is not None:
                await asyncio.wait([previous])
            transcript = await decode
        except WhisperError as error:
            utterance.finished = True
            self._emit(TranscriptFailed(utterance.item_id, error.message))
        else:
            utterance.finished = True
            text = transcript.text.strip()
            self._emit(TranscriptCompleted(utterance.item_id, text, round(audio.size / SAMPLE_RATE, 3)))
        finally:
            decode.cancel()

    def wants_partial(self) -> bool:
        """An open utterance that is long enough and has grown since its last partial decode."""
        utterance = self._open
        if utterance is None:
            return False
        size = self._position - utterance.start_sample
        return size >= MIN_PARTIAL_SECONDS * SAMPLE_RATE and size > utterance.decoded_samples

    async def decode_partial(self) -> None:
        """One engine pass over the open utterance (at most one window long): a partial needs no resumed tail,
        whose speech is still coming in anyway. Failures are not reported: the final reports its own."""
        utterance = self._open
        engine = self.transcriber.engine
        if utterance is None or not engine.healthy():
            return
        audio = self._buffer[utterance.start_sample - self._buffer_start :].copy()
        utterance.decoded_samples = audio.size
        if is_silent(audio):
            return
        try:
            # Queued like a request that arrives now (the transcriber's clock): after the finals already waiting.
            [result] = await engine.transcribe([WindowRequest(audio, self.options, (time.perf_counter(), 0.0))])
        except WhisperError:
            return
        delta = utterance.agreement.update(result.text)
        if delta and not utterance.finished:  # as OpenAI's, deltas may follow the commit, never the final
            self._emit(TranscriptDelta(utterance.item_id, delta))


def _ms(sample: int) -> int:
    return sample * 1000 // SAMPLE_RATE
