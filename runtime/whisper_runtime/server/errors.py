"""The one place where runtime errors become HTTP responses, in KServe's and in OpenAI's shape.

KServe's v2 routes answer ``{"error": "message"}``; OpenAI's audio routes answer
``{"error": {"message", "type", "param", "code"}}``. The status comes from the error's type.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..errors import EngineNotReady, InvalidRequest, UnknownModel, UploadTooLarge, WhisperError

#: Most specific first.
_STATUS_BY_ERROR: tuple[tuple[type[WhisperError], HTTPStatus], ...] = (
    (UploadTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (UnknownModel, HTTPStatus.NOT_FOUND),
    (EngineNotReady, HTTPStatus.SERVICE_UNAVAILABLE),
    (InvalidRequest, HTTPStatus.BAD_REQUEST),
)
OPENAI_PATH_MARKER = "/v1/audio/"


def http_status(error: WhisperError) -> HTTPStatus:
    for error_type, status in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def openai_error_body(message: str, status: HTTPStatus, param: Optional[str] = None) -> dict:
    code = "model_not_found" if status == HTTPStatus.NOT_FOUND else status.phrase.lower().replace(" ", "_")
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(path: str, error: WhisperError) -> JSONResponse:
    status = http_status(error)
    if OPENAI_PATH_MARKER in path:
        return JSONResponse(status_code=status, content=openai_error_body(error.message, status, error.param))
    return JSONResponse(status_code=status, content={"error": error.message})


async def _handle_whisper_error(request: Request, error: WhisperError) -> JSONResponse:
    return error_response(request.url.path, error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(WhisperError, _handle_whisper_error)
