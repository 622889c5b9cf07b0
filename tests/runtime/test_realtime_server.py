"""Realtime transcription over WebSocket against the real server (tiny.en, CPU): the `openai` client's realtime
connection streaming real speech at real-time pace, manual commits, and bad events that leave the session usable.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
import websockets
from whisper_devkit import speech
from whisper_devkit.wer import word_error_rate

pytestmark = pytest.mark.model

JFK_WER_BOUND = 0.10
CHUNK_BYTES = 4800  # 100 ms of PCM16 at 24 kHz
COMPLETED = "conversation.item.input_audio_transcription.completed"


@pytest.fixture(scope="module")
def jfk():
    return speech.jfk()


@pytest.fixture(scope="module")
def jfk_pcm24k(jfk, tmp_path_factory) -> bytes:
    """JFK as OpenAI's realtime audio: raw 16-bit mono PCM at 24 kHz (sox's resampler)."""
    raw = tmp_path_factory.mktemp("realtime") / "jfk.raw"
    subprocess.run(["sox", "-R", str(jfk.path), "-r", "24000", "-b", "16", "-e", "signed", "-c", "1", str(raw)], check=True)
    return raw.read_bytes()


def chunks(pcm: bytes, size: int = CHUNK_BYTES) -> list[str]:
    return [base64.b64encode(pcm[start : start + size]).decode() for start in range(0, len(pcm), size)]


async def test_openai_client_streams_speech_at_real_time_pace_with_partials(server, jfk, jfk_pcm24k):
    client = openai.AsyncOpenAI(base_url=f"{server.http_url}/v1", websocket_base_url=server.http_url.replace("http", "ws") + "/v1",
                                api_key="not-needed")  # fmt: skip
    events: list[tuple[float, dict]] = []
    silence = b"\x00\x00" * 24000 * 2
    async with client.beta.realtime.connect(model="whisper", extra_query={"intent": "transcription"}) as connection:
        # JFK pauses up to ~0.9 s between phrases: a longer silence keeps the sentence one utterance.
        await connection.send({"type": "transcription_session.update",
                               "session": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 1200}}})  # fmt: skip

        async def send_at_real_time_pace():
            started = time.perf_counter()
            for index, chunk in enumerate(chunks(jfk_pcm24k + silence)):
                await asyncio.sleep(max(0.0, started + index * 0.1 - time.perf_counter()))
                await connection.input_audio_buffer.append(audio=chunk)

        async def receive():
            async for event in connection:
                events.append((time.perf_counter(), event.model_dump()))

        def count(kind: str) -> int:
            return sum(event["type"] == kind for _, event in events)

        async def every_utterance_completed():
            while not 0 < count("input_audio_buffer.speech_started") == count(COMPLETED):
                await asyncio.sleep(0.1)

        receiver = asyncio.create_task(receive())
        await asyncio.wait_for(send_at_real_time_pace(), timeout=60)
        await asyncio.wait_for(every_utterance_completed(), timeout=180)
        receiver.cancel()
    kinds = [event["type"] for _, event in events]
    assert kinds[:2] == ["transcription_session.created", "transcription_session.updated"], kinds
    assert events[1][1]["session"]["turn_detection"]["silence_duration_ms"] == 1200
    items = [event["item_id"] for _, event in events if event["type"] == "input_audio_buffer.committed"]
    for item in items:
        order = [event["type"] for _, event in events if event.get("item_id") == item and "delta" not in event["type"]]
        assert order == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                         "input_audio_buffer.committed", "conversation.item.input_audio_transcription.completed"], order
    finals = {e["item_id"]: (t, e["transcript"]) for t, e in events if e["type"].endswith("transcription.completed")}
    transcript = " ".join(finals[item][1] for item in items)
    print(f"realtime JFK: {len(items)} utterance(s): {transcript!r}")
    assert word_error_rate([jfk.text], [transcript]) <= JFK_WER_BOUND
    deltas = [(t, e) for t, e in events if e["type"].endswith("transcription.delta")]
    assert deltas, "no partial text while the speaker talked"
    assert all(t < finals[e["item_id"]][0] for t, e in deltas), "a delta came after its item's final"
    partial = "".join(e["delta"] for _, e in deltas if e["item_id"] == deltas[0][1]["item_id"])
    assert word_error_rate([finals[deltas[0][1]["item_id"]][1]], [partial]) < 1.0  # words of the final, not noise


async def connect(server, intent: str = "transcription"):
    return websockets.connect(f"{server.http_url.replace('http', 'ws')}/v1/realtime?intent={intent}", max_size=None)


async def next_event(socket, kind: str) -> dict:
    while True:
        event = json.loads(await asyncio.wait_for(socket.recv(), timeout=120))
        if event["type"] == kind:
            return event


async def test_manual_commit_and_bad_events_leave_the_session_usable(server, jfk, jfk_pcm24k):
    async with await connect(server) as socket:
        assert (await next_event(socket, "transcription_session.created"))["session"]["turn_detection"]["type"] == "server_vad"
        await socket.send(json.dumps({"type": "transcription_session.update", "session": {"turn_detection": None}}))
        assert (await next_event(socket, "transcription_session.updated"))["session"]["turn_detection"] is None

        bad = [
            ({"type": "input_audio_buffer.commit", "event_id": "early"}, "input_audio_buffer"),
            ({"type": "input_audio_buffer.append", "event_id": "b64", "audio": "not base64!"}, "audio"),
            ({"type": "input_audio_buffer.append", "event_id": "odd", "audio": base64.b64encode(b"\x01").decode()}, "audio"),
            ({"type": "response.create", "event_id": "unknown"}, "type"),
            ({"type": "transcription_session.update", "event_id": "fr",
              "session": {"input_audio_transcription": {"language": "fr"}}}, "language"),
        ]  # fmt: skip
        for event, param in bad:
            await socket.send(json.dumps(event))
            error = (await next_event(socket, "error"))["error"]
            assert error["event_id"] == event["event_id"] and error["type"] == "invalid_request_error", error
            assert error["param"] == param, error
        await socket.send(b"\x00\x01")
        assert "binary" in (await next_event(socket, "error"))["error"]["message"]

        for chunk in chunks(jfk_pcm24k, size=48000):  # a second at a time, as fast as it goes
            await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        await socket.send(json.dumps({"type": "input_audio_buffer.commit"}))
        committed = await next_event(socket, "input_audio_buffer.committed")
        completed = await next_event(socket, "conversation.item.input_audio_transcription.completed")
        assert completed["item_id"] == committed["item_id"] and committed["previous_item_id"] is None
        assert word_error_rate([jfk.text], [completed["transcript"]]) <= JFK_WER_BOUND
        assert completed["usage"]["seconds"] == pytest.approx(11.0, abs=0.1)

        await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunks(jfk_pcm24k)[0]}))
        await socket.send(json.dumps({"type": "input_audio_buffer.clear"}))
        await next_event(socket, "input_audio_buffer.cleared")
        await socket.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "after-clear"}))
        assert (await next_event(socket, "error"))["error"]["event_id"] == "after-clear"


async def test_other_intents_are_refused_with_an_error_event(server):
    async with await connect(server, intent="conversation") as socket:
        event = json.loads(await socket.recv())
        assert event["type"] == "error" and event["error"]["param"] == "intent"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd.code == 1008


def test_realtime_bench_measures_latency_and_sessions_at_real_time_pace(server, tmp_path):
    """bench/realtime_bench.py against this server (tiny.en, CPU): the numbers docs/runtime.md reports for CPU."""
    bench = Path(__file__).resolve().parents[2] / "bench"
    data, results = tmp_path / "data", tmp_path / "results.jsonl"
    subprocess.run([sys.executable, str(bench / "prepare_data.py"), "--out", str(data), "--long-minutes", "0.1",
                    "--clips", "4"], check=True)  # fmt: skip
    subprocess.run([sys.executable, str(bench / "realtime_bench.py"), "--data", str(data), "--url", server.http_url,
                    "--sessions", "1,2,4", "--utterances", "2", "--results", str(results)],
                   check=True, cwd=bench, timeout=600)  # fmt: skip
    record = json.loads(results.read_text())
    first = record["levels"][0]
    assert first["sessions"] == 1 and first["completed"] == first["utterances"] == 2
    assert 0 < first["after_stopped_p50"] <= first["latency_p50"] and first["wer"] < 40
    assert 0 <= first["client_send_lag_max"] < 1  # one session: the load generator keeps pace
    assert record["max_real_time_sessions"] in (0, 1, 2, 4)
