"""An optional API key in front of every route: ``Authorization: Bearer <key>`` over HTTP, WebSocket and gRPC.

What the `openai` client sends with ``api_key``; browsers cannot set headers on a WebSocket, so there the key may
also come as the subprotocol ``openai-insecure-api-key.<key>``, as OpenAI's own JavaScript client sends it.
Health probes (``/``, ``/v2/health/*``, ``/v2/models/<name>/ready``; gRPC ServerLive, ServerReady, ModelReady),
``/metrics`` (counts and latencies, no audio or text: Prometheus scrapes it without a token) and the demo page's
static files (the page asks for the key, then calls the guarded routes with it) stay open. Keys are compared in
constant time. Without a key configured nothing here is installed.
"""

from __future__ import annotations

import hmac
import os
import re
from pathlib import Path
from typing import Mapping, Optional

import grpc
from grpc import aio

from ..contract import API_KEY_ENV
from ..errors import MissingApiKey
from .errors import answer_closing, error_response

#: The WebSocket subprotocol prefix OpenAI's browser client carries the key in.
SUBPROTOCOL_PREFIX = "openai-insecure-api-key."
OPEN_PATHS = re.compile(r"^/(|metrics|v2/health/(live|ready)|v2/models/[^/]+/ready|demo|demo/.*)$")
OPEN_GRPC_METHODS = frozenset(
    f"/inference.GRPCInferenceService/{name}" for name in ("ServerLive", "ServerReady", "ModelReady")
)
#: RFC 6750: a 401 names the scheme it wants.
WWW_AUTHENTICATE = (b"www-authenticate", b"Bearer")


class ApiKey:
    def __init__(self, key: str):
        self._key = key.encode()

    def matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._key)

    def problem(self, authorization: Optional[str], subprotocols: tuple[str, ...] = ()) -> Optional[MissingApiKey]:
        """Why a request with this ``Authorization`` header (and WebSocket subprotocols) is refused; ``None``: let in."""
        keys = [protocol[len(SUBPROTOCOL_PREFIX) :] for protocol in subprotocols if protocol.startswith(SUBPROTOCOL_PREFIX)]
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() == "bearer":
            keys.append(credentials.strip())
        if not keys:
            return MissingApiKey("this server needs an API key: send 'Authorization: Bearer <key>'")
        if not any([self.matches(key) for key in keys]):  # a list: every candidate is compared
            return MissingApiKey("the API key is not valid")
        return None


def load_api_key(path: Optional[str], environ: Mapping[str, str] = os.environ) -> Optional[ApiKey]:
    """The key in ``path`` (a mounted Secret), else in ``$WHISPER_API_KEY``; ``None``: no key, every route open.

    Surrounding whitespace (the newline ``echo`` leaves in a Secret) is not part of the key."""
    if path:
        key = Path(path).read_text().strip()
        if not key:
            raise ValueError(f"the API key file {path} is empty")
        return ApiKey(key)
    key = environ.get(API_KEY_ENV, "").strip()
    return ApiKey(key) if key else None


class ApiKeyMiddleware:
    """ASGI middleware: requests and WebSocket handshakes to a guarded path without the key get a 401."""

    def __init__(self, app, api_key: ApiKey):
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or OPEN_PATHS.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        offered = tuple(protocol.strip() for protocol in headers.get("sec-websocket-protocol", "").split(","))
        refusal = self.api_key.problem(headers.get("authorization"), offered if scope["type"] == "websocket" else ())
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await answer_closing(scope["path"], refusal, send, headers=(WWW_AUTHENTICATE,))
        else:
            await _refuse_handshake(scope, receive, send, refusal)


async def _refuse_handshake(scope, receive, send, refusal: MissingApiKey) -> None:
    """A 401 to the WebSocket handshake where the server can send one (ASGI's denial-response extension), else a
    close before accepting (the client sees 403)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    response = error_response(scope["path"], refusal)
    response.raw_headers.append(WWW_AUTHENTICATE)
    await response(scope, receive, send)


class ApiKeyInterceptor(aio.ServerInterceptor):
    """gRPC: calls without ``authorization: Bearer <key>`` metadata end with UNAUTHENTICATED (health calls excepted)."""

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key

    async def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method in OPEN_GRPC_METHODS:
            return await continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        refusal = self.api_key.problem(metadata.get("authorization"))
        if refusal is None:
            return await continuation(handler_call_details)

        async def refuse(request, context: aio.ServicerContext):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, refusal.message)

        return grpc.unary_unary_rpc_method_handler(refuse)
