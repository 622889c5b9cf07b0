"""Decode uploaded audio to what Whisper hears: mono float32 PCM at 16 kHz.

WAV, FLAC and Ogg/Vorbis are read with libsndfile (exact and fast); everything else (MP3, M4A/AAC,
Opus, WebM...) with FFmpeg through PyAV. Resampling uses FFmpeg's libswresample, a proper
band-limited resampler.

Decoding is a stream: each block is downmixed and resampled to 16 kHz mono as it is decoded, so a
file of many channels at a high rate never exists in memory at its own size (a 1.4 MB FLAC of 8
channels at 192 kHz used to take +5.9 GB). The duration a header states, and the samples decoding it would
take (channels x rate x seconds, see ``check_decoding_budget``), are checked before decoding, and again after
every block as decoded, so an over-long or over-costly file is refused as soon as it shows.
Only the 16 kHz mono result is kept: 64 kB per second of audio (230 MB per hour).
A file that promises more than arrives (a truncated upload) is refused, saying how much arrived.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Optional

import av
import numpy as np
import soundfile

from .contract import SAMPLE_RATE
from .errors import AudioTooLong, InvalidAudio, UnsupportedCodec, UploadTooLarge

#: More channels than any real recording layout (22.2 surround has 24); more is a decoding-cost attack.
MAX_CHANNELS = 32
#: The highest rate of studio formats (DXD is 352.8 kHz).
MAX_SAMPLE_RATE = 384_000
#: Frames libsndfile decodes at a time: 64k frames of 32 channels is 8 MB at most.
BLOCK_FRAMES = 65536
#: Decoding work is bounded too: at most as many input samples as the duration limit at 48 kHz stereo. A file
#: of 8 channels at 192 kHz may therefore last 1/16 of the duration limit (15 min of a 4-hour limit).
BUDGET_RATE = 48000
BUDGET_CHANNELS = 2
#: A decoded stream may fall this much short of its stated duration (codec delay and padding) and not be truncated.
TRUNCATION_TOLERANCE_SECONDS = 0.25


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
    check_ogg_complete(data)
    try:
        return _decode_with_soundfile(data, limits)
    except soundfile.LibsndfileError:
        return _decode_with_ffmpeg(data, limits)


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


def check_decoding_budget(input_samples: float, channels: int, rate: int, limits: AudioLimits) -> None:
    """Refuse a file whose decoding would cost more than the duration limit's worth of 48 kHz stereo."""
    budget = limits.max_seconds * BUDGET_RATE * BUDGET_CHANNELS
    if input_samples > budget:
        seconds = input_samples / channels / rate
        raise AudioTooLong(
            f"the audio is {seconds:.0f} s of {channels} channels at {rate} Hz: {input_samples / 1e6:.0f} M samples "
            f"to decode; this server decodes at most {budget / 1e6:.0f} M ({limits.max_seconds:.0f} s of 48 kHz stereo)",
            param="file",
        )


def check_layout(channels: int, rate: int) -> None:
    if not 1 <= channels <= MAX_CHANNELS:
        raise InvalidAudio(f"the audio has {channels} channels; this server accepts 1 to {MAX_CHANNELS}", param="file")
    if not 1 <= rate <= MAX_SAMPLE_RATE:
        raise InvalidAudio(f"the audio's sample rate is {rate} Hz; this server accepts up to {MAX_SAMPLE_RATE} Hz", "file")


def check_ogg_complete(data: bytes) -> None:
    """An Ogg stream ends with a complete page flagged end-of-stream; a truncated upload does not."""
    if not data.startswith(b"OggS"):
        return
    last = data.rfind(b"OggS")
    header_end = last + 27
    complete = False
    if header_end <= len(data):
        table = data[header_end : header_end + data[last + 26]]
        complete = len(table) == data[last + 26] and header_end + len(table) + sum(table) == len(data)
        if complete and data[last + 5] & 0x04:
            return
    raise InvalidAudio(
        f"the Ogg file is truncated: {len(data)} bytes arrived and its last page is "
        f"{'not marked as the end of the stream' if complete else 'incomplete'}",
        param="file",
    )


def wav_shortfall(data: bytes) -> Optional[tuple[int, int]]:
    """``(promised, arrived)`` sample bytes of a WAV whose ``data`` chunk is cut short, else None.

    libsndfile silently reads what is there; a streamed WAV (size 0 or 0xFFFFFFFF: unknown) is not truncated.
    """
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        if data[offset : offset + 4] == b"data":
            arrived = len(data) - offset - 8
            return (size, arrived) if arrived < size < 0xFFFFFFFF else None
        offset += 8 + size + (size & 1)
    return None


