"""``whisper-runtime``: KServe's model server with a Whisper model, v2 and OpenAI routes.

Arguments are parsed once, here: KServe's own model-server flags plus the shared contract's.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from . import contract


def build_parser() -> argparse.ArgumentParser:
    from kserve.model_server import parser as kserve_parser

    parser = argparse.ArgumentParser(
        prog="whisper-runtime",
        parents=[kserve_parser],
        description="Serve Whisper speech-to-text over KServe v2 (REST, gRPC) and the OpenAI audio API.",
    )
    parser.add_argument("--model_dir", required=True, type=Path, help="Hugging Face format Whisper checkpoint")
    return contract.add_arguments(parser)


def build_engine(args: contract.RuntimeArgs, model_dir: Path):
    """The engine the contract asks for; vLLM is imported only when chosen (it needs a GPU)."""
    if args.engine == "vllm":
        from .engines.vllm_engine import VllmEngine

        return VllmEngine(model_dir, args)
    from .engines.transformers_engine import TransformersEngine

    return TransformersEngine(model_dir, dtype=args.dtype, max_batch=args.max_num_seqs)


def main(argv: Optional[Sequence[str]] = None) -> None:
    from kserve import ModelServer
    from kserve.model_server import app

    from .aligner import WordAligner
    from .audio import AudioLimits
    from .metrics import RequestMetricsMiddleware, track_queue_depth
    from .server.demo import install_demo_page
    from .server.errors import install_error_handlers
    from .server.openai import OpenAIAudioRoutes
    from .server.realtime import RealtimeRoutes
    from .server.upload_limit import UploadLimitMiddleware
    from .server.v2 import AudioDataPlane, WhisperModel
    from .transcriber import RequestDefaults, Transcriber

    namespace = build_parser().parse_args(argv)
    runtime_args = contract.RuntimeArgs.from_namespace(namespace)
    limits = AudioLimits.from_megabytes(runtime_args.max_upload_mb, runtime_args.max_audio_seconds)
    engine = build_engine(runtime_args, namespace.model_dir)
    transcriber = Transcriber(
        engine,
        limits,
        RequestDefaults(language=runtime_args.default_language, task=runtime_args.default_task),
        aligner=WordAligner(namespace.model_dir, engine.vocabulary, dtype=runtime_args.dtype),
    )
    model = WhisperModel(namespace.model_name, transcriber)
    model.load()

    install_error_handlers(app)
    OpenAIAudioRoutes(transcriber, namespace.model_name).install(app)
    RealtimeRoutes(transcriber, namespace.model_name).install(app)
    install_demo_page(app)
    app.add_middleware(UploadLimitMiddleware, limits=limits)
    app.add_middleware(RequestMetricsMiddleware)
    track_queue_depth(engine.queue_depth)

    server = ModelServer(
        http_port=namespace.http_port,
        grpc_port=namespace.grpc_port,
        enable_grpc=namespace.enable_grpc,
        max_threads=namespace.max_threads,
        enable_docs_url=namespace.enable_docs_url,
        enable_latency_logging=namespace.enable_latency_logging,
    )
    server.dataplane = AudioDataPlane(model_registry=server.registered_models)
    server.start([model])
