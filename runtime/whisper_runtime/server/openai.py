"""OpenAI-compatible audio API: ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``.

Mounted at ``/v1`` and at KServe's ``/openai/v1`` prefix. The multipart form is read by hand so
that every problem is answered in OpenAI's error shape (not FastAPI's 422).

``stream=true`` answers server-sent events in OpenAI's shape: a ``transcript.text.delta`` as each stretch of the
recording is final, in order, then one ``transcript.text.done``. Everything that can be refused (form, model,
audio, the engine's state) is checked before the first byte, so those errors are still plain JSON with a 4xx.
``timestamp_granularities[]=word`` (with ``verbose_json``) adds ``words``, from the runtime's alignment pass.
"""

from __future__ import annotations

import dataclasses
import json
from http import HTTPStatus
from typing import AsyncIterator, Optional

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.datastructures import FormData, UploadFile
from transformers.models.whisper.tokenization_whisper import LANGUAGES

from ..engines.base import DecodeOptions
from ..errors import InvalidRequest, UnknownModel, WhisperError
from ..transcriber import FinalWindow, Transcriber, Transcript, transcript_of
from .errors import http_status, openai_error_body
from .subtitles import to_srt, to_vtt

PREFIXES = ("/v1", "/openai/v1")
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
#: What OpenAI streams: the text only, so only the formats that are the text alone.
STREAM_FORMATS = ("json", "text")
GRANULARITIES = ("segment", "word")
#: Whisper's encoder positions per second of audio: the audio tokens of ``usage``.
AUDIO_TOKENS_PER_SECOND = 50
#: The name OpenAI clients send by default; accepted as an alias of the served model.
OPENAI_MODEL_ALIAS = "whisper-1"


@dataclasses.dataclass(frozen=True)
class AudioForm:
    """The form's fields other than the file itself, validated."""

    model: str
    language: Optional[str]
    prompt: Optional[str]
    temperature: float
    response_format: str
    granularities: tuple[str, ...]
    stream: bool

    @property
    def words(self) -> bool:
        return "word" in self.granularities

    @classmethod
    def parse(cls, form: FormData) -> "AudioForm":
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("the multipart field 'file' (the audio file) is required", param="file")
        response_format = _text(form, "response_format") or "json"
        if response_format not in RESPONSE_FORMATS:
            raise InvalidRequest(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}", "response_format")
        granularities = _granularities(form, response_format)
        stream = _flag(form, "stream")
        if stream and response_format not in STREAM_FORMATS:
            raise InvalidRequest(f"stream=true streams the text: response_format must be one of {', '.join(STREAM_FORMATS)}", "stream")
        model = _text(form, "model")
        if not model:
            raise InvalidRequest("the multipart field 'model' is required", param="model")
        return cls(
            model=model,
            language=_text(form, "language"),
            prompt=_text(form, "prompt"),
            temperature=_temperature(form),
            response_format=response_format,
            granularities=granularities,
            stream=stream,
        )


class OpenAIAudioRoutes:
    def __init__(self, transcriber: Transcriber, model_name: str):
        self.transcriber = transcriber
        self.model_names = {model_name, OPENAI_MODEL_ALIAS}

    def install(self, app: FastAPI) -> None:
        router = APIRouter(tags=["OpenAI audio"])
        router.add_api_route("/audio/transcriptions", self.transcriptions, methods=["POST"])
        router.add_api_route("/audio/translations", self.translations, methods=["POST"])
        for prefix in PREFIXES:
            app.include_router(router, prefix=prefix)

    async def transcriptions(self, request: Request) -> Response:
        return await self._answer(request, task="transcribe")

    async def translations(self, request: Request) -> Response:
        return await self._answer(request, task="translate")

    async def _answer(self, request: Request, task: str) -> Response:
        form = await _read_form(request)
        fields = AudioForm.parse(form)
        if fields.model not in self.model_names:
            raise UnknownModel(f"model {fields.model!r} is not served here; use one of {sorted(self.model_names)}", "model")
        options = self.transcriber.options(
            language=fields.language if task == "transcribe" else None,
            task=task,
            temperature=fields.temperature,
            prompt=fields.prompt,
        )
        if fields.words:
            self.transcriber.check_words_available()
        audio = await form["file"].read()
        if fields.stream:
            return await self._stream(audio, options)
        transcript = await self.transcriber.transcribe_file(audio, options, words=fields.words)
        return render(transcript, fields.response_format, task, fields.granularities)

    async def _stream(self, audio: bytes, options: DecodeOptions) -> StreamingResponse:
        """Server-sent events; the first stretch is awaited here, so a request that fails early gets a JSON error."""
        samples = await self.transcriber.decode(audio)
        finals = self.transcriber.final_windows(samples, options)
        first = await anext(finals, None)
        events = stream_events(first, finals, len(samples), options)
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def stream_events(
    first: Optional[FinalWindow], rest: AsyncIterator[FinalWindow], sample_count: int, options: DecodeOptions
) -> AsyncIterator[str]:
    """``transcript.text.delta`` per final stretch with text, then ``transcript.text.done``; an error after the
    first byte becomes an ``error`` event (the openai client raises it)."""
    finals: list[FinalWindow] = []
    try:
        async for final in _prepended(first, rest):
            text = final.result.text.strip()
            if text:  # joined with a space, as the whole text is: the deltas add up to it exactly
                spoken = any(each.result.text.strip() for each in finals)
                yield _event({"type": "transcript.text.delta", "delta": (" " if spoken else "") + text})
            finals.append(final)
    except Exception as error:  # past the first byte, an error event is the only way left to tell the client
        yield _event({"type": "error", "error": _error_body(error)})
        return
    finally:
        await rest.aclose()
    transcript = transcript_of(finals, sample_count, options)
    yield _event({"type": "transcript.text.done", "text": transcript.text, "usage": token_usage(transcript)})


