"""The one place where runtime errors become HTTP responses, in KServe's and in OpenAI's shape.

KServe's v2 routes answer ``{"error": "message"}``; OpenAI's audio routes answer
``{"error": {"message", "type", "param", "code"}}``. The status comes from the error's type.
Client errors are logged in one line each (KServe logs a traceback for every 4xx); an unexpected
exception is answered with a 500 here, so the server never drops a connection without saying so.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady, ServerNotReady, UnsupportedProtocol

from ..errors import (
    EngineNotReady,
    InvalidRequest,
    MissingApiKey,
    RepositoryLocked,
    RequestTimeout,
    UnknownModel,
    UploadTooLarge,
    WhisperError,
)

#: A child of KServe's logger, so its lines go where KServe's configured handlers send them.
logger = logging.getLogger("kserve.whisper_runtime")

#: Most specific first.
_STATUS_BY_ERROR: tuple[tuple[type[WhisperError], HTTPStatus], ...] = (
    (UploadTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (RequestTimeout, HTTPStatus.REQUEST_TIMEOUT),
    (UnknownModel, HTTPStatus.NOT_FOUND),
    (RepositoryLocked, HTTPStatus.FORBIDDEN),
    (MissingApiKey, HTTPStatus.UNAUTHORIZED),
    (EngineNotReady, HTTPStatus.SERVICE_UNAVAILABLE),
    (InvalidRequest, HTTPStatus.BAD_REQUEST),
)
OPENAI_PATH_MARKER = "/v1/audio/"
#: OpenAI's own codes where they differ from the status phrase.
_OPENAI_CODES = {HTTPStatus.NOT_FOUND: "model_not_found", HTTPStatus.UNAUTHORIZED: "invalid_api_key"}


def http_status(error: WhisperError) -> HTTPStatus:
    for error_type, status in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def openai_error_body(message: str, status: HTTPStatus, param: Optional[str] = None) -> dict:
    code = _OPENAI_CODES.get(status) or status.phrase.lower().replace(" ", "_")
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(path: str, error: WhisperError) -> JSONResponse:
    status = http_status(error)
    if OPENAI_PATH_MARKER in path:
        return JSONResponse(status_code=status, content=openai_error_body(error.message, status, error.param))
    return JSONResponse(status_code=status, content={"error": error.message})


async def answer_closing(path: str, error: WhisperError, send, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """Answer ``error`` (plus ``headers``) with ``Connection: close``: the rest of the body stays unread, so the
    connection is done."""
    response = error_response(path, error)
    kept = [(k, v) for k, v in response.raw_headers if k.lower() != b"connection"]
    await send({"type": "http.response.start", "status": response.status_code, "headers": [*kept, *headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": response.body})


async def _handle_whisper_error(request: Request, error: WhisperError) -> JSONResponse:
    response = error_response(request.url.path, error)
    logger.info("%s %s -> %d %s", request.method, request.url.path, response.status_code, error.message)
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(WhisperError, _handle_whisper_error)
    logging.getLogger("kserve").addFilter(OneLineClientErrors())


#: KServe's errors that mean the client asked for something wrong or too early (4xx, 503), not a server fault.
CLIENT_ERRORS = (InvalidInput, ModelNotFound, ModelNotReady, ServerNotReady, UnsupportedProtocol)


class OneLineClientErrors(logging.Filter):
    """KServe's REST handlers and gRPC interceptor log every client error with its traceback (1.7 KB per 404):
    keep one line, the error's type and message."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, CLIENT_ERRORS):
            record.msg, record.args = "client error %s: %s", (type(error).__name__, error)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class ErrorBoundaryMiddleware:
    """Answers an exception that escaped every handler with a 500 JSON body (logged with its traceback).

    Left to Starlette's outermost middleware, the exception is re-raised to uvicorn after the 500, which then
    drops the connection without ``Connection: close``: a pooled client sees a reset on its next request.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            if started:
                raise
            logger.exception("unexpected error on %s %s", scope.get("method"), scope["path"])
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            message = f"internal error ({type(error).__name__}); the server keeps serving"
            body = openai_error_body(message, status) if OPENAI_PATH_MARKER in scope["path"] else {"error": message}
            await JSONResponse(status_code=status, content=body)(scope, receive, send)
