"""Prometheus metrics, served by KServe's own ``/metrics`` (the default registry)."""

from __future__ import annotations

import time
from typing import Callable

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("whisper_requests_total", "Transcription requests answered", ["route", "status"])
LATENCY = Histogram(
    "whisper_request_latency_seconds",
    "Wall time of transcription requests",
    ["route"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
AUDIO_SECONDS = Counter("whisper_audio_seconds_total", "Seconds of audio transcribed")
RTFX = Histogram(
    "whisper_rtfx",
    "Real-time factor of each transcription: audio seconds per wall second (higher is faster)",
    buckets=(0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
)
QUEUE_DEPTH = Gauge("whisper_queue_depth", "Windows waiting for the engine")
LOOP_RETRIES = Counter(
    "whisper_loop_retries_total",
    "Hotter decodes of windows whose decode looped, all started at once (those not needed are cancelled)",
)
RESUMPTIONS = Counter(
    "whisper_resumed_windows_total", "Windows whose rest was decoded once more because Whisper ended them early"
)
#: Where a transcription's wall time goes, in the order it is spent (observe_audio_decode, then observe_windows).
PHASE_SECONDS = Histogram(
    "whisper_phase_seconds",
    "Wall time of each phase of a transcription: decoding the upload, every window's first decode, resumed rests after that",
    ["phase"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
SERIAL_TOKENS = Histogram(
    "whisper_serial_tokens",
    "Tokens a transcription decoded in series: its longest chain of a window's decode, that window's loop retries "
    "and its resumed rest, each starting when the one before it ended (all windows decode at once, so on a GPU a "
    "recording waits for this chain)",
    buckets=(16, 32, 64, 96, 128, 160, 192, 224, 320, 448, 672, 896),
)

#: Only these routes are counted: health probes and /metrics would drown the numbers.
_COUNTED_SUFFIXES = ("/infer", "/audio/transcriptions", "/audio/translations")


def observe_transcription(audio_seconds: float, wall_seconds: float) -> None:
    AUDIO_SECONDS.inc(audio_seconds)
    if wall_seconds > 0 and audio_seconds > 0:
        RTFX.observe(audio_seconds / wall_seconds)


def observe_loop_retries(count: int) -> None:
    LOOP_RETRIES.inc(count)


def observe_resumption() -> None:
    RESUMPTIONS.inc()


def observe_audio_decode(seconds: float) -> None:
    PHASE_SECONDS.labels(phase="audio_decode").observe(seconds)


def observe_windows(first_round_seconds: float, resumption_seconds: float) -> None:
    """The windows' part of a transcription: until every window's own decode was in (loop retries included), then
    the resumed rests still running after that (the tail a request pays for resuming)."""
    PHASE_SECONDS.labels(phase="first_round").observe(first_round_seconds)
    PHASE_SECONDS.labels(phase="resumption").observe(resumption_seconds)


def observe_serial_tokens(tokens: int) -> None:
    SERIAL_TOKENS.observe(tokens)


def track_queue_depth(depth: Callable[[], int]) -> None:
    QUEUE_DEPTH.set_function(depth)


class RequestMetricsMiddleware:
    """ASGI middleware counting transcription requests by route template and status, with latency."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].endswith(_COUNTED_SUFFIXES):
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def record_status(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", scope["path"])
            REQUESTS.labels(route=route, status=str(status["code"])).inc()
            LATENCY.labels(route=route).observe(time.perf_counter() - started)
