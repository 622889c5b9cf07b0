"""KServe's model server, hardened for one model facing untrusted clients.

- The model repository's load/unload is switched off (403 over REST, an error over gRPC): a
  single-model server has no use for it, and an anonymous unload used to disable the server for good.
- Request lines and headers must arrive within ``header_timeout`` seconds of a connection opening
  (or of a new request starting on it); uvicorn itself waits forever.
- v1 ``:predict``/``:explain`` and versioned v2 routes answer 400 saying what to use instead.
- A server in benchmark mode (random weights) marks every HTTP answer with a header (``BenchmarkNoticeMiddleware``).
"""

from __future__ import annotations

import asyncio
from typing import Optional

from fastapi import FastAPI
from kserve import ModelServer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..benchmark import NOTICE_HEADER
from ..errors import InvalidRequest, RepositoryLocked


class BenchmarkNoticeMiddleware:
    """Adds ``X-Whisper-Benchmark-Mode: <notice>`` to every HTTP response (plain ASGI: streamed answers too)."""

    def __init__(self, app, notice: str):
        self.app = app
        self._header = (NOTICE_HEADER.lower().encode(), notice.encode())

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def marked(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self._header]}
            await send(message)

        await self.app(scope, receive, marked)


class LockedRepository(ModelRepositoryExtension):
    """The repository index still answers; load and unload are refused."""

    async def load(self, model_name: str) -> None:
        raise RepositoryLocked(f"loading models is switched off on this single-model server (asked for {model_name!r})")

    async def unload(self, model_name: str) -> None:
        raise RepositoryLocked(f"unloading models is switched off on this single-model server (asked for {model_name!r})")


def header_timeout_protocol(seconds: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, closing connections whose request line and headers are not complete in time."""

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_deadline: Optional[asyncio.TimerHandle] = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self.cycle is None or self.cycle.response_complete:  # bytes of a new request
                self._arm()
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._header_deadline is None:
                self._header_deadline = self.loop.call_later(seconds, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            self.transport.close()

    return HeaderTimeoutProtocol


class WhisperModelServer(ModelServer):
    def __init__(self, *, header_timeout: float, **kwargs):
        super().__init__(**kwargs)
        self.header_timeout = header_timeout
        self.model_repository_extension = LockedRepository(model_registry=self.registered_models)

    def setup_event_loop(self) -> None:
        """``start()`` calls this after building the REST server and before it serves: set uvicorn's protocol here."""
        if self._rest_server is not None:
            self._rest_server.config.http = header_timeout_protocol(self.header_timeout)
        super().setup_event_loop()


def install_refusals(app: FastAPI) -> None:
    """Routes KServe would answer with a 500 or 501 for this model; installed before KServe's own, so they win."""

    async def v1_protocol(model_name: str) -> None:
        raise InvalidRequest(f"the v1 protocol is not served; POST /v2/models/{model_name}/infer or /v1/audio/transcriptions")

    async def model_version(model_name: str, model_version: str) -> None:
        raise InvalidRequest(f"model versions are not supported (asked for {model_version!r}); POST /v2/models/{model_name}/infer")

    app.add_api_route("/v1/models/{model_name}:predict", v1_protocol, methods=["POST"])
    app.add_api_route("/v1/models/{model_name}:explain", v1_protocol, methods=["POST"])
    app.add_api_route("/v2/models/{model_name}/versions/{model_version}/infer", model_version, methods=["POST"])
