"""Refuse oversized uploads from their Content-Length, before a byte of the body is read."""

from __future__ import annotations

from ..audio import AudioLimits, check_upload_size
from ..errors import InvalidRequest, UploadTooLarge
from .errors import error_response

#: Room for the multipart envelope or the v2 JSON header around the audio itself.
ENVELOPE_BYTES = 64 * 1024


class UploadLimitMiddleware:
    def __init__(self, app, limits: AudioLimits):
        self.app = app
        self.limits = limits

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await error_response(scope["path"], refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)

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
