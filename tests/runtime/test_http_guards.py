"""The HTTP guards in process, on a small Starlette app: request limits and the error boundary (issue 14.4, 14.5)."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI, Request

from whisper_runtime.audio import AudioLimits
from whisper_runtime.server.errors import ErrorBoundaryMiddleware, install_error_handlers
from whisper_runtime.server.request_limits import ENVELOPE_BYTES, BodyTimeouts, RequestLimitsMiddleware

LIMITS = AudioLimits.from_megabytes(1, 60)


def guarded_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("a bug")

    app.add_middleware(RequestLimitsMiddleware, limits=LIMITS, timeouts=BodyTimeouts(idle_seconds=0.3, total_seconds=2))
    app.add_middleware(ErrorBoundaryMiddleware)
    return app


@pytest.fixture
def client():
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded_app(), raise_app_exceptions=False), base_url="http://t")


async def test_body_under_the_limit_passes(client):
    response = await client.post("/echo", content=b"x" * 1000)
    assert response.json() == {"bytes": 1000} and "connection" not in response.headers


async def test_chunked_body_over_the_limit_is_413_and_closes(client):
    sent = []

    async def chunks():
        for _ in range(8):
            sent.append(1)
            yield b"x" * (512 * 1024)

    response = await client.post("/echo", content=chunks())
    assert response.status_code == 413 and response.headers["connection"] == "close"
    assert len(sent) <= (LIMITS.max_bytes + ENVELOPE_BYTES) // (512 * 1024) + 1


async def test_stalled_body_is_408(client):
    async def stalls():
        yield b"{"
        await asyncio.sleep(2)
        yield b"}"

    response = await client.post("/echo", content=stalls())
    assert response.status_code == 408 and "stalled after 1 bytes" in response.json()["error"]


async def test_an_unexpected_exception_is_a_500_json_not_a_dropped_connection(client):
    response = await client.get("/boom")
    assert response.status_code == 500 and "RuntimeError" in response.json()["error"]
    assert "connection" not in response.headers