class _Mono16k:
    """Decoded audio as it arrives -> downmixed, resampled to 16 kHz, appended; refused once past the limit."""

    def __init__(self, limits: AudioLimits, stated_seconds: Optional[float]):
        self._limits = limits
        self._input_samples = 0
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        # Sized from the stated duration when there is one, so the result is not copied at the end.
        capacity = int(min(stated_seconds or 60.0, limits.max_seconds) * SAMPLE_RATE) + SAMPLE_RATE
        self._buffer = np.empty(capacity, np.float32)
        self.samples = 0

    def add_block(self, block: np.ndarray, rate: int) -> None:
        """A (frames, channels) float32 block from libsndfile (its channels are counted as decoded, not downmixed)."""
        self._input_samples += block.size - len(block)
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(mono).reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = rate
        self.add_frame(frame)

    def read_as_is(self, sound: soundfile.SoundFile) -> int:
        """Audio already 16 kHz mono (what most speech clients upload): libsndfile writes it straight into the
        result, block by block, with no resampler and no copy between them. Returns the frames read."""
        read = 0
        while True:
            if self.samples == len(self._buffer):  # sized from the stated duration: full only if it lied
                self._reserve(self.samples + BLOCK_FRAMES)
            room = min(BLOCK_FRAMES, len(self._buffer) - self.samples)
            block = sound.read(room, dtype="float32", out=self._buffer[self.samples : self.samples + room, None])
            if not len(block):
                return read
            read += len(block)
            self._input_samples += len(block)
            self.samples += len(block)
            check_duration(self.samples / SAMPLE_RATE, self._limits)

    def add_frame(self, frame: Optional[av.AudioFrame]) -> None:
        """A frame from FFmpeg (any layout and rate), or None to flush the resampler."""
        if frame is not None:
            self._input_samples += frame.samples * frame.layout.nb_channels
            check_decoding_budget(self._input_samples, frame.layout.nb_channels, frame.sample_rate, self._limits)
        for out in self._resampler.resample(frame):
            self._append(out.to_ndarray().reshape(-1))
        check_duration(self.samples / SAMPLE_RATE, self._limits)

    def result(self) -> np.ndarray:
        self.add_frame(None)
        if self.samples == 0:
            raise InvalidAudio("the audio file holds no decodable samples (empty or truncated)", param="file")
        return self._buffer[: self.samples]

    def _append(self, samples: np.ndarray) -> None:
        end = self.samples + len(samples)
        self._reserve(end)
        self._buffer[self.samples : end] = samples
        self.samples = end

    def _reserve(self, end: int) -> None:
        """Room for ``end`` samples (grown by half at least, so appends stay amortized O(1))."""
        if end > len(self._buffer):
            grown = np.empty(max(end, int(len(self._buffer) * 1.5)), np.float32)
            grown[: self.samples] = self._buffer[: self.samples]
            self._buffer = grown


def _decode_with_soundfile(data: bytes, limits: AudioLimits) -> np.ndarray:
    with soundfile.SoundFile(io.BytesIO(data)) as sound:
        check_layout(sound.channels, sound.samplerate)
        if sound.frames <= 0:
            raise InvalidAudio("the audio file holds no samples", param="file")
        stated = sound.frames / sound.samplerate
        check_duration(stated, limits)
        check_decoding_budget(sound.frames * sound.channels, sound.channels, sound.samplerate, limits)
        _refuse_short_wav(data, stated)
        sink = _Mono16k(limits, stated)
        if sound.samplerate == SAMPLE_RATE and sound.channels == 1:
            read = sink.read_as_is(sound)
        else:
            read = 0
            while len(block := sound.read(BLOCK_FRAMES, dtype="float32", always_2d=True)):  # not blocks(): it pads
                sink.add_block(block, sound.samplerate)
                read += len(block)
        if read < sound.frames:
            raise InvalidAudio(
                f"the audio file is truncated: its header promises {stated:.2f} s, {read / sound.samplerate:.2f} s arrived",
                param="file",
            )
        return sink.result()


def _refuse_short_wav(data: bytes, arrived_seconds: float) -> None:
    shortfall = wav_shortfall(data)
    if shortfall is not None:
        promised, arrived = shortfall
        raise InvalidAudio(
            f"the WAV file is truncated: its header promises {promised} bytes of samples "
            f"({arrived_seconds * promised / max(arrived, 1):.2f} s), {arrived} arrived ({arrived_seconds:.2f} s)",
            param="file",
        )


def _decode_with_ffmpeg(data: bytes, limits: AudioLimits) -> np.ndarray:
    """Decode with FFmpeg, frame by frame, downmixed and resampled to 16 kHz by libswresample."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = _first_audio_stream(container)
            check_layout(stream.codec_context.channels, stream.codec_context.sample_rate)
            stated = _stated_seconds(container, stream)
            if stated is not None:
                check_duration(stated, limits)
                layout = stream.codec_context
                check_decoding_budget(stated * layout.sample_rate * layout.channels, layout.channels, layout.sample_rate, limits)
            sink = _Mono16k(limits, stated)
            for frame in container.decode(stream):
                check_layout(frame.layout.nb_channels, frame.sample_rate)
                sink.add_frame(frame)
            decoded = sink.result()
    except av.error.DecoderNotFoundError as error:
        raise UnsupportedCodec(f"the audio codec is not supported: {error}", param="file") from error
    except (av.error.FFmpegError, ValueError) as error:
        raise InvalidAudio(f"the file is not audio this server can decode ({error})", param="file") from error
    arrived = len(decoded) / SAMPLE_RATE
    if stated is not None and arrived < stated - TRUNCATION_TOLERANCE_SECONDS - 0.01 * stated:
        raise InvalidAudio(f"the audio file is truncated: it states {stated:.2f} s, {arrived:.2f} s arrived", param="file")
    return decoded


def _stated_seconds(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> Optional[float]:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _first_audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    if not container.streams.audio:
        raise InvalidAudio("the file has no audio stream", param="file")
    stream = container.streams.audio[0]
    if stream.codec_context is None or stream.codec_context.codec is None:
        raise UnsupportedCodec("the audio codec is not supported", param="file")
    return stream
