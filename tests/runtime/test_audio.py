import io

import av
import numpy as np
import pytest

from whisper_runtime.audio import AudioLimits, decode_audio, validate_pcm
from whisper_runtime.errors import AudioTooLong, InvalidAudio, UploadTooLarge

from runtime_samples import sine, wav_bytes

LIMITS = AudioLimits.from_megabytes(5, 60)
RATE = 44100


def encode_with_ffmpeg(samples: np.ndarray, codec: str, container: str) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(codec, rate=RATE, layout="mono")
        frame_size = stream.codec_context.frame_size or 1152
        for start in range(0, len(samples), frame_size):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + frame_size], format="flt", layout="mono")
            frame.sample_rate = RATE
            frame = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=RATE).resample(frame)[0]
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return buffer.getvalue()


def assert_is_the_tone(decoded: np.ndarray, seconds: float) -> None:
    assert decoded.dtype == np.float32
    assert abs(len(decoded) / 16000 - seconds) < 0.1
    spectrum = np.abs(np.fft.rfft(decoded[1600:-1600]))
    peak_hz = np.argmax(spectrum) * 16000 / (len(decoded) - 3200)
    assert abs(peak_hz - 440) < 5


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
def test_soundfile_formats_stereo_44k_become_mono_16k(fmt):
    samples = sine(2.0, RATE)
    decoded = decode_audio(wav_bytes(np.stack([samples, samples], axis=1), RATE, fmt), LIMITS)
    assert_is_the_tone(decoded, 2.0)


@pytest.mark.parametrize("codec,container", [("libmp3lame", "mp3"), ("aac", "ipod")])
def test_ffmpeg_formats(codec, container):
    decoded = decode_audio(encode_with_ffmpeg(sine(2.0, RATE), codec, container), LIMITS)
    assert_is_the_tone(decoded, 2.0)


def test_8khz_telephone_audio_is_upsampled():
    decoded = decode_audio(wav_bytes(sine(1.0, rate=8000), 8000), LIMITS)
    assert_is_the_tone(decoded, 1.0)


@pytest.mark.parametrize(
    "data",
    [b"", b"not audio at all " * 100, wav_bytes(sine(1.0))[:40], b"RIFF\x00\x00\x00\x00WAVEfmt "],
    ids=["empty", "text", "truncated-header", "bare-riff"],
)
def test_invalid_audio_is_a_typed_error(data):
    with pytest.raises(InvalidAudio):
        decode_audio(data, LIMITS)


def test_truncated_body_still_decodes_what_is_there():
    data = wav_bytes(sine(2.0, rate=16000), 16000)
    decoded = decode_audio(data[: len(data) // 2], LIMITS)
    assert 0.9 < len(decoded) / 16000 < 1.1


def test_too_long_and_too_large():
    with pytest.raises(AudioTooLong):
        decode_audio(wav_bytes(np.zeros(61 * 16000, np.float32)), LIMITS)
    with pytest.raises(AudioTooLong):
        decode_audio(encode_with_ffmpeg(np.zeros(61 * RATE, np.float32), "libmp3lame", "mp3"), LIMITS)
    with pytest.raises(UploadTooLarge):
        decode_audio(b"\x00" * (5 * 2**20 + 1), LIMITS)


def test_pcm_validation():
    assert validate_pcm(np.ones((1, 100), np.float64), LIMITS).shape == (100,)
    with pytest.raises(InvalidAudio):
        validate_pcm(np.array([], np.float32), LIMITS)
    with pytest.raises(InvalidAudio):
        validate_pcm(np.array([0.0, np.nan], np.float32), LIMITS)
    with pytest.raises(AudioTooLong):
        validate_pcm(np.zeros(61 * 16000, np.float32), LIMITS)
