"""Language detection inside the transcription request (the vLLM engine's way) against Transformers' two passes.

Whisper base decodes real speech greedily on CPU with the runtime's timestamp rules as its only constraint, twice:
once as Transformers' engine does it (``detect_language``, then a decode whose prompt names that language), once as
the vLLM engine does it (the prompt stops at ``<|startoftranscript|>``, the rules choose the language as the first
token and force the task token after it). Both must choose the same language and decode the same tokens.
"""

from __future__ import annotations

import pytest
import torch
from test_multilingual_server import LANGUAGES, spoken_sentences
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

from whisper_runtime.audio import AudioLimits, decode_audio
from whisper_runtime.contract import SAMPLE_RATE
from whisper_runtime.engines.base import DecodeOptions
from whisper_runtime.engines.timestamp_rules import TimestampRules
from whisper_runtime.tokens import WhisperVocabulary

pytestmark = pytest.mark.model

LIMITS = AudioLimits.from_megabytes(16, 60)


@pytest.fixture(scope="module")
def base():
    from whisper_devkit.models import ensure_model

    folder = ensure_model("base")
    model = WhisperForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    return model, WhisperFeatureExtractor.from_pretrained(folder), WhisperVocabulary.from_model_dir(folder), \
        TimestampRules.from_model_dir(folder)


@torch.inference_mode()
def greedy(model, encoder_outputs, prompt: list[int], rules: TimestampRules, then_task_id=None, limit=120) -> list[int]:
    """Greedy decoding under the rules, one token a step with the decoder's cache, as an engine does."""
    generated: list[int] = []
    row = rules.track(generated, then_task_id)
    decoder_input, cache = torch.tensor([prompt]), None
    while len(generated) < limit and (not generated or generated[-1] != rules.eos_id):
        output = model(encoder_outputs=encoder_outputs, decoder_input_ids=decoder_input, past_key_values=cache,
                       use_cache=True)
        cache = output.past_key_values
        generated.append(int(rules.constrain(output.logits[:, -1].float().clone(), [row]).argmax()))
        decoder_input = torch.tensor([[generated[-1]]])
    return generated


@pytest.mark.parametrize("language", [*LANGUAGES, "en"])
def test_one_pass_chooses_the_language_and_text_of_two_passes(base, language):
    model, features_of, vocabulary, rules = base
    clip = spoken_sentences(language)[0]
    audio = decode_audio(clip.path.read_bytes(), LIMITS)
    features = features_of(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    with torch.inference_mode():
        encoder_outputs = model.get_encoder()(features)
        detected_token = int(model.detect_language(input_features=features).reshape(-1)[0])
    task_token = vocabulary.task_token_id("transcribe")
    prompt = vocabulary.tokenizer.convert_tokens_to_ids(["<|startoftranscript|>"])

    two_passes = greedy(model, encoder_outputs, prompt + [detected_token, task_token], rules)
    one_pass = greedy(model, encoder_outputs, prompt, rules, then_task_id=task_token)

    assert vocabulary.detects_language(DecodeOptions())
    assert one_pass[:2] == [detected_token, task_token]
    assert one_pass[2:] == two_passes
    parsed = vocabulary.parse(one_pass, len(audio) / SAMPLE_RATE)
    assert parsed.language == language, parsed
    assert parsed.text == vocabulary.parse(two_passes, len(audio) / SAMPLE_RATE).text != ""
