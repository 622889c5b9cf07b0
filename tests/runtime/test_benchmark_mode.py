"""Benchmark mode (random weights of a model's shape, a fixed number of tokens per window): the same work for
every engine, kept out of serving, and announced on every answer."""

from __future__ import annotations

import argparse
import asyncio
import base64
from pathlib import Path

import numpy as np
import pytest
from conftest import BENCHMARK_TOKENS
from kserve import InferenceGRPCClient, InferInput, InferRequest
from runtime_samples import sine, wav_bytes
from whisper_runtime import benchmark, contract
from whisper_runtime.audio import AudioLimits
from whisper_runtime.engines.base import DecodeOptions, WindowRequest
from whisper_runtime.engines.transformers_engine import TransformersEngine
from whisper_runtime.engines.vllm_engine import engine_args_from, fixed_length
from whisper_runtime.transcriber import Transcriber
from whisper_runtime.windowing import cut_windows

ROOT = Path(__file__).resolve().parents[2]
NOTICE = benchmark.BenchmarkMode(BENCHMARK_TOKENS).notice


def test_vllm_engine_loads_random_weights_and_decodes_exactly_the_tokens_asked_for():
    mode = benchmark.BenchmarkMode(128)
    assert engine_args_from(contract.RuntimeArgs(), Path("/m"), mode)["load_format"] == "dummy"
    assert "load_format" not in engine_args_from(contract.RuntimeArgs(), Path("/m"))
    assert fixed_length(mode, room=445) == {"max_tokens": 128, "min_tokens": 128, "ignore_eos": True}
    assert fixed_length(benchmark.BenchmarkMode(440), room=300) == {"max_tokens": 300, "min_tokens": 300, "ignore_eos": True}


def test_benchmark_mode_refuses_token_counts_the_decoder_cannot_hold():
    for tokens in (0, 441):
        with pytest.raises(ValueError, match="tokens per window"):
            benchmark.BenchmarkMode(tokens)


def test_the_operator_cannot_reach_benchmark_mode():
    """Not in the argument contract the operator renders from, nor in the CRD or the chart."""
    contract_flags = contract.add_arguments(argparse.ArgumentParser())._option_string_actions
    assert not [flag for flag in contract_flags if "benchmark" in flag]
    for folder in ("crds", "charts"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                assert "benchmark_" not in path.read_text(errors="replace"), path


def test_every_window_decodes_the_same_fixed_number_of_tokens_once(tiny_shape_dir):
    """The difference between 8 and 16 tokens per window is exactly 8 in every window, whatever the random text,
    and the transcriber neither resumes nor retries a window."""

    async def token_counts(tokens: int) -> tuple[list[int], int]:
        mode = benchmark.BenchmarkMode(tokens)
        engine = TransformersEngine(tiny_shape_dir, dtype="float32", max_batch=4, benchmark=mode)
        await engine.start()
        audio = sine(30.0, amplitude=0.3).astype(np.float32)
        windows = [WindowRequest(audio, DecodeOptions(language="en")), WindowRequest(audio[:160000], DecodeOptions(language="de"))]
        counts = [result.num_tokens for result in await engine.transcribe(windows)]
        transcriber = Transcriber(engine, AudioLimits(2**24, 600), benchmark=mode)
        recording = np.tile(audio, 3)
        finals = [final async for final in transcriber.final_windows(recording, transcriber.options(language="en"))]
        assert [final.window.offset_seconds for final in finals] == [window.offset_seconds for window in cut_windows(recording)]
        await engine.stop()
        return counts, len(finals)

    short, short_finals = asyncio.run(token_counts(8))
    long, long_finals = asyncio.run(token_counts(16))
    assert [b - a for a, b in zip(short, long)] == [8, 8]
    assert short_finals == long_finals >= 3  # 90 s: every window once, none resumed


def test_a_benchmark_server_says_so_on_every_answer(benchmark_server):
    import httpx

    with httpx.Client(base_url=benchmark_server.http_url, timeout=120) as http:
        ready = http.get("/v2/health/ready")
        assert ready.headers["x-whisper-benchmark-mode"] == NOTICE
        wav = wav_bytes(sine(3.0, amplitude=0.3))
        openai_answer = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data={"model": "whisper"})
        assert openai_answer.status_code == 200 and openai_answer.headers["x-whisper-benchmark-mode"] == NOTICE
        v2 = http.post("/v2/models/whisper/infer", json={"inputs": [{"name": "audio", "shape": [1], "datatype": "BYTES",
                                                                     "data": [base64.b64encode(wav).decode()]}]})
        assert v2.status_code == 200 and v2.json()["parameters"]["benchmark_mode"] == NOTICE
        refused = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"not audio")}, data={"model": "whisper"})
        assert refused.status_code == 400 and refused.headers["x-whisper-benchmark-mode"] == NOTICE
        words = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)},
                          data={"model": "whisper", "response_format": "verbose_json", "timestamp_granularities[]": "word"})
        assert words.status_code == 400 and "word timestamps" in words.json()["error"]["message"]
    assert "BENCHMARK MODE" in benchmark_server.log.read_text()


async def test_a_benchmark_server_marks_grpc_answers_too(benchmark_server):
    client = InferenceGRPCClient(benchmark_server.grpc_address, timeout=120)
    tensor = InferInput("audio", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([wav_bytes(sine(3.0, amplitude=0.3))], dtype=object), binary_data=True)
    response = await client.infer(InferRequest(model_name="whisper", infer_inputs=[tensor]))
    assert response.parameters["benchmark_mode"].string_param == NOTICE
    await client.close()
