"""vLLM engine: Whisper on vLLM's AsyncLLM with fp8 KV cache, torch.compile and CUDA graphs.

vLLM's scheduler batches every window of every concurrent request on its own, so each window is
simply submitted as one request. Each window's log-mel features are computed by vLLM's renderer in
its thread pool (as vLLM's own speech-to-text server does), not on the event loop: handed a raw
prompt, ``AsyncLLM.generate`` would compute them inline and serialize every request behind them.
vLLM is imported only when this engine starts (GPU machines).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from pathlib import Path
from typing import Any, Optional, Sequence

from ..benchmark import BenchmarkMode
from ..contract import SAMPLE_RATE, RuntimeArgs
from ..tokens import WhisperVocabulary
from .base import MAX_NEW_TOKENS, DecodeOptions, WindowRequest, WindowResult
from .loop_stop import vllm_repetition_detection
from .timestamp_rules import DETECT_LANGUAGE_THEN, OPT_IN, VLLM_LOGITS_PROCESSOR

#: Whisper's decoder context, in tokens.
MAX_MODEL_LEN = 448
#: Threads computing log-mel features (torch's STFT releases the GIL, so they run in parallel).
RENDER_WORKERS = min(8, os.cpu_count() or 1)


def engine_args_from(args: RuntimeArgs, model_dir: Path, benchmark: Optional[BenchmarkMode] = None) -> dict[str, Any]:
    """The contract's flags as vLLM ``AsyncEngineArgs`` keyword arguments (pure: no vLLM import)."""
    compilation: dict[str, Any] = {"mode": args.compilation_level}
    if args.cuda_graphs and args.compilation_level == 0:
        # Without this, compile mode 0 switches CUDA graphs off too; full decode graphs need no compile.
        compilation["cudagraph_mode"] = "FULL_DECODE_ONLY"
    if args.cuda_graph_sizes:
        compilation["cudagraph_capture_sizes"] = list(args.cuda_graph_sizes)
    engine_args = {
        "model": str(model_dir),
        "dtype": args.dtype,
        "kv_cache_dtype": args.kv_cache_dtype,
        "compilation_config": compilation,
        "enforce_eager": not args.cuda_graphs,
        "max_num_seqs": args.max_num_seqs,
        "max_num_batched_tokens": args.max_num_batched_tokens,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "tensor_parallel_size": args.tensor_parallel_size,
        "max_model_len": MAX_MODEL_LEN,
        "limit_mm_per_prompt": {"audio": 1},
        "renderer_num_workers": RENDER_WORKERS,
        # Windows of real traffic never repeat; the cache would only cost hashing and memory (and it is not
        # thread-safe, so vLLM refuses it with more than one renderer worker).
        "mm_processor_cache_gb": 0,
        # Whisper's timestamp rules, which vLLM does not apply itself (timestamp_rules.py says why they matter).
        "logits_processors": [VLLM_LOGITS_PROCESSOR],
    }
    if args.quantization != "none":
        engine_args["quantization"] = args.quantization
    if benchmark is not None:
        engine_args["load_format"] = "dummy"  # random weights of config.json's shape
    return engine_args


def fixed_length(benchmark: Optional[BenchmarkMode], room: int) -> dict[str, Any]:
    """How many tokens a window decodes: at most ``MAX_NEW_TOKENS`` when serving; in benchmark mode exactly its
    fixed count (which may pass the cap: benchmarks sweep up to the decoder's room)."""
    if benchmark is None:
        return {"max_tokens": min(room, MAX_NEW_TOKENS)}
    tokens = min(benchmark.tokens_per_window, room)
    return {"max_tokens": tokens, "min_tokens": tokens, "ignore_eos": True}


def window_prompt(audio, decoder_prompt: str, feature_device: str = "cpu") -> dict[str, Any]:
    """vLLM's explicit encoder/decoder prompt for one Whisper window.

    vLLM hands ``mm_processor_kwargs`` to Transformers' ``WhisperFeatureExtractor``, whose ``device`` moves the
    STFT and mel projection there (the features come back to the host for vLLM to ship to its engine core).
    """
    encoder_prompt: dict[str, Any] = {"prompt": "", "multi_modal_data": {"audio": (audio, SAMPLE_RATE)}}
    if feature_device != "cpu":
        encoder_prompt["mm_processor_kwargs"] = {"device": feature_device}
    return {"encoder_prompt": encoder_prompt, "decoder_prompt": decoder_prompt}


