"""KServe v2 (Open Inference Protocol) adapter: REST and gRPC both end in ``WhisperModel.predict``.

Input tensor ``audio``: an encoded file as BYTES (base64 strings in JSON, raw bytes over gRPC or
with the binary tensor data extension), or FP32 PCM at 16 kHz. Parameters: ``language``, ``task``,
``timestamps``, ``word_timestamps``, ``temperature``, ``prompt``. Outputs: ``text`` and, with timestamps,
``segments`` (a JSON document in a BYTES tensor); with word timestamps, each segment also lists its ``words``.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import uuid
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import orjson
from kserve import InferRequest, InferResponse, Model
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import InferInput, InferOutput, to_http_parameters

from ..benchmark import NOTICE_PARAMETER
from ..contract import SAMPLE_RATE
from ..engines.base import DecodeOptions
from ..errors import InvalidAudio, InvalidRequest
from ..transcriber import Transcriber, Transcript
from ..windowing import Segment

AUDIO_INPUT = "audio"
#: One second of a quiet tone: loud enough not to be skipped as silence, so warm-up really decodes.
_WARM_UP_AUDIO = (0.1 * np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)).astype(np.float32)


class WhisperModel(Model):
    """Loads nothing itself: the engine starts in the server's event loop and is ready after a warm-up."""

    def __init__(self, name: str, transcriber: Transcriber):
        super().__init__(name)
        self.transcriber = transcriber
        self._warm = False
        self._served = False

    def load(self) -> bool:
        self.engine = True  # ask KServe's ModelServer to run start_engine() in its loop
        self.ready = True
        return True

    async def start_engine(self) -> None:
        await self.transcriber.engine.start()
        await self.transcriber.transcribe_pcm(_WARM_UP_AUDIO, self.transcriber.options())
        self._warm = self._served = True

    async def healthy(self) -> bool:
        return self._warm and self.transcriber.engine.healthy()

    def alive(self) -> bool:
        """False once an engine that was serving has stopped: it never comes back, so the pod must be restarted."""
        return not self._served or self.transcriber.engine.healthy()

    def stop_engine(self) -> None:
        self._warm = False
        self.ready = False
        try:
            asyncio.get_running_loop().create_task(self.transcriber.engine.stop())
        except RuntimeError:  # no loop left: the process is exiting
            asyncio.run(self.transcriber.engine.stop())

    def get_input_types(self) -> list[dict]:
        return [{"name": AUDIO_INPUT, "datatype": "BYTES | FP32", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        return [{"name": "text", "datatype": "BYTES", "shape": [1]}, {"name": "segments", "datatype": "BYTES", "shape": [1]}]

    async def predict(self, payload: InferRequest, headers: Optional[dict] = None) -> InferResponse:
        parameters = decode_parameters(request_parameters(payload))
        words = parameters.pop("word_timestamps")
        with_segments = parameters.pop("timestamps") or words
        transcript = await self._transcribe(audio_input(payload), self.transcriber.options(**parameters), words)
        response = transcript_response(self.name, payload.id, transcript, with_segments)
        if self.transcriber.benchmark is not None:  # gRPC answers carry no HTTP header: say it in the response too
            response.parameters[NOTICE_PARAMETER] = self.transcriber.benchmark.notice
        return response

    async def _transcribe(self, tensor: InferInput, options: DecodeOptions, words: bool) -> Transcript:
        if tensor.datatype == "BYTES":
            return await self.transcriber.transcribe_file(encoded_file(tensor), options, words)
        if tensor.datatype == "FP32":
            check_pcm_shape(tensor.shape)
            return await self.transcriber.transcribe_pcm(tensor_values(tensor), options, words)
        raise InvalidRequest(
            f"input {AUDIO_INPUT!r} must be BYTES (an encoded file) or FP32 (16 kHz PCM), got {tensor.datatype}", "audio"
        )


def request_parameters(request: InferRequest) -> dict[str, Any]:
    return to_http_parameters(request.parameters) if request.parameters else {}


def decode_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """v2 request parameters -> keyword arguments of ``Transcriber.options``, plus ``timestamps`` and ``word_timestamps``."""
    known = {"language", "task", "timestamps", "word_timestamps", "temperature", "prompt"}
    unknown = sorted(set(parameters) - known - {"binary_data_output"})
    if unknown:
        raise InvalidRequest(f"unknown parameters {unknown}; accepted: {sorted(known)}", param=unknown[0])
    return {
        "language": _optional_text(parameters, "language"),
        "task": _optional_text(parameters, "task"),
        "prompt": _optional_text(parameters, "prompt"),
        "timestamps": _flag(parameters.get("timestamps", False), "timestamps"),
        "word_timestamps": _flag(parameters.get("word_timestamps", False), "word_timestamps"),
        "temperature": _number(parameters.get("temperature", 0.0)),
    }


def audio_input(request: InferRequest) -> InferInput:
    names = [each.name for each in request.inputs]
    if len(set(names)) != len(names):
        raise InvalidRequest(f"input tensor names must be unique; got {names}", param="inputs")
    tensor = request.get_input_by_name(AUDIO_INPUT)
    if tensor is None:
        raise InvalidRequest(f"the request needs an input tensor named {AUDIO_INPUT!r}; got {names}", param="inputs")
    return tensor


def check_pcm_shape(shape: Sequence[int]) -> None:
    """FP32 PCM is ``[N]`` or ``[1, N]`` with N >= 1: no wildcard, no batch, no extra dimensions."""
    dims = list(shape)
    if not (len(dims) == 1 or (len(dims) == 2 and dims[0] == 1)) or any(not isinstance(d, int) or d < 1 for d in dims):
        raise InvalidRequest(f"FP32 audio must have shape [N] or [1, N] with N >= 1, got {dims}", param="audio")


def tensor_values(tensor: InferInput) -> np.ndarray:
    """The tensor's elements; its shape must hold exactly as many as were sent (no -1, no reshaping)."""
    if any(not isinstance(d, int) or d < 0 for d in tensor.shape):
        raise InvalidRequest(f"input {tensor.name!r} has an invalid shape {list(tensor.shape)}", "audio")
    try:
        values = tensor.as_numpy()
    except (ValueError, TypeError, struct.error) as error:
        raise InvalidRequest(f"input {tensor.name!r} does not match its shape {tensor.shape}: {error}", "audio") from error
    if values.size != math.prod(tensor.shape):
        raise InvalidRequest(f"input {tensor.name!r} holds {values.size} elements but its shape {tensor.shape} says {math.prod(tensor.shape)}", "audio")
    return values


def raw_file(raw: bytes) -> bytes:
    """A binary BYTES element: the file with Triton's 4-byte little-endian length prefix, or the file alone.

    The prefix is taken only when it states exactly the rest of the data; no audio container starts that way.
    """
    if len(raw) >= 4 and struct.unpack_from("<I", raw)[0] == len(raw) - 4:
        return raw[4:]
    return raw


def encoded_file(tensor: InferInput) -> bytes:
    """The single element of a BYTES tensor: the file's bytes (``v2_rest`` has decoded JSON's base64)."""
    if math.prod(tensor.shape) != 1:
        raise InvalidRequest(f"send exactly one audio file per request (shape [1]); got shape {list(tensor.shape)}", "audio")
    if tensor._raw_data is not None:  # binary extension (REST) or raw_input_contents (gRPC)
        return raw_file(tensor._raw_data)
    elements = tensor_values(tensor).reshape(-1)
    element = elements[0]
    if not isinstance(element, bytes):
        raise InvalidAudio("BYTES data must be the audio file (base64-encoded in JSON)", param="audio")
    return element


def transcript_response(
    model_name: str, request_id: Optional[str], transcript: Transcript, with_segments: bool
) -> InferResponse:
    outputs = [InferOutput(name="text", shape=[1], datatype="BYTES", data=[transcript.text])]
    if with_segments:
        segments = [segment_document(segment) for segment in transcript.segments]
        outputs.append(InferOutput(name="segments", shape=[1], datatype="BYTES", data=[json.dumps(segments)]))
    return InferResponse(
        response_id=request_id or str(uuid.uuid4()),
        model_name=model_name,
        infer_outputs=outputs,
        parameters={"language": transcript.language or "", "duration": str(transcript.duration)},
    )


def segment_document(segment: Segment) -> dict:
    document = {"start": segment.start, "end": segment.end, "text": segment.text}
    if segment.words:
        document["words"] = [{"word": w.word.strip(), "start": w.start, "end": w.end} for w in segment.words]
    return document


class AudioDataPlane(DataPlane):
    """KServe's data plane, with readiness that waits for the warm-up. (REST infer bodies are parsed by
    ``v2_rest``: KServe 0.21 turns binary BYTES tensors back into UTF-8 strings, failing on any audio file.)"""

    async def live(self) -> dict[str, str]:
        """Liveness fails when a model's engine died after serving (KServe's default is always alive)."""
        models = self.model_registry.get_models().values()
        return {"status": "alive" if all(model.alive() for model in models) else "dead"}

    async def ready(self) -> bool:
        """Server readiness is model readiness: KServe's default answers True before the warm-up ends."""
        models = self.model_registry.get_models()
        return bool(models) and all([await self.model_registry.is_model_ready(name) for name in models])


def header_length(headers: Mapping[str, str]) -> Optional[int]:
    """The binary tensor data extension's JSON header length, or None for a plain JSON body."""
    value = headers.get("inference-header-content-length")
    return None if value is None else _int(value, "Inference-Header-Content-Length")


def binary_infer_request(body: bytes, json_length: int, model_name: str) -> InferRequest:
    """Parse a binary tensor data extension body: a JSON header, then each tensor's raw bytes in order."""
    try:
        header = orjson.loads(body[:json_length])
        specs = header["inputs"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as error:
        raise InvalidRequest(f"the binary request's JSON header is invalid: {error}", param="inputs") from error
    inputs, raw_inputs, offset = [], [], json_length
    try:
        for spec in specs:
            size = (spec.get("parameters") or {}).get("binary_data_size")
            inputs.append(InferInput(spec["name"], spec["shape"], spec["datatype"], data=spec.get("data")))
            raw_inputs.append(None if size is None else body[offset : offset + int(size)])
            offset += int(size or 0)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InvalidRequest(f"an input in the binary request's JSON header is malformed: {error!r}", "inputs") from error
    if offset != len(body):
        raise InvalidRequest(f"binary_data_size adds up to {offset - json_length} bytes but the body carries {len(body) - json_length}")
    return InferRequest(
        model_name=model_name,
        infer_inputs=inputs,
        request_id=header.get("id"),
        raw_inputs=raw_inputs,
        parameters=header.get("parameters"),
    )


def _optional_text(parameters: Mapping[str, Any], name: str) -> Optional[str]:
    value = parameters.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"parameter {name!r} must be a string", param=name)
    return value


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidRequest(f"parameter {name!r} must be a boolean, got {value!r}", param=name)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise InvalidRequest(f"parameter 'temperature' must be a number, got {value!r}", param="temperature") from error


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError as error:
        raise InvalidRequest(f"{name} must be an integer, got {value!r}") from error
