"""Pure parts of the v2 and OpenAI adapters: parameters, tensors, binary bodies, error shapes, subtitles."""

import base64
import json
from http import HTTPStatus

import numpy as np
import pytest
from kserve import InferInput, InferRequest

from whisper_runtime.errors import AudioTooLong, EngineNotReady, InvalidAudio, InvalidRequest, UnknownModel, UploadTooLarge
from whisper_runtime.server.errors import error_response, http_status
from whisper_runtime.server.subtitles import to_srt, to_vtt
from whisper_runtime.server.v2 import binary_infer_request, decode_parameters, encoded_file
from whisper_runtime.windowing import Segment


def test_parameters_are_typed_and_checked():
    assert decode_parameters({"timestamps": "true", "temperature": "0.2", "language": "en"}) == {
        "language": "en", "task": None, "prompt": None, "timestamps": True, "word_timestamps": False, "temperature": 0.2,
    }  # fmt: skip
    assert decode_parameters({"word_timestamps": True})["word_timestamps"] is True
    with pytest.raises(InvalidRequest, match="unknown parameters"):
        decode_parameters({"langauge": "en"})
    with pytest.raises(InvalidRequest, match="timestamps"):
        decode_parameters({"timestamps": "yes please"})
    with pytest.raises(InvalidRequest, match="temperature"):
        decode_parameters({"temperature": "hot"})
    with pytest.raises(InvalidRequest, match="word_timestamps"):
        decode_parameters({"word_timestamps": 3})


def test_bytes_tensor_from_json_is_base64_and_from_binary_is_raw():
    as_json = InferInput("audio", [1], "BYTES", data=[base64.b64encode(b"RIFF1234").decode()])
    assert encoded_file(as_json) == b"RIFF1234"
    raw = InferInput("audio", [1], "BYTES", data=[b"\x80\x81raw"])
    assert encoded_file(raw) == b"\x80\x81raw"
    with pytest.raises(InvalidAudio):
        encoded_file(InferInput("audio", [1], "BYTES", data=["not base64!"]))
    with pytest.raises(InvalidRequest, match="exactly one"):
        encoded_file(InferInput("audio", [2], "BYTES", data=["QQ==", "QQ=="]))


def test_binary_extension_body_keeps_non_utf8_bytes():
    audio = bytes(range(256)) * 10
    tensor = InferInput("audio", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([audio], dtype=object), binary_data=True)
    body, json_length = InferRequest(model_name="whisper", infer_inputs=[tensor], parameters={"language": "en"}).to_rest()
    request = binary_infer_request(body, json_length, "whisper")
    assert encoded_file(request.get_input_by_name("audio")) == audio
    assert request.parameters == {"language": "en"}


def test_binary_extension_fp32_and_size_mismatch():
    pcm = np.linspace(-1, 1, 1000, dtype=np.float32)
    tensor = InferInput("audio", [1000], "FP32")
    tensor.set_data_from_numpy(pcm, binary_data=True)
    body, json_length = InferRequest(model_name="whisper", infer_inputs=[tensor]).to_rest()
    request = binary_infer_request(body, json_length, "whisper")
    np.testing.assert_array_equal(request.get_input_by_name("audio").as_numpy(), pcm)
    with pytest.raises(InvalidRequest, match="binary_data_size"):
        binary_infer_request(body[:-10], json_length, "whisper")
    with pytest.raises(InvalidRequest, match="JSON header"):
        binary_infer_request(b"{not json" + body, json_length, "whisper")


@pytest.mark.parametrize(
    "error,status",
    [
        (InvalidAudio("x"), HTTPStatus.BAD_REQUEST),
        (AudioTooLong("x"), HTTPStatus.BAD_REQUEST),
        (UploadTooLarge("x"), HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
        (UnknownModel("x"), HTTPStatus.NOT_FOUND),
        (EngineNotReady("x"), HTTPStatus.SERVICE_UNAVAILABLE),
    ],
)
def test_status_of_each_error(error, status):
    assert http_status(error) == status


def test_error_shapes_follow_the_route():
    error = UploadTooLarge("too big", param="file")
    v2 = error_response("/v2/models/whisper/infer", error)
    assert v2.status_code == 413 and json.loads(v2.body) == {"error": "too big"}
    openai = error_response("/openai/v1/audio/transcriptions", error)
    assert json.loads(openai.body) == {
        "error": {"message": "too big", "type": "invalid_request_error", "param": "file", "code": "request_entity_too_large"}
    }


def test_subtitles():
    segments = [Segment(0.0, 2.5, " Hello."), Segment(3661.25, 3662.0, "Bye.")]
    assert to_srt(segments) == "1\n00:00:00,000 --> 00:00:02,500\nHello.\n\n2\n01:01:01,250 --> 01:01:02,000\nBye.\n"
    assert to_vtt(segments) == "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello.\n\n01:01:01.250 --> 01:01:02.000\nBye.\n"