class VllmEngine:
    name = "vllm"

    def __init__(self, model_dir: Path, args: RuntimeArgs, benchmark: Optional[BenchmarkMode] = None):
        self._engine_args = engine_args_from(args, Path(model_dir), benchmark)
        self._feature_device = args.feature_device
        self._benchmark = benchmark
        self.vocabulary = WhisperVocabulary.from_model_dir(Path(model_dir))
        self.multilingual = self.vocabulary.multilingual
        self._engine = None
        self._in_flight = 0

    async def start(self) -> None:
        # FlashInfer's sampler fails on some driver/toolkit pairs (seen on the H100); torch's is as fast here.
        os.environ.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self._engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**self._engine_args))

    async def transcribe(self, windows: Sequence[WindowRequest]) -> list[WindowResult]:
        """One vLLM request per window; a window without a language detects it inside that same request."""
        prompts = [self.vocabulary.decoder_prompt(window.options) for window in windows]
        engine_inputs = await self._render([window.audio for window in windows], prompts)
        outputs = await asyncio.gather(*(
            self._generate(engine_input, self._sampling(window.options, engine_input))
            for window, engine_input in zip(windows, engine_inputs)
        ))
        return [self._result(window, *output) for window, output in zip(windows, outputs)]

    def healthy(self) -> bool:
        return self._engine is not None and not self._engine.errored

    def queue_depth(self) -> int:
        return self._in_flight

    async def stop(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None

    def _result(self, window: WindowRequest, token_ids: list[int], finish_reason: Optional[str]) -> WindowResult:
        seconds = len(window.audio) / SAMPLE_RATE
        result = self.vocabulary.parse(token_ids, seconds, stopped_as_loop=finish_reason == "repetition")
        return dataclasses.replace(result, language=result.language or window.options.language)

    async def _render(self, audios: Sequence, decoder_prompts: Sequence[str]) -> list:
        """vLLM engine inputs (features computed in the renderer's thread pool, off the event loop)."""
        from vllm.renderers.inputs.preprocess import parse_enc_dec_prompt

        prompts = [
            parse_enc_dec_prompt(window_prompt(audio, prompt, self._feature_device))
            for audio, prompt in zip(audios, decoder_prompts)
        ]
        return list(await self._engine.renderer.render_cmpl_async(prompts))

    def _sampling(self, options: DecodeOptions, engine_input):
        from vllm import SamplingParams
        from vllm.sampling_params import RepetitionDetectionParams, RequestOutputKind

        # The renderer has tokenized the decoder prompt already (start token included).
        prompt_tokens = len(engine_input["decoder_prompt"]["prompt_token_ids"])
        rules: dict[str, Any] = {OPT_IN: True}
        if self.vocabulary.detects_language(options):
            rules[DETECT_LANGUAGE_THEN] = self.vocabulary.task_token_id(options.task)
        # A looping window stops early (loop_stop.py); benchmark windows decode their fixed length whatever they say.
        loops = {} if self._benchmark else {"repetition_detection": RepetitionDetectionParams(**vllm_repetition_detection())}
        return SamplingParams(
            temperature=options.temperature,
            **fixed_length(self._benchmark, MAX_MODEL_LEN - prompt_tokens),
            **loops,
            skip_special_tokens=False,
            # Only the finished window's token ids are used (WhisperVocabulary parses them): neither streaming
            # every token through asyncio nor vLLM's incremental detokenization is needed.
            output_kind=RequestOutputKind.FINAL_ONLY,
            detokenize=False,
            extra_args=rules,
        )

    async def _generate(self, engine_input, sampling) -> tuple[list[int], Optional[str]]:
        """The window's generated token ids, and why vLLM stopped it ("stop", "length", "repetition")."""
        self._in_flight += 1
        try:
            final = None
            async for output in self._engine.generate(engine_input, sampling, uuid.uuid4().hex):
                final = output
            if final is None:
                return [], None
            return list(final.outputs[0].token_ids), final.outputs[0].finish_reason
        finally:
            self._in_flight -= 1
