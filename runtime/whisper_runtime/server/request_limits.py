"""Bound what one HTTP request may cost before the audio is even decoded: its size and its pace.

The upload limit is checked from ``Content-Length`` before a byte is read, and again on the bytes
actually received, whatever the framing (a chunked body has no ``Content-Length``). A body that
stalls longer than ``body_idle_timeout`` between chunks, or takes longer than ``body_timeout`` in
all, is refused with 408. Either refusal ends the connection with ``Connection: close``: the rest of
the body is never read. (Slow headers are bounded by ``http_server.header_timeout_protocol``.)
"""

from __future__ import annotations

import asyncio
import dataclasses

from ..audio import AudioLimits, check_upload_size
from ..errors import InvalidRequest, RequestTimeout, UploadTooLarge, WhisperError
from .errors import error_response

#: Room for the multipart envelope or the v2 JSON header around the audio itself.
ENVELOPE_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class BodyTimeouts:
    idle_seconds: float
    total_seconds: float


class RequestLimitsMiddleware:
    def __init__(self, app, limits: AudioLimits, timeouts: BodyTimeouts):
        self.app = app
        self.limits = limits
        self.timeouts = timeouts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await error_response(scope["path"], refusal)(scope, receive, _closing(send, lambda: True))
            return
        body = _BoundedBody(receive, self.limits, self.timeouts)
        await self.app(scope, body.receive, _closing(send, lambda: body.refused is not None))

    def _refusal(self, scope) -> InvalidRequest | None:
        length = dict(scope["headers"]).get(b"content-length")
        if length is None:
            return None
        try:
            check_upload_size(max(0, int(length) - ENVELOPE_BYTES), self.limits)
        except UploadTooLarge as error:
            return error
        except ValueError:
            return InvalidRequest("the Content-Length header is not a number")
        return None


class _BoundedBody:
    """Wraps ASGI ``receive``: counts the body's bytes and times its chunks."""

    def __init__(self, receive, limits: AudioLimits, timeouts: BodyTimeouts):
        self._receive = receive
        self._limits = limits
        self._timeouts = timeouts
        self._received = 0
        self._deadline = asyncio.get_running_loop().time() + timeouts.total_seconds
        self.refused: WhisperError | None = None

    async def receive(self):
        loop = asyncio.get_running_loop()
        wait = min(self._timeouts.idle_seconds, self._deadline - loop.time())
        try:
            message = await asyncio.wait_for(self._receive(), timeout=max(wait, 0.001))
        except asyncio.TimeoutError:
            self.refused = RequestTimeout(
                f"the request body stalled after {self._received} bytes (idle limit {self._timeouts.idle_seconds:g} s, "
                f"whole-body limit {self._timeouts.total_seconds:g} s)"
            )
            raise self.refused from None
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            try:
                check_upload_size(max(0, self._received - ENVELOPE_BYTES), self._limits)
            except UploadTooLarge as error:
                self.refused = error
                raise
        return message


def _closing(send, when):
    """``send`` that adds ``Connection: close`` to the response if ``when()``: the rest of the body stays unread."""

    async def wrapped(message):
        if message["type"] == "http.response.start" and when():
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await send(message)

    return wrapped
