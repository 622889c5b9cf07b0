"""The API key against a real whisper-runtime (tiny.en, CPU) started with ``--api_key_file``, driven by the real
clients: the `openai` client (HTTP and its realtime WebSocket), httpx on v2 REST, KServe's gRPC client, a browser-style
WebSocket carrying the key as a subprotocol. Without the key every route but health, /metrics and the demo page's
files answers 401 (gRPC UNAUTHENTICATED); with it everything works. (A server without a key is every other runtime
test: they send no key, or one it ignores.)
"""

from __future__ import annotations

import secrets

import grpc
import httpx
import numpy as np
import openai
import pytest
import websockets
from kserve import InferenceGRPCClient, InferInput, InferRequest
from runtime_samples import SERVER_API_KEY as KEY
from runtime_samples import http_client
from whisper_devkit import speech
from whisper_runtime.server.auth import SUBPROTOCOL_PREFIX, ApiKey, load_api_key

WRONG = f"sk-test-{secrets.token_hex(16)}"
#: Every kind of guarded route: OpenAI audio (both prefixes), v2 inference and metadata, KServe's v1 list, the repository.
GUARDED = [
    ("POST", "/v1/audio/transcriptions"),
    ("POST", "/openai/v1/audio/translations"),
    ("POST", "/v2/models/whisper/infer"),
    ("GET", "/v2/models/whisper"),
    ("GET", "/v2"),
    ("GET", "/v1/models"),
    ("POST", "/v2/repository/models/whisper/unload"),
]
OPEN = ["/", "/v2/health/live", "/v2/health/ready", "/v2/models/whisper/ready", "/metrics", "/demo/", "/demo/demo.js"]


@pytest.fixture(scope="module")
def http(keyed_server):
    yield from http_client(keyed_server)


@pytest.fixture(scope="module")
def jfk():
    return speech.jfk()


def ws_url(server) -> str:
    return f"{server.http_url.replace('http', 'ws')}/v1/realtime?intent=transcription"


