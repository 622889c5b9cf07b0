"""The realtime core without a server: turn detection, growing partial text, stream resampling, event shapes,
the session's event flow."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from runtime_samples import sine

from whisper_runtime.audio import AudioLimits
from whisper_runtime.engines.transformers_engine import TransformersEngine
from whisper_runtime.errors import InvalidAudio, InvalidRequest
from whisper_runtime.realtime.agreement import LocalAgreement
from whisper_runtime.realtime.resample import StreamResampler
from whisper_runtime.realtime.session import (
    Cleared,
    Committed,
    SpeechStarted,
    SpeechStopped,
    TranscriptFailed,
    TranscriptionSession,
)
from whisper_runtime.realtime.vad import EnergyVad, Turn, TurnDetection
from whisper_runtime.server.realtime_events import SessionSettings, check_event_type, parse_client_event
from whisper_runtime.transcriber import Transcriber

MODELS = {"whisper", "whisper-1"}


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), dtype=np.float32)


def test_vad_finds_speech_and_the_pause_after_it_in_any_chunking():
    stream = np.concatenate([silence(1.0), sine(2.0, amplitude=0.1), silence(1.0)])
    expected = [Turn(stopped=False, sample=16000), Turn(stopped=True, sample=48000)]
    for chunk in (160, 2400, 7777, stream.size):
        vad = EnergyVad(TurnDetection(silence_duration_ms=500))
        turns = [turn for start in range(0, stream.size, chunk) for turn in vad.feed(stream[start : start + chunk])]
        assert turns == expected, chunk


def test_vad_threshold_and_silence_duration_are_honoured():
    quiet_speech = np.concatenate([sine(1.0, amplitude=0.003), silence(1.0)])  # -53 dBFS RMS
    assert EnergyVad(TurnDetection(threshold=0.5)).feed(quiet_speech) == []
    assert len(EnergyVad(TurnDetection(threshold=0.2)).feed(quiet_speech)) == 2
    short_pause = np.concatenate([sine(1.0, amplitude=0.1), silence(0.4), sine(1.0, amplitude=0.1), silence(1.0)])
    assert len(EnergyVad(TurnDetection(silence_duration_ms=500)).feed(short_pause)) == 2  # one utterance
    assert len(EnergyVad(TurnDetection(silence_duration_ms=300)).feed(short_pause)) == 4  # two
    click = np.concatenate([silence(0.5), sine(0.04, amplitude=0.5), silence(1.0)])
    assert EnergyVad(TurnDetection()).feed(click) == []


def test_local_agreement_sends_only_words_two_hypotheses_share_and_never_takes_back():
    agreement = LocalAgreement()
    assert agreement.update("And so my") == ""
    assert agreement.update("And so my fellow Amer") == "And so my"
    assert agreement.update("And so my fellow Americans, ask") == " fellow"
    assert agreement.update("And so, my fellow Americans, ask not") == " Americans, ask"  # "so," agrees with "so"
    assert agreement.update("And so my fellow-Americans ask not what") == ""  # a revision of sent words: wait
    assert agreement.update("And so my fellow Americans, ask not what your") == ""
    assert agreement.update("And so my fellow Americans, ask not what your country") == " not what your"
    assert agreement.sent == "And so my fellow Americans, ask not what your".split()


def test_stream_resampler_keeps_pitch_and_length_across_chunks():
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(24000 * 2) / 24000) * 32767).astype("<i2")
    resampler = StreamResampler(24000)
    out = np.concatenate([resampler.pcm16(tone[i : i + 2400].tobytes()) for i in range(0, tone.size, 2400)])
    assert abs(out.size - 32000) < 64
    spectrum = np.abs(np.fft.rfft(out[1000:17000]))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) <= 1
    with pytest.raises(InvalidAudio):
        resampler.pcm16(b"\x00\x01\x02")


def test_session_update_merges_and_refuses_what_is_not_served():
    settings = SessionSettings(model="whisper")
    updated = settings.updated(
        {"input_audio_transcription": {"model": "whisper-1", "language": "en"},
         "turn_detection": {"type": "server_vad", "silence_duration_ms": 800}}, MODELS)  # fmt: skip
    assert updated.language == "en" and updated.turn_detection == TurnDetection(silence_duration_ms=800)
    assert updated.updated({"turn_detection": None}, MODELS).turn_detection is None
    session = updated.as_json("sess_1")
    assert session["turn_detection"] == {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                         "silence_duration_ms": 800}  # fmt: skip
    refused = [
        {"input_audio_format": "g711_ulaw"},
        {"input_audio_transcription": {"model": "gpt-4o-transcribe"}},
        {"turn_detection": {"type": "semantic_vad"}},
        {"turn_detection": {"threshold": 2}},
        {"input_audio_noise_reduction": {"type": "near_field"}},
        "not an object",
    ]
    for update in refused:
        with pytest.raises(InvalidRequest):
            settings.updated(update, MODELS)


@pytest.mark.parametrize("text", ["not json", "[1]", '{"type": "response.create"}', '{"no": "type"}'])
def test_unknown_or_malformed_client_events_are_refused(text):
    with pytest.raises(InvalidRequest):
        check_event_type(parse_client_event(text))


@pytest.mark.model
async def test_session_events_in_order_and_overlong_speech_split_at_whispers_window(tiny_en_dir):
    """The session's own event flow, cheaply: the engine is built but never started, so every final fails."""
    engine = TransformersEngine(tiny_en_dir, dtype="float32")
    transcriber = Transcriber(engine, AudioLimits(max_bytes=2**20, max_seconds=60))
    events = []
    session = TranscriptionSession(transcriber, transcriber.options(), TurnDetection(), events.append)
    stream = np.concatenate([sine(31.0, amplitude=0.1), silence(1.0)])
    for start in range(0, stream.size, 1600):
        session.append(stream[start : start + 1600])
    await asyncio.sleep(0.1)
    assert events == [
        SpeechStarted("item_0001", 0),
        SpeechStopped("item_0001", 30000),
        Committed("item_0001", None),
        SpeechStarted("item_0002", 30000),
        SpeechStopped("item_0002", 31000),
        Committed("item_0002", "item_0001"),
        TranscriptFailed("item_0001", "the speech engine is not running"),
        TranscriptFailed("item_0002", "the speech engine is not running"),
    ]
    session.configure(transcriber.options(), None)  # the client commits from now on
    session.clear()
    assert events[-1] == Cleared()
    session.append(silence(0.05))
    with pytest.raises(InvalidRequest):
        session.commit()  # less than 100 ms since the clear
    await session.close()
