"""KServe's model server, hardened for one model facing untrusted clients.

- The model repository's load/unload is switched off (403 over REST, an error over gRPC): a
  single-model server has no use for it, and an anonymous unload used to disable the server for good.
- Request lines and headers must arrive within ``header_timeout`` seconds of a connection opening
  (or of a new request starting on it); uvicorn itself waits forever.
- v1 ``:predict``/``:explain`` and versioned v2 routes answer 400 saying what to use instead.
- The gRPC server takes interceptors of ours (the API key) ahead of KServe's own.
- A server in benchmark mode (random weights) marks every HTTP answer with a header (``BenchmarkNoticeMiddleware``).
"""

from __future__ import annotations

import asyncio
from concurrent import futures
from typing import List, Optional

from fastapi import FastAPI
from grpc import aio
from kserve import Model, ModelServer, model_server
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
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


class InterceptedGRPCServer(GRPCServer):
    """KServe's gRPC server with our interceptors ahead of KServe's two (KServe builds that tuple inside ``start``)."""

    def __init__(self, *args, interceptors: tuple[aio.ServerInterceptor, ...], **kwargs):
        super().__init__(*args, **kwargs)
        self._interceptors = (*interceptors, LoggingInterceptor(), ExceptionToStatusInterceptor())

    async def start(self, max_workers: int) -> None:
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=self._interceptors,
            options=[(f"grpc.{name}", self._kwargs.get(f"grpc_{name}")) for name in ("max_send_message_length", "max_receive_message_length")],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(self._data_plane, self._model_repository_extension), self._server
        )
        self._server.add_insecure_port(f"[::]:{self._port}")
        await self._server.start()
        await self._server.wait_for_termination()


class WhisperModelServer(ModelServer):
    def __init__(self, *, header_timeout: float, enable_grpc: bool, grpc_interceptors: tuple[aio.ServerInterceptor, ...] = (), **kwargs):
        super().__init__(enable_grpc=False, **kwargs)  # ``start`` runs our gRPC server instead of KServe's
        self.header_timeout = header_timeout
        self.serve_grpc = enable_grpc
        self.grpc_interceptors = grpc_interceptors
        self.model_repository_extension = LockedRepository(model_registry=self.registered_models)

    def start(self, models: List[Model]) -> None:
        if self.serve_grpc:
            self._grpc_server = InterceptedGRPCServer(
                self.grpc_port,
                self.dataplane,
                self.model_repository_extension,
                kwargs=vars(model_server.args),
                grace_period=self.grace_period,
                interceptors=self.grpc_interceptors,
            )
            self.servers.append(self._grpc_server.start(self.max_threads))
        super().start(models)

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
