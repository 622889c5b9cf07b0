"""Engine pieces that need no model: vLLM argument mapping and prompts, the micro-batcher."""

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from whisper_runtime.contract import RuntimeArgs
from whisper_runtime.engines.batching import MicroBatcher
from whisper_runtime.engines.vllm_engine import RENDER_WORKERS, engine_args_from, window_prompt


def test_vllm_args_with_every_optimisation():
    args = RuntimeArgs(cuda_graph_sizes=(1, 8, 32), max_num_seqs=32, max_num_batched_tokens=6000,
                       gpu_memory_utilization=0.8, tensor_parallel_size=2)
    assert engine_args_from(args, Path("/mnt/models")) == {
        "model": "/mnt/models",
        "dtype": "bfloat16",
        "kv_cache_dtype": "fp8",
        "compilation_config": {"mode": 3, "cudagraph_capture_sizes": [1, 8, 32]},
        "enforce_eager": False,
        "max_num_seqs": 32,
        "max_num_batched_tokens": 6000,
        "gpu_memory_utilization": 0.8,
        "tensor_parallel_size": 2,
        "max_model_len": 448,
        "limit_mm_per_prompt": {"audio": 1},
        "renderer_num_workers": RENDER_WORKERS,
        "mm_processor_cache_gb": 0,
        "logits_processors": ["whisper_runtime.engines.vllm_timestamp_rules:WhisperTimestampRules"],
    }


def test_vllm_args_ablation_eager_no_compile_no_fp8():
    mapped = engine_args_from(RuntimeArgs(kv_cache_dtype="auto", compilation_level=0, cuda_graphs=False), Path("/m"))
    assert mapped["kv_cache_dtype"] == "auto"
    assert mapped["compilation_config"] == {"mode": 0}
    assert mapped["enforce_eager"] is True


def test_vllm_args_keep_cuda_graphs_without_compile():
    mapped = engine_args_from(RuntimeArgs(compilation_level=0), Path("/m"))
    assert mapped["compilation_config"] == {"mode": 0, "cudagraph_mode": "FULL_DECODE_ONLY"}
    assert mapped["enforce_eager"] is False


def test_vllm_compile_cache_follows_vllm_cache_root():
    """No cache_dir: vLLM keeps torch.compile's artifacts under VLLM_CACHE_ROOT/torch_compile_cache/<hash>, which the
    operator points at the endpoint's cache claim (spec.cache)."""
    assert "cache_dir" not in engine_args_from(RuntimeArgs(), Path("/mnt/models"))["compilation_config"]


def test_vllm_window_prompt_is_explicit_encoder_decoder():
    audio = np.zeros(16000, np.float32)
    prompt = window_prompt(audio, "<|startoftranscript|><|en|><|transcribe|>")
    assert prompt["encoder_prompt"]["prompt"] == ""
    samples, rate = prompt["encoder_prompt"]["multi_modal_data"]["audio"]
    assert samples is audio and rate == 16000
    assert prompt["decoder_prompt"] == "<|startoftranscript|><|en|><|transcribe|>"
    assert "mm_processor_kwargs" not in prompt["encoder_prompt"]  # features on the host unless asked otherwise


def test_features_on_the_gpu_are_asked_of_the_feature_extractor_vllm_calls():
    """``--feature_device cuda`` reaches Transformers' feature extractor the way vLLM forwards a prompt's
    ``mm_processor_kwargs``: as keyword arguments of ``WhisperProcessor`` (checked here on the CPU, CI's only device:
    the keyword is accepted and the features are Whisper's)."""
    from transformers import WhisperProcessor
    from whisper_devkit.models import ensure_model

    audio = np.sin(np.arange(16000 * 3) / 16000 * 2 * np.pi * 440).astype(np.float32)
    prompt = window_prompt(audio, "<|startoftranscript|>", feature_device="cuda")
    assert prompt["encoder_prompt"]["mm_processor_kwargs"] == {"device": "cuda"}
    processor = WhisperProcessor.from_pretrained(ensure_model("tiny.en"))
    plain = processor(audio=audio, sampling_rate=16000, return_tensors="np").input_features
    with_device = processor(audio=audio, sampling_rate=16000, return_tensors="np", device="cpu").input_features
    assert with_device.shape == plain.shape == (1, 80, 3000)
    np.testing.assert_allclose(with_device, plain, atol=1e-5)


async def test_micro_batcher_shares_a_batch_across_concurrent_callers():
    batches: list[list[int]] = []
    release = threading.Event()

    def decode(items):
        release.wait(5)
        batches.append(list(items))
        return [item * 10 for item in items]

    batcher = MicroBatcher(decode, max_batch=8, max_wait_seconds=0.05)
    batcher.start()
    first = asyncio.create_task(batcher.submit([1]))
    await asyncio.sleep(0.2)  # the first batch is now decoding, alone
    others = [asyncio.create_task(batcher.submit([n, n + 1])) for n in (2, 4, 6)]
    await asyncio.sleep(0.1)
    assert batcher.depth() == 6
    release.set()
    assert await first == [10]
    assert [await task for task in others] == [[20, 30], [40, 50], [60, 70]]
    assert batches == [[1], [2, 3, 4, 5, 6, 7]]
    await batcher.stop()
    assert not batcher.running


async def test_micro_batcher_survives_a_failing_batch():
    def decode(items):
        if 0 in items:
            raise RuntimeError("boom")
        return list(items)

    batcher = MicroBatcher(decode, max_batch=4, max_wait_seconds=0.001)
    batcher.start()
    with pytest.raises(RuntimeError, match="boom"):
        await batcher.submit([0])
    assert await batcher.submit([3]) == [3]
    await batcher.stop()


async def test_micro_batcher_fails_only_the_window_that_broke_the_batch():
    """Issue 14.3: one bad window failed every request it shared a batch with (25 of 50 innocent requests got 500)."""

    def decode(items):
        if "poison" in items:
            raise ValueError("this window breaks the batch")
        return [item.upper() for item in items]

    batcher = MicroBatcher(decode, max_batch=8, max_wait_seconds=0.05)
    batcher.start()
    try:
        results = await asyncio.gather(
            *(batcher.submit([f"request {index}"]) for index in range(5)),
            batcher.submit(["poison"]),
            return_exceptions=True,
        )
    finally:
        await batcher.stop()
    assert results[:5] == [[f"REQUEST {index}"] for index in range(5)]
    assert isinstance(results[5], ValueError)


async def test_micro_batcher_takes_the_lowest_key_first():
    """A resumed rest (key: its place in the recording) overtakes the later windows already waiting."""
    release = threading.Event()
    batches: list[list[float]] = []

    def decode(items):
        release.wait(5)
        batches.append(list(items))
        return list(items)

    batcher = MicroBatcher(decode, max_batch=2, max_wait_seconds=0.001, key=lambda item: item)
    batcher.start()
    first = asyncio.create_task(batcher.submit([0.0]))
    await asyncio.sleep(0.1)  # decoding alone, held until released
    later = asyncio.create_task(batcher.submit([60.0, 90.0, 120.0]))
    await asyncio.sleep(0.05)
    rest = asyncio.create_task(batcher.submit([20.0]))
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(first, later, rest)
    assert batches == [[0.0], [20.0, 60.0], [90.0, 120.0]]
    await batcher.stop()
