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
from .errors import answer_closing

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
            await answer_closing(scope["path"], refusal, send)
            return
        body = _BoundedBody(receive, self.limits, self.timeouts)
        answered = False

        async def send_unless_refused(message):
            # Whatever the route made of the exception ``receive`` raised (FastAPI's body parsing turns it into
            # "error parsing the body"), the client hears the limit it broke.
            nonlocal answered
            if body.refused is None:
                await send(message)
            elif not answered and message["type"] == "http.response.start":
                answered = True
                await answer_closing(scope["path"], body.refused, send)

        try:
            await self.app(scope, body.receive, send_unless_refused)
        except Exception:
            if body.refused is None or answered:
                raise
            await answer_closing(scope["path"], body.refused, send)

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
        self._complete = False
        self._deadline = asyncio.get_running_loop().time() + timeouts.total_seconds
        self.refused: WhisperError | None = None

    async def receive(self):
        if self._complete:  # after the body, receive() only waits for a disconnect: that may take as long as it takes
            return await self._receive()
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
            self._complete = not message.get("more_body", False)
            self._received += len(message.get("body", b""))
            try:
                check_upload_size(max(0, self._received - ENVELOPE_BYTES), self._limits)
            except UploadTooLarge as error:
                self.refused = error
                raise
        return message
