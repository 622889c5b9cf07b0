"""The v2 REST infer route, with a request parser made for audio.

KServe's own route lets FastAPI parse a JSON body with the standard library, validates it with pydantic,
and leaves the base64 audio for a second pass: about 3 s of CPU for a 46-minute WAV (118 MB of base64) on
a busy host, all of it on the event loop before the first window is decoded. Here the JSON structure is
checked by msgspec without copying the audio string out of the body, and the base64 is decoded by
pybase64's SIMD decoder straight from the body's bytes: 0.2 s for the same file. Binary-extension bodies
go through ``binary_infer_request``. Both end in KServe's data plane, as KServe's route does; this route
is registered first, so it answers ``POST /v2/models/{name}/infer`` (KServe's stays in the API docs).
"""

from __future__ import annotations

import binascii
from typing import Any, Optional

import msgspec
import numpy as np
import orjson
import pybase64
from fastapi import FastAPI, Request, Response
from kserve import InferRequest
from kserve.errors import ModelNotReady
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import InferInput, RequestedOutput

from ..errors import InvalidAudio, InvalidRequest
from .v2 import AUDIO_INPUT, binary_infer_request, header_length

INFER_PATH = "/v2/models/{model_name}/infer"


class _JsonTensor(msgspec.Struct):
    name: str
    shape: list[int]
    datatype: str
    #: Left as raw JSON: the audio is decoded from it in place, anything else as KServe would.
    data: msgspec.Raw = msgspec.Raw(b"null")
    parameters: Optional[dict[str, Any]] = None


class _JsonOutput(msgspec.Struct):
    name: str
    parameters: Optional[dict[str, Any]] = None


class _JsonRequest(msgspec.Struct):
    inputs: list[_JsonTensor]
    id: Optional[str] = None
    parameters: Optional[dict[str, Any]] = None
    outputs: Optional[list[_JsonOutput]] = None


_REQUEST_DECODER = msgspec.json.Decoder(_JsonRequest)
_FLAT_ELEMENTS_DECODER = msgspec.json.Decoder(list[msgspec.Raw])


def json_infer_request(body: bytes, model_name: str) -> InferRequest:
    """A v2 JSON body -> KServe's ``InferRequest``, the ``audio`` BYTES tensor's base64 already decoded."""
    try:
        request = _REQUEST_DECODER.decode(body)
    except msgspec.DecodeError as error:
        raise InvalidRequest(f"the request body is not a valid v2 inference request: {error}", "inputs") from error
    inputs = [InferInput(tensor.name, tensor.shape, tensor.datatype, data=_tensor_data(tensor), parameters=tensor.parameters)
              for tensor in request.inputs]
    outputs = [RequestedOutput(name=output.name, parameters=output.parameters) for output in request.outputs or ()]
    return InferRequest(model_name=model_name, infer_inputs=inputs, request_id=request.id,
                        parameters=request.parameters, request_outputs=outputs or None)


def _tensor_data(tensor: _JsonTensor) -> Any:
    if tensor.name == AUDIO_INPUT and tensor.datatype == "BYTES":
        return [_base64_audio(element) for element in _string_elements(tensor.data)]
    return msgspec.json.decode(tensor.data)


def _string_elements(data: msgspec.Raw) -> list[Any]:
    """The elements of a flat list as raw JSON (no copy of the strings); a nested list, flattened."""
    try:
        elements = _FLAT_ELEMENTS_DECODER.decode(data)
    except msgspec.ValidationError:  # not a list at all: the message below says what is expected
        return [data]
    if all(bytes(memoryview(element)[:1]) != b"[" for element in elements):
        return elements
    return list(np.asarray(msgspec.json.decode(data), dtype=object).reshape(-1))


_NOT_BASE64 = "BYTES data in JSON must be the base64-encoded audio file"


def _base64_audio(element: Any) -> bytes:
    """One base64 JSON string -> the file's bytes. Decoded straight from the body first (a base64 string
    needs no escapes); a string with escapes (e.g. ``\\/``), or a nested list's string, is unescaped first."""
    if isinstance(element, msgspec.Raw):
        raw = memoryview(element)
        if len(raw) >= 2 and raw[0] == raw[-1] == ord('"'):
            try:
                return pybase64.b64decode(raw[1:-1], validate=True)
            except (binascii.Error, ValueError):
                pass
        element = msgspec.json.decode(element)
    if not isinstance(element, str):
        raise InvalidAudio(_NOT_BASE64, param="audio")
    try:
        return pybase64.b64decode(element, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidAudio(_NOT_BASE64, param="audio") from error


def install_infer_route(app: FastAPI, dataplane: DataPlane) -> None:
    """Register ``POST /v2/models/{name}/infer`` ahead of KServe's (call before the server starts)."""

    async def infer(request: Request, model_name: str) -> Response:
        if not await dataplane.model_ready(model_name, True):  # before a body of up to --max_upload_mb is parsed
            raise ModelNotReady(model_name)
        body = await request.body()
        headers = dict(request.headers)
        json_length = header_length(headers)
        if json_length is None:
            infer_request = json_infer_request(body, model_name)
        else:
            infer_request = binary_infer_request(body, json_length, model_name)
        response, _ = await dataplane.infer(model_name=model_name, request=infer_request, headers=headers)
        encoded, response_headers = dataplane.encode(model_name=model_name, response=response, headers=headers,
                                                     req_attributes={})
        response_headers.pop("content-length", None)
        response_headers.pop("content-type", None)
        if isinstance(encoded, bytes):
            return Response(encoded, media_type="application/octet-stream", headers=response_headers)
        return Response(orjson.dumps(encoded), media_type="application/json", headers=response_headers)

    app.add_api_route(INFER_PATH, infer, methods=["POST"], include_in_schema=False)