def test_the_key_comes_from_the_file_else_the_environment(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(f"  {KEY}\n")
    assert load_api_key(str(key_file), {"WHISPER_API_KEY": WRONG}).problem(f"Bearer {KEY}") is None
    assert load_api_key(None, {"WHISPER_API_KEY": f"{KEY}\n"}).problem(f"Bearer {KEY}") is None
    assert load_api_key(None, {}) is None and load_api_key(None, {"WHISPER_API_KEY": " "}) is None
    key_file.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        load_api_key(str(key_file), {})


def test_what_counts_as_the_key():
    key = ApiKey(KEY)
    assert key.problem(f"bearer {KEY}") is None
    assert key.problem(None, (f"{SUBPROTOCOL_PREFIX}{KEY}", "realtime")) is None
    assert "needs an API key" in key.problem(None).message
    assert "needs an API key" in key.problem(f"Basic {KEY}").message
    for wrong in (f"Bearer {WRONG}", f"Bearer {KEY[:-1]}", f"Bearer {KEY}x", "Bearer "):
        assert "not valid" in key.problem(wrong).message


@pytest.mark.model
@pytest.mark.parametrize("method,path", GUARDED)
@pytest.mark.parametrize("authorization", [None, f"Bearer {WRONG}", f"Basic {KEY}"])
def test_guarded_routes_answer_401_without_the_key(http, method, path, authorization):
    headers = {"authorization": authorization} if authorization else {}
    response = http.request(method, path, headers=headers, files={"file": ("a.wav", b"RIFF")} if method == "POST" else None)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    if "/audio/" in path:
        assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    else:
        assert isinstance(error, str) and "API key" in error


@pytest.mark.model
@pytest.mark.parametrize("path", OPEN)
def test_health_metrics_and_the_demo_page_stay_open(http, path):
    assert http.get(path).status_code == 200


@pytest.mark.model
def test_refused_requests_make_no_metric_labels(http):
    """Refused before routing, a request has only its raw path: counted, any client could mint label values."""
    assert http.post(f"/v2/models/{secrets.token_hex(8)}/infer").status_code == 401
    assert 'status="401"' not in http.get("/metrics").text


@pytest.mark.model
def test_openai_client(keyed_server, jfk):
    wrong = openai.OpenAI(base_url=f"{keyed_server.http_url}/v1", api_key=WRONG, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused, jfk.path.open("rb") as file:
        wrong.audio.transcriptions.create(model="whisper", file=file)
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    right = openai.OpenAI(base_url=f"{keyed_server.http_url}/v1", api_key=KEY, timeout=300)
    with jfk.path.open("rb") as file:
        assert "country" in right.audio.transcriptions.create(model="whisper", file=file).text


@pytest.mark.model
def test_v2_rest_with_the_key(http, jfk):
    tensor = InferInput("audio", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([jfk.path.read_bytes()], dtype=object), binary_data=True)
    body, json_length = InferRequest(model_name="whisper", infer_inputs=[tensor]).to_rest()
    headers = {"Inference-Header-Content-Length": str(json_length), "Content-Type": "application/octet-stream"}
    response = http.post("/v2/models/whisper/infer", content=body, headers=headers | {"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200, response.text
    assert "country" in response.json()["outputs"][0]["data"][0]


@pytest.mark.model
async def test_grpc_needs_the_key_in_metadata_but_health(keyed_server, jfk):
    client = InferenceGRPCClient(keyed_server.grpc_address, timeout=300)
    tensor = InferInput("audio", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([jfk.path.read_bytes()], dtype=object), binary_data=True)
    request = InferRequest(model_name="whisper", infer_inputs=[tensor])
    for metadata in (None, [("authorization", f"Bearer {WRONG}")]):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.infer(request, headers=metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    response = await client.infer(request, headers=[("authorization", f"Bearer {KEY}")])
    text = response.outputs[0].as_numpy().reshape(-1)[0]
    assert "country" in (text.decode() if isinstance(text, bytes) else text)
    assert await client.is_server_live() and await client.is_server_ready() and await client.is_model_ready("whisper")
    await client.close()


@pytest.mark.model
async def test_realtime_with_the_openai_client(keyed_server):
    websocket_base = keyed_server.http_url.replace("http", "ws") + "/v1"
    for key, works in ((WRONG, False), (KEY, True)):
        client = openai.AsyncOpenAI(base_url=f"{keyed_server.http_url}/v1", websocket_base_url=websocket_base, api_key=key)
        connecting = client.beta.realtime.connect(model="whisper", extra_query={"intent": "transcription"})
        if not works:
            with pytest.raises(websockets.InvalidStatus) as refused:
                await connecting.__aenter__()
            assert refused.value.response.status_code == 401
            assert refused.value.response.headers["www-authenticate"] == "Bearer"
            continue
        async with connecting as connection:
            assert (await connection.recv()).type == "transcription_session.created"


@pytest.mark.model
async def test_realtime_with_the_key_as_a_browser_subprotocol(keyed_server):
    """What a browser (the demo page, OpenAI's JavaScript client) sends: no header, the key as a subprotocol."""
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(ws_url(keyed_server), subprotocols=["realtime", f"{SUBPROTOCOL_PREFIX}{WRONG}"])
    assert refused.value.response.status_code == 401
    offered = ["realtime", f"{SUBPROTOCOL_PREFIX}{KEY}", "openai-beta.realtime-v1"]
    async with websockets.connect(ws_url(keyed_server), subprotocols=offered) as socket:
        assert socket.subprotocol == "realtime"  # never the key echoed back
        assert '"transcription_session.created"' in await socket.recv()


@pytest.mark.model
def test_a_refused_upload_closes_the_connection(keyed_server):
    """The 401 comes before a byte of the body is read; the rest of the body is never read."""
    with httpx.Client(base_url=keyed_server.http_url) as client:
        response = client.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"\0" * (4 << 20))})
    assert response.status_code == 401 and response.headers["connection"] == "close"
