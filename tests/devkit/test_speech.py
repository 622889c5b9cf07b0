"""Speech corpora and WER scoring: transcript parsers, the espeak corpus, long-form joining, the normalizer."""

from __future__ import annotations

import shutil

import pytest

from whisper_devkit import speech
from whisper_devkit.wer import normalize, word_error_rate

needs_audio_tools = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox (make system-packages)"
)


def test_asterisk_prompts_keep_only_what_was_read_as_written():
    lines = [
        "\ufeff; Core Asterisk Sounds in English",
        "",
        "agent-pass: Please enter your password followed by the pound key.",
        "digits/1: One",
        "at-tone-time-exactly: At the sound of the tone, the time will be exactly...",
        "confbridge-dec-list-vol-out: ...to decrease the audio volume.",
        "beep: [this is a simple beep tone]",
        "ru-colon: Время: десять",
    ]
    assert speech.parse_asterisk_prompts(lines) == {
        "agent-pass": "Please enter your password followed by the pound key.",
        "digits/1": "One",
        "ru-colon": "Время: десять",
    }


def test_sphinx_transcriptions_map_ids_to_text():
    lines = [
        "<s> he was not an ill disposed young man </s> (sense_and_sensibility_01_austen_64kb-0880)",
        "<s> ten of clubs  </s> (001)",
        "not a transcription line",
    ]
    assert speech.parse_sphinx_transcription(lines) == {
        "sense_and_sensibility_01_austen_64kb-0880": "he was not an ill disposed young man",
        "001": "ten of clubs",
    }


def test_missing_tools_are_named_with_the_install_command(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    with pytest.raises(speech.MissingToolError, match=r"apt-get install -y espeak-ng sox"):
        speech.require_tools("espeak-ng", "sox")


def test_unknown_languages_are_refused():
    with pytest.raises(ValueError, match="known"):
        speech.espeak_corpus("xx")
    with pytest.raises(ValueError, match="known"):
        speech.asterisk_corpus("xx")


@needs_audio_tools
def test_espeak_corpus_is_16khz_speech_with_its_text(tmp_path, monkeypatch):
    monkeypatch.setenv("WHISPER_KSERVE_CACHE", str(tmp_path))
    monkeypatch.setitem(speech.ESPEAK_SENTENCES, "en", ("Hello world.", "Good morning."))
    corpus = speech.espeak_corpus("en")
    assert len(corpus) == 2 * len(speech.ESPEAK_VOICES["en"])
    assert {item.text for item in corpus} == {"Hello world.", "Good morning."}
    for item in corpus:
        info = speech.soundfile.info(str(item.path))
        assert (info.samplerate, info.channels) == (16000, 1)
        assert 0.5 < item.duration < 5 and item.language == "en"
    assert speech.espeak_corpus("en") == corpus  # cached: read back from its manifest


@pytest.fixture
def two_clips(tmp_path, monkeypatch):
    """Two short espeak clips, built into a cache of the test's own."""
    monkeypatch.setenv("WHISPER_KSERVE_CACHE", str(tmp_path))
    monkeypatch.setitem(speech.ESPEAK_SENTENCES, "en", ("One sentence.", "Another one."))
    return speech.espeak_corpus("en")[:2]


@needs_audio_tools
def test_join_clips_adds_a_second_between_clips(tmp_path, two_clips):
    joined = speech.join_clips(two_clips, tmp_path / "long.wav", gap_seconds=1.0)
    assert joined.text == "One sentence. Another one."
    assert joined.duration == pytest.approx(two_clips[0].duration + two_clips[1].duration + 1.0, abs=0.01)


@needs_audio_tools
def test_join_clips_builds_the_same_bytes_every_time(tmp_path, two_clips):
    """sox dithers the silence between clips: unseeded, every build differed and long-form windows were cut elsewhere."""
    clips = two_clips
    first = speech.join_clips(clips, tmp_path / "first.wav", gap_seconds=0.5)
    second = speech.join_clips(clips, tmp_path / "second.wav", gap_seconds=0.5)
    assert first.path.read_bytes() == second.path.read_bytes()


def test_clips_for_a_duration_start_over_when_they_run_out(tmp_path):
    clips = [speech.Utterance(tmp_path / f"{index}.wav", str(index), "en", 10.0) for index in range(3)]
    chosen = speech._clips_for(1.0, clips, gap_seconds=1.0)
    assert [clip.text for clip in chosen] == ["0", "1", "2", "0", "1", "2"]


def test_normalizer_ignores_case_punctuation_and_number_style():
    assert normalize("Hello, World!") == normalize("hello world")
    assert normalize("It's twenty-five dollars.") == normalize("it is $25")
    assert normalize("Mister Smith") == normalize("Mr. Smith")


def test_word_error_rate_counts_edits_over_all_reference_words():
    assert word_error_rate(["the cat sat", "on the mat"], ["the cat sat", "on a mat"]) == pytest.approx(1 / 6)
    assert word_error_rate(["Hello there.", "[beep]"], ["hello there", ""]) == 0.0
    assert word_error_rate(["Привет, мир!"], ["привет мир"], language="ru") == 0.0
    with pytest.raises(ValueError):
        word_error_rate(["a"], ["a", "b"])
