"""OpenAI-compatible audio API: ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``.

Mounted at ``/v1`` and at KServe's ``/openai/v1`` prefix. The multipart form is read by hand so
that every problem is answered in OpenAI's error shape (not FastAPI's 422).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.datastructures import FormData, UploadFile
from transformers.models.whisper.tokenization_whisper import LANGUAGES

from ..errors import InvalidRequest, UnknownModel, WhisperError
from ..transcriber import Transcriber, Transcript
from .subtitles import to_srt, to_vtt

PREFIXES = ("/v1", "/openai/v1")
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
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

    @classmethod
    def parse(cls, form: FormData) -> "AudioForm":
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("the multipart field 'file' (the audio file) is required", param="file")
        response_format = _text(form, "response_format") or "json"
        if response_format not in RESPONSE_FORMATS:
            raise InvalidRequest(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}", "response_format")
        granularities = tuple(form.getlist("timestamp_granularities[]") + form.getlist("timestamp_granularities"))
        if "word" in granularities:
            raise InvalidRequest("word timestamps are not supported; use timestamp_granularities[]=segment", "timestamp_granularities")
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
        audio = await form["file"].read()
        transcript = await self.transcriber.transcribe_file(audio, options)
        return render(transcript, fields.response_format, task)


def render(transcript: Transcript, response_format: str, task: str) -> Response:
    usage = {"type": "duration", "seconds": max(1, round(transcript.duration))}
    if response_format == "text":
        return PlainTextResponse(transcript.text)
    if response_format == "srt":
        return PlainTextResponse(to_srt(transcript.segments))
    if response_format == "vtt":
        return PlainTextResponse(to_vtt(transcript.segments), media_type="text/vtt")
    if response_format == "verbose_json":
        return JSONResponse(verbose_json(transcript, task) | {"usage": usage})
    return JSONResponse({"text": transcript.text, "usage": usage})


def verbose_json(transcript: Transcript, task: str) -> dict:
    segments = [
        {"id": index, "seek": int(segment.start * 100), "start": segment.start, "end": segment.end, "text": segment.text}
        for index, segment in enumerate(transcript.segments)
    ]
    return {
        "task": task,
        "language": LANGUAGES.get(transcript.language or "", transcript.language or ""),
        "duration": transcript.duration,
        "text": transcript.text,
        "segments": segments,
    }


async def _read_form(request: Request) -> FormData:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("send the audio as multipart/form-data with a 'file' field", param="file")
    try:
        return await request.form()
    except WhisperError:  # the body broke a request limit while it was read (413, 408)
        raise
    except Exception as error:  # Starlette raises several types for a broken multipart body
        raise InvalidRequest(f"the multipart body could not be parsed: {error}", param="file") from error


def _text(form: FormData, name: str) -> Optional[str]:
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise InvalidRequest(f"field {name!r} must be text, not a file", param=name)
    return value.strip() or None if value is not None else None


def _temperature(form: FormData) -> float:
    value = _text(form, "temperature")
    try:
        return float(value) if value is not None else 0.0
    except ValueError as error:
        raise InvalidRequest(f"temperature must be a number, got {value!r}", param="temperature") from error
