"""Typed errors of the runtime.

Each error also derives from the KServe error its gRPC interceptor understands, so a bad request
answers INVALID_ARGUMENT over gRPC instead of INTERNAL. The HTTP status of each error is decided in
one place, :mod:`whisper_runtime.server.errors`.
"""

from __future__ import annotations

from grpc_interceptor.exceptions import PermissionDenied, Unauthenticated
from kserve.errors import InvalidInput, ServerNotReady


class WhisperError(Exception):
    """Base of every error the runtime raises on purpose; ``param`` names the offending field."""

    def __init__(self, message: str, param: str | None = None):
        Exception.__init__(self, message)
        self.message = message
        #: The attribute KServe's gRPC interceptor reports.
        self.reason = message
        self.param = param

    def __str__(self) -> str:
        return self.message


class InvalidRequest(WhisperError, InvalidInput):
    """The request is malformed: missing or wrong fields, parameters out of range."""


class InvalidAudio(InvalidRequest):
    """The bytes are empty, corrupt, truncated or not audio at all."""


class UnsupportedCodec(InvalidAudio):
    """The container was recognised but its codec cannot be decoded."""


class AudioTooLong(InvalidRequest):
    """The audio lasts longer than ``--max_audio_seconds``."""


class UploadTooLarge(InvalidRequest):
    """The upload is bigger than ``--max_upload_mb``."""


class UnknownModel(InvalidRequest):
    """The request names a model this server does not serve."""


class RequestTimeout(InvalidRequest):
    """The client sent its body too slowly (``--body_idle_timeout``, ``--body_timeout``)."""


class RepositoryLocked(WhisperError, PermissionDenied):
    """The model repository's load/unload: a single-model server serves its one model for good (gRPC
    PERMISSION_DENIED through KServe's interceptor)."""

    def __init__(self, message: str):
        WhisperError.__init__(self, message)
        self.details = message


class EngineNotReady(WhisperError, ServerNotReady):
    """The engine has not finished loading and warming up, or has stopped."""


class MissingApiKey(WhisperError, Unauthenticated):
    """The server has an API key and the request did not carry it, or carried another (HTTP 401, gRPC UNAUTHENTICATED)."""

    def __init__(self, message: str):
        WhisperError.__init__(self, message)
        self.details = message
