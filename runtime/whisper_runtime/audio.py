"""Decode uploaded audio to what Whisper hears: mono float32 PCM at 16 kHz.

WAV, FLAC and Ogg/Vorbis are read with libsndfile (exact and fast); everything else (MP3, M4A/AAC,
Opus, WebM...) with FFmpeg through PyAV. Resampling uses FFmpeg's libswresample, a proper
band-limited resampler.
"""

from __future__ import annotations

import dataclasses
import io

import av
import numpy as np
import soundfile

from .contract import SAMPLE_RATE
from .errors import AudioTooLong, InvalidAudio, UnsupportedCodec, UploadTooLarge


@dataclasses.dataclass(frozen=True)
class AudioLimits:
    max_bytes: int
    max_seconds: float

    @classmethod
    def from_megabytes(cls, max_upload_mb: int, max_audio_seconds: float) -> "AudioLimits":
        return cls(max_bytes=max_upload_mb * 1024 * 1024, max_seconds=float(max_audio_seconds))


def decode_audio(data: bytes, limits: AudioLimits) -> np.ndarray:
    """Encoded file bytes -> mono float32 samples at 16 kHz; typed errors for anything else."""
    check_upload_size(len(data), limits)
    if not data:
        raise InvalidAudio("the audio file is empty", param="file")
    try:
        samples, rate = _read_with_soundfile(data, limits)
    except soundfile.LibsndfileError:
        samples, rate = _read_with_ffmpeg(data, limits)
    return _to_whisper_rate(samples, rate)


def validate_pcm(samples: np.ndarray, limits: AudioLimits) -> np.ndarray:
    """Check raw 16 kHz PCM (the v2 FP32 input) the way decoded files are checked."""
    pcm = np.asarray(samples, dtype=np.float32).reshape(-1)
    if pcm.size == 0:
        raise InvalidAudio("the audio tensor is empty", param="audio")
    if not np.all(np.isfinite(pcm)):
        raise InvalidAudio("the audio tensor holds NaN or infinite samples", param="audio")
    check_duration(pcm.size / SAMPLE_RATE, limits)
    return pcm


def check_upload_size(size: int, limits: AudioLimits) -> None:
    if size > limits.max_bytes:
        raise UploadTooLarge(
            f"the upload is {size / 2**20:.1f} MiB; this server accepts at most {limits.max_bytes / 2**20:.0f} MiB",
            param="file",
        )


def check_duration(seconds: float, limits: AudioLimits) -> None:
    if seconds > limits.max_seconds:
        raise AudioTooLong(
            f"the audio lasts {seconds:.0f} s; this server accepts at most {limits.max_seconds:.0f} s",
            param="file",
        )


def _read_with_soundfile(data: bytes, limits: AudioLimits) -> tuple[np.ndarray, int]:
    with soundfile.SoundFile(io.BytesIO(data)) as sound:
        if sound.frames <= 0:
            raise InvalidAudio("the audio file holds no samples", param="file")
        check_duration(sound.frames / sound.samplerate, limits)
        samples = sound.read(dtype="float32", always_2d=True)
        rate = sound.samplerate
    if samples.shape[0] == 0:
        raise InvalidAudio("the audio file is truncated: no samples could be read", param="file")
    return samples.mean(axis=1), rate


def _read_with_ffmpeg(data: bytes, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """Decode with FFmpeg, already downmixed and resampled to 16 kHz by libswresample."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    decoded = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = _first_audio_stream(container)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    decoded += out.samples
                check_duration(decoded / SAMPLE_RATE, limits)
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except av.error.DecoderNotFoundError as error:
        raise UnsupportedCodec(f"the audio codec is not supported: {error}", param="file") from error
    except (av.error.FFmpegError, ValueError) as error:
        raise InvalidAudio(f"the file is not audio this server can decode ({error})", param="file") from error
    if not chunks:
        raise InvalidAudio("the audio file holds no decodable samples (empty or truncated)", param="file")
    return np.concatenate(chunks), SAMPLE_RATE


def _first_audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    if not container.streams.audio:
        raise InvalidAudio("the file has no audio stream", param="file")
    stream = container.streams.audio[0]
    if stream.codec_context is None or stream.codec_context.codec is None:
        raise UnsupportedCodec("the audio codec is not supported", param="file")
    return stream


def _to_whisper_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return np.ascontiguousarray(samples, dtype=np.float32)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    frame = av.AudioFrame.from_ndarray(samples.astype(np.float32).reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = rate
    pieces = resampler.resample(frame) + resampler.resample(None)
    return np.concatenate([piece.to_ndarray().reshape(-1) for piece in pieces]).astype(np.float32)
