import io
import time
import tracemalloc

import av
import numpy as np
import pytest
import soundfile

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


TRUNCATABLE = {
    "wav": lambda: wav_bytes(sine(4.0, RATE), RATE),
    "flac": lambda: wav_bytes(sine(4.0, RATE), RATE, "FLAC"),
    "ogg-vorbis": lambda: wav_bytes(sine(4.0, RATE), RATE, "OGG"),
    "mp3": lambda: encode_with_ffmpeg(sine(4.0, RATE), "libmp3lame", "mp3"),
    "ogg-opus": lambda: opus_bytes(sine(4.0, 48000)),
}


def opus_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 48000, format="OGG", subtype="OPUS")
    return buffer.getvalue()


@pytest.mark.parametrize("encode", TRUNCATABLE.values(), ids=TRUNCATABLE.keys())
@pytest.mark.parametrize("kept", [0.5, 0.9])
def test_truncated_file_is_refused_saying_how_much_arrived(encode, kept):
    """Issue 14.6: a file whose header or stream promises more than arrives used to be transcribed in part."""
    data = encode()
    assert_is_the_tone(decode_audio(data, LIMITS), 4.0)
    with pytest.raises(InvalidAudio, match="truncated|not audio") as refused:
        decode_audio(data[: int(len(data) * kept)], LIMITS)
    assert "arrived" in str(refused.value) or "decode" in str(refused.value)


def test_wav_streamed_without_a_length_is_not_truncated():
    data = bytearray(wav_bytes(sine(1.0)))
    data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # the data chunk's size, as a pipe writer leaves it
    assert_is_the_tone(decode_audio(bytes(data), LIMITS), 1.0)


@pytest.mark.parametrize("channels,rate,match", [(1000, 16000, "1000 channels"), (1, 768000, "768000 Hz")])
def test_absurd_layouts_are_refused_before_decoding(channels, rate, match):
    """Issue 14.7: a WAV of 1,000 channels was accepted."""
    frames = np.zeros((rate // 100, channels), np.float32)
    with pytest.raises(InvalidAudio, match=match):
        decode_audio(wav_bytes(frames, rate), LIMITS)


def flac_bomb(seconds: float, channels: int = 8, rate: int = 192000) -> bytes:
    """Silence, 8 channels at 192 kHz: a small FLAC that decodes to 6 MB a second."""
    buffer = io.BytesIO()
    noise = np.zeros((rate, channels), np.float32)
    with soundfile.SoundFile(buffer, "w", rate, channels, format="FLAC") as sound:
        for _ in range(int(seconds)):
            sound.write(noise)
    return buffer.getvalue()


def test_decompression_bomb_is_decoded_as_a_stream():
    """Issue 14.2: 8 channels at 192 kHz were decoded whole (+5.9 GB for 15 min); now only 16 kHz mono is kept."""
    bomb = flac_bomb(20)
    tracemalloc.start()
    try:
        decoded = decode_audio(bomb, AudioLimits.from_megabytes(5, 400))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert abs(len(decoded) / 16000 - 20) < 0.1
    whole = 20 * 192000 * 8 * 4
    print(f"bomb: {len(bomb) / 2**20:.1f} MiB FLAC, {whole / 2**20:.0f} MiB if decoded whole, peak {peak / 2**20:.1f} MiB")
    assert peak < 8 * 2**20 + decoded.nbytes


def test_decoding_work_is_bounded_too():
    """5 s of 8 channels at 192 kHz is 7.7 M samples to decode: more than 60 s of 48 kHz stereo (5.8 M)."""
    started = time.perf_counter()
    with pytest.raises(AudioTooLong, match="8 channels at 192000 Hz"):
        decode_audio(flac_bomb(5), LIMITS)
    assert time.perf_counter() - started < 1


def test_a_bomb_past_the_limit_is_refused_from_its_header():
    started = time.perf_counter()
    with pytest.raises(AudioTooLong):
        decode_audio(flac_bomb(3), AudioLimits.from_megabytes(5, 2))
    assert time.perf_counter() - started < 5


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


@pytest.mark.parametrize("file_format, subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("WAV", "FLOAT")])
def test_audio_already_16k_mono_is_read_as_is_sample_for_sample(file_format, subtype):
    """The common upload skips the resampler: the samples are exactly what the file holds, over many blocks and
    a partial last one."""
    rng = np.random.default_rng(7)
    pcm16 = rng.integers(-20000, 20000, size=200_001, dtype=np.int16)
    samples = pcm16.astype(np.float32) / 32768
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 16000, format=file_format, subtype=subtype)
    decoded = decode_audio(buffer.getvalue(), AudioLimits(2**26, 60))
    assert decoded.dtype == np.float32 and np.array_equal(decoded, samples)
