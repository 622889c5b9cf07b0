"""OpenAI Realtime transcription over WebSocket: ``/v1/realtime?intent=transcription`` (also under ``/openai/v1``).

A thin shell: each connection is one ``realtime.TranscriptionSession``; client events are parsed and applied to
it, its events are sent back as JSON in the order they happen. Bad events answer an ``error`` event and the
connection stays open.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid

from fastapi import FastAPI, WebSocket
from starlette.websockets import WebSocketDisconnect

from ..errors import InvalidAudio, InvalidRequest, WhisperError
from ..realtime.resample import StreamResampler
from ..realtime.scheduler import PartialScheduler
from ..realtime.session import TranscriptionSession
from ..transcriber import Transcriber
from .openai import OPENAI_MODEL_ALIAS, PREFIXES
from .realtime_events import (
    INPUT_SAMPLE_RATE,
    SessionSettings,
    check_event_type,
    error_event,
    parse_client_event,
    session_event,
    session_output,
)

#: Browsers pass credentials as WebSocket subprotocols (OpenAI's convention); the server must pick one of them.
REALTIME_SUBPROTOCOL = "realtime"
#: Policy violation: the only intent served is transcription.
CLOSE_POLICY_VIOLATION = 1008


class RealtimeRoutes:
    def __init__(self, transcriber: Transcriber, model_name: str):
        self.transcriber = transcriber
        self.model_name = model_name
        self.model_names = {model_name, OPENAI_MODEL_ALIAS}
        self.partials = PartialScheduler()

    def install(self, app: FastAPI) -> None:
        for prefix in PREFIXES:
            app.add_api_websocket_route(f"{prefix}/realtime", self.realtime)

    async def realtime(self, websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=REALTIME_SUBPROTOCOL if REALTIME_SUBPROTOCOL in offered else None)
        if websocket.query_params.get("intent") != "transcription":
            refusal = InvalidRequest("this server serves only ?intent=transcription", param="intent")
            await websocket.send_json(error_event(refusal, None))
            await websocket.close(code=CLOSE_POLICY_VIOLATION)
            return
        await _Connection(self, websocket).run()


class _Connection:
    def __init__(self, routes: RealtimeRoutes, websocket: WebSocket):
        self.routes = routes
        self.websocket = websocket
        self.session_id = f"sess_{uuid.uuid4().hex[:20]}"
        self.settings = SessionSettings(model=routes.model_name)
        self.outbox: asyncio.Queue[dict] = asyncio.Queue()
        self.resampler = StreamResampler(INPUT_SAMPLE_RATE)
        self.session = TranscriptionSession(
            routes.transcriber,
            routes.transcriber.options(),
            self.settings.turn_detection,
            lambda event: self.outbox.put_nowait(session_output(event)),
        )

    async def run(self) -> None:
        sender = asyncio.get_running_loop().create_task(self._send())
        self.outbox.put_nowait(session_event("transcription_session.created", self.settings, self.session_id))
        self.routes.partials.add(self.session)
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                self._handle(message.get("text"))
        except WebSocketDisconnect:
            pass
        finally:
            await self.routes.partials.remove(self.session)
            await self.session.close()
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    def _handle(self, text: str | None) -> None:
        event_id = None
        try:
            if text is None:
                raise InvalidRequest("send events as JSON text frames, not binary frames")
            event = parse_client_event(text)
            event_id = event.get("event_id")
            check_event_type(event)
            self._apply(event)
        except WhisperError as error:
            self.outbox.put_nowait(error_event(error, event_id))

    def _apply(self, event: dict) -> None:
        kind = event["type"]
        if kind == "input_audio_buffer.append":
            self.session.append(self.resampler.pcm16(_audio_bytes(event.get("audio"))))
        elif kind == "input_audio_buffer.commit":
            self.session.commit()
        elif kind == "input_audio_buffer.clear":
            self.session.clear()
        elif kind == "transcription_session.update":
            settings = self.settings.updated(event.get("session"), self.routes.model_names)
            options = self.routes.transcriber.options(language=settings.language, prompt=settings.prompt)
            self.session.configure(options, settings.turn_detection)
            self.settings = settings
            self.outbox.put_nowait(session_event("transcription_session.updated", settings, self.session_id))

    async def _send(self) -> None:
        while True:
            event = await self.outbox.get()
            try:
                await self.websocket.send_text(json.dumps(event))
            except (WebSocketDisconnect, RuntimeError):
                return  # the client left; the receive loop ends the session


def _audio_bytes(audio: object) -> bytes:
    if not isinstance(audio, str):
        raise InvalidAudio("input_audio_buffer.append needs 'audio': base64-encoded PCM16", param="audio")
    try:
        return base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidAudio("'audio' is not valid base64", param="audio") from error
