"""The converted real weights (tiny.en, base) against the original CTranslate2 files, on CPU.

Three levels: the same input features give the same encoder output, logits and greedy tokens in CTranslate2 and
Transformers (the conversion is exact up to float rounding); the converted model transcribes speech with known
text; its transcripts stay close to faster-whisper's on the original files. The bounds are measured in
docs/models.md, which says why they are what they are.
"""

from __future__ import annotations

import numpy as np
import pytest

from whisper_devkit import accuracy, models, speech
from whisper_devkit.wer import word_error_rate

pytestmark = pytest.mark.model
torch = pytest.importorskip("torch")
ctranslate2 = pytest.importorskip("ctranslate2")

#: The samples docs/models.md measured (``whisper-devkit accuracy --clips 12``)
SAMPLE_CLIPS = 12
#: docs/models.md: measured 25-29 % on the synthetic sample; the margin is one sentence of 130 words going wrong
ESPEAK_WER_BOUND = 0.35
#: docs/models.md: measured 5-6 % on read human speech (LibriVox, commands, JFK)
READ_SPEECH_WER_BOUND = 0.12
#: docs/models.md: 1-3 % of words differ from faster-whisper's on read speech; only the mel front-ends differ
DISAGREEMENT_BOUND = 0.08
#: Whisper's published special-token ids (English-only vocabularies have no language shift)
KNOWN_TOKEN_IDS = {
    "tiny.en": {"<|endoftext|>": 50256, "<|startoftranscript|>": 50257, "<|notimestamps|>": 50362, "<|0.00|>": 50363},
    "base": {
        "<|endoftext|>": 50257,
        "<|startoftranscript|>": 50258,
        "<|en|>": 50259,
        "<|fr|>": 50265,
        "<|transcribe|>": 50359,
        "<|notimestamps|>": 50363,
        "<|0.00|>": 50364,
        "<|30.00|>": 51864,
    },
}


@pytest.fixture(scope="module", params=list(models.MODELS))
def model_name(request):
    return request.param


@pytest.fixture(scope="module")
def transcriber(model_name):
    return accuracy.TransformersTranscriber(models.ensure_model(model_name))


@pytest.fixture(scope="module")
def espeak_sample():
    return accuracy.every_nth(speech.espeak_corpus("en"), SAMPLE_CLIPS)


@pytest.fixture(scope="module")
def read_speech_sample():
    return accuracy.every_nth(speech.pocketsphinx_corpus() + [speech.jfk()], SAMPLE_CLIPS)


@pytest.fixture(scope="module")
def read_speech_texts(transcriber, read_speech_sample):
    return transcriber.transcribe(read_speech_sample)


def _prompt(transcriber) -> list[int]:
    generation = transcriber.model.generation_config
    language_and_task = [generation.lang_to_id["<|en|>"], generation.task_to_id["transcribe"]] if transcriber.multilingual else []
    return [generation.decoder_start_token_id, *language_and_task, generation.no_timestamps_token_id]


def test_special_tokens_have_whisper_ids(model_name, transcriber):
    tokenizer = transcriber.processor.tokenizer
    for token, token_id in KNOWN_TOKEN_IDS[model_name].items():
        assert tokenizer.convert_tokens_to_ids(token) == token_id, token
    assert len(tokenizer) == transcriber.model.config.vocab_size


def test_same_features_give_same_encoder_logits_and_tokens(model_name, transcriber, espeak_sample):
    original = ctranslate2.models.Whisper(str(models.ensure_ct2_model(model_name)), device="cpu", compute_type="float32")
    features = transcriber.features([accuracy.load_audio(item.path) for item in espeak_sample[:2]])
    prompt = _prompt(transcriber)
    with torch.inference_mode():
        encoded = transcriber.model.model.encoder(features).last_hidden_state
        first_logits = transcriber.model(encoder_outputs=(encoded,), decoder_input_ids=torch.tensor([prompt] * 2)).logits[:, -1]
        tokens = transcriber.model.generate(features, **({"language": "en"} if transcriber.multilingual else {}))
    storage = ctranslate2.StorageView.from_array(features.numpy())
    original_encoded = np.array(original.encode(storage, to_cpu=True))
    np.testing.assert_allclose(original_encoded, encoded.numpy(), atol=1e-3 * float(encoded.abs().max()))

    results = original.generate(storage, [prompt] * 2, beam_size=1, return_logits_vocab=True)
    for row, result in enumerate(results):
        original_logits = np.array(result.logits[0][0])
        kept = original_logits > np.finfo(np.float32).min  # CTranslate2 reports suppressed tokens as the lowest float
        np.testing.assert_allclose(original_logits[kept], first_logits[row].numpy()[kept], atol=2e-3)
        generated = [token for token in tokens[row].tolist() if token < transcriber.model.generation_config.eos_token_id]
        assert result.sequences_ids[0] == generated


def test_transcribes_synthetic_speech(transcriber, espeak_sample):
    hypotheses = transcriber.transcribe(espeak_sample)
    references = [item.text for item in espeak_sample]
    assert word_error_rate(references, hypotheses) < ESPEAK_WER_BOUND, list(zip(references, hypotheses))


def test_transcribes_read_human_speech(read_speech_sample, read_speech_texts):
    references = [item.text for item in read_speech_sample]
    assert word_error_rate(references, read_speech_texts) < READ_SPEECH_WER_BOUND, list(zip(references, read_speech_texts))


def test_transcripts_agree_with_faster_whisper_on_the_original(model_name, read_speech_sample, read_speech_texts):
    original = accuracy.FasterWhisperTranscriber(models.ensure_ct2_model(model_name))
    original_texts = original.transcribe(read_speech_sample)
    assert word_error_rate(original_texts, read_speech_texts) < DISAGREEMENT_BOUND, list(zip(original_texts, read_speech_texts))
