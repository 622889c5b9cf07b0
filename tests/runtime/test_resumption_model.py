"""Issue 4 at the model level: the real tiny.en weights through the Transformers engine, in process.

The fourth window of the long-form recording, decoded on its own, is one where tiny.en writes the first sentence and
closes it 16 s later, skipping two sentences; the tail after that late timestamp was all that got decoded again.
The recording is the same bytes on every run (sox in repeatable mode), so this reproduces every time.
"""

from __future__ import annotations

import numpy as np
import pytest
from runtime_samples import LONG_FORM_GAP_SECONDS, dropped_sentences, long_form_clips, long_form_recording, text_said_within
from whisper_runtime.audio import AudioLimits, decode_audio
from whisper_runtime.engines.base import DecodeOptions, WindowRequest
from whisper_runtime.engines.transformers_engine import TransformersEngine
from whisper_runtime.transcriber import Transcriber
from whisper_runtime.windowing import cut_windows, overruns_its_text

pytestmark = pytest.mark.model

LIMITS = AudioLimits.from_megabytes(16, 400)
#: The fourth window of the long-form recording (index 3): the one tiny.en ends with an overrunning segment.
OVERRUN_WINDOW = 3


@pytest.fixture(scope="module")
def overrun_window(tmp_path_factory):
    recording = long_form_recording(tmp_path_factory.mktemp("resume"))
    return cut_windows(decode_audio(recording.path.read_bytes(), LIMITS))[OVERRUN_WINDOW]


@pytest.fixture
async def engine(tiny_en_dir):
    engine = TransformersEngine(tiny_en_dir, dtype="float32", max_batch=4)
    await engine.start()
    yield engine
    await engine.stop()


def said_in(window) -> str:
    begin = window.offset_seconds
    return text_said_within(long_form_clips(), LONG_FORM_GAP_SECONDS, begin, begin + len(window.samples) / 16000)


async def test_one_decode_of_the_window_skips_sentences_behind_a_late_timestamp(engine, overrun_window):
    """The defect itself, with no resumption: the reason the transcriber must look inside the last segment."""
    [result] = await engine.transcribe([WindowRequest(overrun_window.samples, DecodeOptions())])
    assert overruns_its_text(overrun_window, result.segments[-1])
    assert dropped_sentences(said_in(overrun_window), result.text)


async def test_the_transcriber_resumes_inside_the_overrunning_segment(engine, overrun_window):
    transcript = await Transcriber(engine, LIMITS).transcribe_pcm(overrun_window.samples, DecodeOptions())
    assert not dropped_sentences(said_in(overrun_window), transcript.text)
    starts = [segment.start for segment in transcript.segments]
    assert starts == sorted(starts) and transcript.segments[-1].end <= len(overrun_window.samples) / 16000 + 0.01
    ends_and_next_starts = zip(transcript.segments, transcript.segments[1:])
    assert all(before.end <= after.start + 0.01 for before, after in ends_and_next_starts), "segments overlap at the seam"
    words = transcript.text.lower().split()
    assert not any(np.array_equal(words[i : i + 4], words[i + 4 : i + 8]) for i in range(len(words) - 8)), "text repeated"
