"""OpenAI Realtime transcription events as JSON: the session object, client events in, server events out.

The shapes follow OpenAI's Realtime API in transcription mode (``/v1/realtime?intent=transcription``):
``transcription_session.update``, ``input_audio_buffer.append|commit|clear`` from the client; the session's
``transcription_session.created|updated``, ``input_audio_buffer.*`` and
``conversation.item.input_audio_transcription.delta|completed|failed`` and ``error`` from the server.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any, Optional

from ..errors import InvalidRequest, WhisperError
from ..realtime.session import (
    Cleared,
    Committed,
    Event,
    SpeechStarted,
    SpeechStopped,
    TranscriptCompleted,
    TranscriptDelta,
    TranscriptFailed,
)
from ..realtime.vad import TurnDetection
from .errors import http_status, openai_error_body

#: OpenAI's realtime audio: 16-bit little-endian mono PCM at 24 kHz (resampled to 16 kHz here).
INPUT_AUDIO_FORMAT = "pcm16"
INPUT_SAMPLE_RATE = 24000
CLIENT_EVENTS = (
    "transcription_session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
)


@dataclasses.dataclass(frozen=True)
class SessionSettings:
    """What a client can set with ``transcription_session.update``."""

    model: str
    language: Optional[str] = None
    prompt: Optional[str] = None
    turn_detection: Optional[TurnDetection] = TurnDetection()

    def updated(self, session: Any, model_names: set[str]) -> "SessionSettings":
        """These settings with the fields the update names replaced; anything unsupported is refused."""
        if not isinstance(session, dict):
            raise InvalidRequest("'session' must be an object", param="session")
        audio_format = session.get("input_audio_format", INPUT_AUDIO_FORMAT)
        if audio_format != INPUT_AUDIO_FORMAT:
            raise InvalidRequest(f"input_audio_format must be {INPUT_AUDIO_FORMAT!r} (24 kHz)", "session.input_audio_format")
        if session.get("input_audio_noise_reduction") is not None:
            raise InvalidRequest("input_audio_noise_reduction is not supported; send null", "session.input_audio_noise_reduction")
        changes: dict[str, Any] = {}
        if "input_audio_transcription" in session:
            changes.update(_transcription_settings(session["input_audio_transcription"], model_names, self.model))
        if "turn_detection" in session:
            changes["turn_detection"] = _turn_detection(session["turn_detection"])
        return dataclasses.replace(self, **changes)

    def as_json(self, session_id: str) -> dict:
        turn = self.turn_detection
        return {
            "id": session_id,
            "object": "realtime.transcription_session",
            "input_audio_format": INPUT_AUDIO_FORMAT,
            "input_audio_transcription": {"model": self.model, "language": self.language or "", "prompt": self.prompt or ""},
            "turn_detection": None if turn is None else {"type": "server_vad", **dataclasses.asdict(turn)},
            "input_audio_noise_reduction": None,
            "include": [],
        }


def parse_client_event(text: str) -> dict:
    """A client event as an object (its type is checked by ``check_event_type``, once its id is known)."""
    try:
        event = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidRequest(f"events must be JSON: {error}") from error
    if not isinstance(event, dict):
        raise InvalidRequest("an event must be a JSON object with a 'type'", param="type")
    return event


def check_event_type(event: dict) -> None:
    if event.get("type") not in CLIENT_EVENTS:
        raise InvalidRequest(f"unknown event type {event.get('type')!r}; this server accepts {', '.join(CLIENT_EVENTS)}",
                             param="type")  # fmt: skip


def server_event(kind: str, **fields: Any) -> dict:
    return {"type": kind, "event_id": f"event_{uuid.uuid4().hex[:20]}", **fields}


def session_event(kind: str, settings: SessionSettings, session_id: str) -> dict:
    return server_event(kind, session=settings.as_json(session_id))


def error_event(error: WhisperError, client_event_id: Optional[str]) -> dict:
    body = openai_error_body(error.message, http_status(error), error.param)["error"]
    return server_event("error", error=body | {"event_id": client_event_id})


def session_output(event: Event) -> dict:
    """A session's event in OpenAI's shape."""
    transcription = "conversation.item.input_audio_transcription"
    if isinstance(event, SpeechStarted):
        return server_event("input_audio_buffer.speech_started", audio_start_ms=event.audio_start_ms, item_id=event.item_id)
    if isinstance(event, SpeechStopped):
        return server_event("input_audio_buffer.speech_stopped", audio_end_ms=event.audio_end_ms, item_id=event.item_id)
    if isinstance(event, Committed):
        return server_event("input_audio_buffer.committed", previous_item_id=event.previous_item_id, item_id=event.item_id)
    if isinstance(event, Cleared):
        return server_event("input_audio_buffer.cleared")
    if isinstance(event, TranscriptDelta):
        return server_event(f"{transcription}.delta", item_id=event.item_id, content_index=0, delta=event.delta)
    if isinstance(event, TranscriptCompleted):
        usage = {"type": "duration", "seconds": event.audio_seconds}
        return server_event(f"{transcription}.completed", item_id=event.item_id, content_index=0,
                            transcript=event.transcript, usage=usage)  # fmt: skip
    if isinstance(event, TranscriptFailed):
        error = {"type": "server_error", "code": "transcription_failed", "message": event.message, "param": None}
        return server_event(f"{transcription}.failed", item_id=event.item_id, content_index=0, error=error)
    raise TypeError(f"not a session event: {event!r}")


def _transcription_settings(value: Any, model_names: set[str], current_model: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest("input_audio_transcription must be an object", "session.input_audio_transcription")
    model = value.get("model") or current_model
    if model not in model_names:
        raise InvalidRequest(
            f"model {model!r} is not served here; use one of {sorted(model_names)}", "session.input_audio_transcription.model"
        )
    return {"model": model, "language": value.get("language") or None, "prompt": value.get("prompt") or None}


def _turn_detection(value: Any) -> Optional[TurnDetection]:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type", "server_vad") != "server_vad":
        raise InvalidRequest("turn_detection must be null or {\"type\": \"server_vad\", ...}", "session.turn_detection")
    defaults = TurnDetection()
    threshold = _number(value, "threshold", defaults.threshold, 0.0, 1.0)
    padding = _number(value, "prefix_padding_ms", defaults.prefix_padding_ms, 0, 5000)
    silence = _number(value, "silence_duration_ms", defaults.silence_duration_ms, 20, 10000)
    return TurnDetection(threshold=threshold, prefix_padding_ms=int(padding), silence_duration_ms=int(silence))


def _number(settings: dict, name: str, default: float, lowest: float, highest: float) -> float:
    value = settings.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lowest <= value <= highest:
        raise InvalidRequest(f"turn_detection.{name} must be a number from {lowest} to {highest}, got {value!r}",
                             f"session.turn_detection.{name}")  # fmt: skip
    return value