async def _prepended(first: Optional[FinalWindow], rest: AsyncIterator[FinalWindow]) -> AsyncIterator[FinalWindow]:
    if first is not None:
        yield first
        async for final in rest:
            yield final


def _error_body(error: Exception) -> dict:
    if isinstance(error, WhisperError):
        return openai_error_body(error.message, http_status(error), error.param)["error"]
    return openai_error_body(f"transcription failed: {error}", HTTPStatus.INTERNAL_SERVER_ERROR)["error"]


def token_usage(transcript: Transcript) -> dict:
    """OpenAI's token usage: the audio as encoder positions in, the generated tokens out."""
    audio_tokens = round(transcript.duration * AUDIO_TOKENS_PER_SECOND)
    return {
        "type": "tokens",
        "input_tokens": audio_tokens,
        "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0},
        "output_tokens": transcript.num_tokens,
        "total_tokens": audio_tokens + transcript.num_tokens,
    }


def _event(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def render(transcript: Transcript, response_format: str, task: str, granularities: tuple[str, ...] = ()) -> Response:
    usage = {"type": "duration", "seconds": max(1, round(transcript.duration))}
    if response_format == "text":
        return PlainTextResponse(transcript.text)
    if response_format == "srt":
        return PlainTextResponse(to_srt(transcript.segments))
    if response_format == "vtt":
        return PlainTextResponse(to_vtt(transcript.segments), media_type="text/vtt")
    if response_format == "verbose_json":
        return JSONResponse(verbose_json(transcript, task, granularities) | {"usage": usage})
    return JSONResponse({"text": transcript.text, "usage": usage})


def verbose_json(transcript: Transcript, task: str, granularities: tuple[str, ...] = ()) -> dict:
    """OpenAI's verbose body: segments unless only words were asked for, words when they were."""
    body = {
        "task": task,
        "language": LANGUAGES.get(transcript.language or "", transcript.language or ""),
        "duration": transcript.duration,
        "text": transcript.text,
    }
    if "segment" in granularities or not granularities:
        body["segments"] = [
            {"id": index, "seek": int(segment.start * 100), "start": segment.start, "end": segment.end, "text": segment.text}
            for index, segment in enumerate(transcript.segments)
        ]
    if "word" in granularities:
        body["words"] = [
            {"word": word.word.strip(), "start": word.start, "end": word.end}
            for segment in transcript.segments
            for word in segment.words
        ]
    return body


async def _read_form(request: Request) -> FormData:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("send the audio as multipart/form-data with a 'file' field", param="file")
    try:
        return await request.form()
    except Exception as error:  # Starlette raises several types for a broken multipart body
        raise InvalidRequest(f"the multipart body could not be parsed: {error}", param="file") from error


def _text(form: FormData, name: str) -> Optional[str]:
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise InvalidRequest(f"field {name!r} must be text, not a file", param=name)
    return value.strip() or None if value is not None else None


def _granularities(form: FormData, response_format: str) -> tuple[str, ...]:
    values = tuple(form.getlist("timestamp_granularities[]") + form.getlist("timestamp_granularities"))
    unknown = [value for value in values if value not in GRANULARITIES]
    if unknown:
        raise InvalidRequest(f"timestamp_granularities must be among {', '.join(GRANULARITIES)}, got {unknown[0]!r}", "timestamp_granularities")
    if values and response_format != "verbose_json":
        raise InvalidRequest("timestamp_granularities needs response_format=verbose_json", "timestamp_granularities")
    return values


def _flag(form: FormData, name: str) -> bool:
    value = (_text(form, name) or "false").lower()
    if value not in ("true", "false"):
        raise InvalidRequest(f"{name} must be true or false, got {value!r}", param=name)
    return value == "true"


def _temperature(form: FormData) -> float:
    value = _text(form, "temperature")
    try:
        return float(value) if value is not None else 0.0
    except ValueError as error:
        raise InvalidRequest(f"temperature must be a number, got {value!r}", param="temperature") from error
