"""stream=true and word timestamps through the real server (tiny.en, CPU), driven by the real openai client."""

from __future__ import annotations

import base64
import json
import time

import openai
import pytest
import soundfile
from runtime_samples import long_form_clips, sine, wav_bytes
from whisper_devkit import speech
from whisper_devkit.wer import word_error_rate

pytestmark = pytest.mark.model

JFK_WER_BOUND = 0.10
#: The 16-sentence espeak recording: tiny.en measured 0.15 on it.
STREAM_WER_BOUND = 0.30


@pytest.fixture(scope="module")
def jfk():
    return speech.jfk()


@pytest.fixture(scope="module")
def three_windows(tmp_path_factory):
    """16 espeak sentences 0.5 s apart: about 70 s, three windows."""
    return speech.join_clips(long_form_clips()[:16], tmp_path_factory.mktemp("stream") / "three.wav", gap_seconds=0.5)


def timed_events(stream, started: float) -> list[tuple[float, object]]:
    """Each event with the seconds from ``started`` (before the request was sent) to its arrival."""
    return [(time.perf_counter() - started, event) for event in stream]


def test_openai_client_streams_deltas_then_done(openai_client, three_windows):
    with three_windows.path.open("rb") as file:
        started = time.perf_counter()
        stream = openai_client.audio.transcriptions.create(model="whisper", file=file, stream=True)
        events = timed_events(stream, started)
    kinds = [event.type for _, event in events]
    assert kinds[-1] == "transcript.text.done" and set(kinds[:-1]) == {"transcript.text.delta"}
    assert len(kinds) - 1 >= 3, "one delta per final stretch of a three-window recording"
    done = events[-1][1]
    assert "".join(event.delta for _, event in events[:-1]) == done.text
    assert word_error_rate([three_windows.text], [done.text]) <= STREAM_WER_BOUND
    assert done.usage.type == "tokens" and done.usage.output_tokens > 0
    assert abs(done.usage.input_tokens - three_windows.duration * 50) <= 1
    first_delta, finished = events[0][0], events[-1][0]
    print(f"stream: {three_windows.duration:.0f} s audio, first delta {first_delta:.1f} s, done {finished:.1f} s")
    assert first_delta < finished


def test_streamed_text_equals_the_unstreamed_transcript(openai_client, jfk):
    with jfk.path.open("rb") as file:
        events = list(openai_client.audio.transcriptions.create(model="whisper-1", file=file, stream=True, response_format="text"))
    with jfk.path.open("rb") as file:
        whole = openai_client.audio.transcriptions.create(model="whisper", file=file)
    assert events[-1].text == whole.text
    assert word_error_rate([jfk.text], [events[-1].text]) <= JFK_WER_BOUND


def test_silence_streams_only_done(http):
    response = http.post(
        "/v1/audio/transcriptions", files={"file": ("quiet.wav", wav_bytes(sine(2, amplitude=0.0)))}, data={"model": "whisper", "stream": "true"}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [event["type"] for event in events] == ["transcript.text.done"] and events[0]["text"] == ""


@pytest.mark.parametrize(
    "data,status,param",
    [
        ({"model": "gpt-4", "stream": "true"}, 404, "model"),
        ({"model": "whisper", "stream": "true", "response_format": "srt"}, 400, "stream"),
        ({"model": "whisper", "stream": "maybe"}, 400, "stream"),
        ({"model": "whisper", "timestamp_granularities[]": "word"}, 400, "timestamp_granularities"),
        ({"model": "whisper", "timestamp_granularities[]": "syllable", "response_format": "verbose_json"}, 400, "timestamp_granularities"),
    ],
)  # fmt: skip
def test_refused_streams_and_word_requests_are_json_errors(http, data, status, param):
    response = http.post("/v1/audio/transcriptions", files={"file": ("x.wav", wav_bytes(sine(1)))}, data=data)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["param"] == param


def test_bad_audio_in_a_stream_is_a_json_error_before_any_event(openai_client):
    with pytest.raises(openai.BadRequestError):
        openai_client.audio.transcriptions.create(model="whisper", file=("x.wav", b"garbage" * 50), stream=True)


def test_openai_client_word_timestamps(openai_client, jfk):
    with jfk.path.open("rb") as file:
        result = openai_client.audio.transcriptions.create(
            model="whisper", file=file, response_format="verbose_json", timestamp_granularities=["word"]
        )
    assert result.segments is None
    assert [word.word for word in result.words] == result.text.split()
    starts = [word.start for word in result.words]
    assert starts == sorted(starts) and all(word.start <= word.end <= result.duration + 0.02 for word in result.words)
    # "And so my fellow Americans": the speech starts at once; "country." ends the sentence near 10.5 s.
    assert result.words[0].start < 0.5 and 9.5 < result.words[-1].end <= 11.1
    with jfk.path.open("rb") as file:
        both = openai_client.audio.transcriptions.create(
            model="whisper", file=file, response_format="verbose_json", timestamp_granularities=["word", "segment"]
        )
    assert both.segments and [word.word for word in both.words] == [word.word for word in result.words]


def test_v2_words_in_the_segments_output(http, jfk):
    audio = base64.b64encode(jfk.path.read_bytes()).decode()
    body = {"inputs": [{"name": "audio", "shape": [1], "datatype": "BYTES", "data": [audio]}], "parameters": {"word_timestamps": True}}
    response = http.post("/v2/models/whisper/infer", json=body)
    assert response.status_code == 200, response.text
    segments = json.loads(next(out["data"][0] for out in response.json()["outputs"] if out["name"] == "segments"))
    for segment in segments:
        assert segment["words"] and segment["start"] <= segment["words"][0]["start"] + 0.01
        assert " ".join(word["word"] for word in segment["words"]) == segment["text"].strip()
