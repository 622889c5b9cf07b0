"""``whisper-runtime``: KServe's model server with a Whisper model, v2 and OpenAI routes.

Arguments are parsed once, here: KServe's own model-server flags plus the shared contract's.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from . import benchmark, contract


#: Room in a gRPC message for what surrounds the audio: tensor names, shape, parameters.
GRPC_ENVELOPE_BYTES = 1 << 20


def build_parser() -> argparse.ArgumentParser:
    from kserve.model_server import parser as kserve_parser

    parser = argparse.ArgumentParser(
        prog="whisper-runtime",
        parents=[kserve_parser],
        description="Serve Whisper speech-to-text over KServe v2 (REST, gRPC) and the OpenAI audio API.",
    )
    parser.add_argument("--model_dir", required=True, type=Path, help="Hugging Face format Whisper checkpoint")
    limits = parser.add_argument_group("client timeouts (seconds)")
    limits.add_argument("--header_timeout", type=float, default=10.0, help="request line and headers must arrive within this")
    limits.add_argument("--body_idle_timeout", type=float, default=30.0, help="longest pause between two chunks of a body")
    limits.add_argument("--body_timeout", type=float, default=600.0, help="a whole request body must arrive within this")
    benchmark.add_arguments(parser)
    return contract.add_arguments(parser)


def build_engine(args: contract.RuntimeArgs, model_dir: Path, benchmark_mode: Optional[benchmark.BenchmarkMode] = None):
    """The engine the contract asks for; vLLM is imported only when chosen (it needs a GPU)."""
    if args.engine == "vllm":
        from .engines.vllm_engine import VllmEngine

        return VllmEngine(model_dir, args, benchmark_mode)
    from .engines.transformers_engine import TransformersEngine

    return TransformersEngine(model_dir, dtype=args.dtype, max_batch=args.max_num_seqs, benchmark=benchmark_mode)


def main(argv: Optional[Sequence[str]] = None) -> None:
    from kserve import model_server
    from kserve.model_server import app

    from .aligner import WordAligner
    from .audio import AudioLimits
    from .memory import cap_malloc_arenas
    from .metrics import RequestMetricsMiddleware, track_queue_depth
    from .server.auth import ApiKeyInterceptor, ApiKeyMiddleware, load_api_key
    from .server.demo import install_demo_page
    from .server.errors import ErrorBoundaryMiddleware, install_error_handlers
    from .server.http_server import BenchmarkNoticeMiddleware, WhisperModelServer, install_refusals
    from .server.openai import OpenAIAudioRoutes
    from .server.realtime import RealtimeRoutes
    from .server.request_limits import BodyTimeouts, RequestLimitsMiddleware
    from .server.v2 import AudioDataPlane, WhisperModel
    from .server.v2_rest import install_infer_route
    from .transcriber import RequestDefaults, Transcriber

    cap_malloc_arenas()
    namespace = build_parser().parse_args(argv)
    runtime_args = contract.RuntimeArgs.from_namespace(namespace)
    benchmark_mode = benchmark.from_namespace(namespace)
    api_key = load_api_key(runtime_args.api_key_file)  # before the model loads: a missing Secret fails fast
    limits = AudioLimits.from_megabytes(runtime_args.max_upload_mb, runtime_args.max_audio_seconds)
    engine = build_engine(runtime_args, namespace.model_dir, benchmark_mode)
    transcriber = Transcriber(
        engine,
        limits,
        RequestDefaults(language=runtime_args.default_language, task=runtime_args.default_task),
        # Word alignment needs the real weights, which a benchmark server does not have.
        aligner=None if benchmark_mode else WordAligner(namespace.model_dir, engine.vocabulary, dtype=runtime_args.dtype),
        benchmark=benchmark_mode,
        chunk_length_s=runtime_args.chunk_length_s,
    )
    model = WhisperModel(namespace.model_name, transcriber)
    model.load()

    install_error_handlers(app)
    install_refusals(app)
    OpenAIAudioRoutes(transcriber, namespace.model_name).install(app)
    RealtimeRoutes(transcriber, namespace.model_name).install(app)
    install_demo_page(app)
    timeouts = BodyTimeouts(idle_seconds=namespace.body_idle_timeout, total_seconds=namespace.body_timeout)
    app.add_middleware(RequestLimitsMiddleware, limits=limits, timeouts=timeouts)
    app.add_middleware(RequestMetricsMiddleware)
    if api_key:  # outside the metrics: a refused request never reaches a route, so its raw path is no label
        app.add_middleware(ApiKeyMiddleware, api_key=api_key)
    app.add_middleware(ErrorBoundaryMiddleware)
    if benchmark_mode is not None:  # outermost, so that even the error boundary's answers carry it
        logging.getLogger("whisper_runtime").warning("BENCHMARK MODE: %s", benchmark_mode.notice)
        app.add_middleware(BenchmarkNoticeMiddleware, notice=benchmark_mode.notice)
    track_queue_depth(engine.queue_depth)

    # KServe's gRPC server reads its message limit from the flags it parsed at import (8 MiB by default):
    # gRPC takes the same uploads as the REST routes.
    model_server.args.grpc_max_receive_message_length = limits.max_bytes + GRPC_ENVELOPE_BYTES
    server = WhisperModelServer(
        header_timeout=namespace.header_timeout,
        http_port=namespace.http_port,
        grpc_port=namespace.grpc_port,
        enable_grpc=namespace.enable_grpc,
        grpc_interceptors=(ApiKeyInterceptor(api_key),) if api_key else (),
        max_threads=namespace.max_threads,
        enable_docs_url=namespace.enable_docs_url,
        enable_latency_logging=namespace.enable_latency_logging,
    )
    server.dataplane = AudioDataPlane(model_registry=server.registered_models)
    install_infer_route(app, server.dataplane)
    server.start([model])
