"""The batched timestamp rules the vLLM engine applies give exactly what Transformers' Whisper processor gives."""

import pytest
import torch
from transformers import GenerationConfig
from transformers.generation.logits_process import WhisperTimeStampLogitsProcessor

from whisper_runtime.engines.timestamp_rules import TimestampRules

VOCABULARY = 51865
RULES = TimestampRules(no_timestamps_id=50363, eos_id=50257, max_initial_timestamp_index=50)
PROMPT = [50258, 50259, 50359]  # <|startoftranscript|><|en|><|transcribe|>


def transformers_reference(logits: torch.Tensor, generated: list[list[int]]) -> torch.Tensor:
    config = GenerationConfig(no_timestamps_token_id=RULES.no_timestamps_id, eos_token_id=RULES.eos_id,
                              max_initial_timestamp_index=RULES.max_initial_timestamp_index)
    processor = WhisperTimeStampLogitsProcessor(config, begin_index=len(PROMPT))
    return processor(torch.tensor([PROMPT + tokens for tokens in generated]), logits)


def histories(length: int, seed: int) -> list[list[int]]:
    """Rows of generated tokens that follow the rules' grammar loosely: text runs between timestamp pairs."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(8):
        tokens, time = [], int(torch.randint(0, 20, (1,), generator=generator))
        while len(tokens) < length:
            choice = float(torch.rand(1, generator=generator))
            if choice < 0.25:
                time += int(torch.randint(0, 40, (1,), generator=generator))
                tokens.append(RULES.timestamp_begin + time)
            else:
                tokens.append(int(torch.randint(0, RULES.eos_id, (1,), generator=generator)))
        rows.append(tokens)
    return rows


@pytest.mark.parametrize("length", [0, 1, 2, 3, 7, 20])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_masks_as_transformers(length, seed):
    generated = histories(length, seed)
    logits = torch.randn(len(generated), VOCABULARY, generator=torch.Generator().manual_seed(seed)) * 4
    expected = transformers_reference(logits.clone(), generated)
    assert torch.equal(RULES.constrain(logits.clone(), [RULES.track(tokens) for tokens in generated]), expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_rows_followed_step_by_step_get_the_same_masks(seed):
    """As in a decoder: the same lists grow a token a step (and one is cut back), the rules see them each step."""
    final = histories(24, seed)
    generated = [[] for _ in final]
    rows = [RULES.track(tokens) for tokens in generated]
    generator = torch.Generator().manual_seed(seed)
    for step in range(24):
        if step == 12:
            del generated[0][6:]  # vLLM discards tokens after a failed KV load
        for tokens, complete in zip(generated, final):
            tokens.append(complete[len(tokens)])
        logits = torch.randn(len(generated), VOCABULARY, generator=generator) * 4
        expected = torch.cat([transformers_reference(logits[[row]].clone(), [tokens]) for row, tokens in enumerate(generated)])
        assert torch.equal(RULES.constrain(logits.clone(), rows), expected), f"step {step}"


def test_first_token_is_an_early_timestamp():
    logits = RULES.constrain(torch.zeros(1, VOCABULARY), [RULES.track([])])
    allowed = torch.nonzero(torch.isfinite(logits[0])).flatten().tolist()
    assert allowed == list(range(RULES.timestamp_begin, RULES.timestamp_begin + 51))


def test_a_likely_timestamp_is_forced():
    """Many timestamps that each lose to one text token, but win together, must be chosen."""
    logits = torch.zeros(1, VOCABULARY)
    logits[0, 100] = 3.0  # one text token, likelier than any single timestamp
    text_so_far = [RULES.timestamp_begin, 400, 401]
    constrained = RULES.constrain(logits, [RULES.track(text_so_far)])
    assert torch.isinf(constrained[0, 100]) and torch.isfinite(constrained[0, RULES.timestamp_begin + 5])


def test_reads_its_token_ids_from_the_model(tmp_path):
    (tmp_path / "generation_config.json").write_text(
        '{"no_timestamps_token_id": 50363, "eos_token_id": 50257, "max_initial_timestamp_index": 50}')
    assert TimestampRules.from_model_dir(tmp_path) == RULES


DETECTING = TimestampRules(no_timestamps_id=50363, eos_id=50257, max_initial_timestamp_index=50,
                           language_ids=(50259, 50260, 50261, 50262))
TRANSCRIBE_TOKEN = 50359


def allowed(logits_row: torch.Tensor) -> list[int]:
    return torch.nonzero(torch.isfinite(logits_row)).flatten().tolist()


def test_a_detecting_row_chooses_its_likeliest_language_first():
    logits = torch.randn(1, VOCABULARY, generator=torch.Generator().manual_seed(3)) * 4
    logits[0, 50261] = 30.0  # likeliest language, though an ordinary token is likelier still
    logits[0, 1000] = 50.0
    constrained = DETECTING.constrain(logits.clone(), [DETECTING.track([], TRANSCRIBE_TOKEN)])
    assert allowed(constrained[0]) == [50261]


def test_a_detecting_row_then_gets_its_task_token():
    logits = torch.randn(1, VOCABULARY, generator=torch.Generator().manual_seed(4)) * 4
    constrained = DETECTING.constrain(logits.clone(), [DETECTING.track([50260], TRANSCRIBE_TOKEN)])
    assert allowed(constrained[0]) == [TRANSCRIBE_TOKEN]


@pytest.mark.parametrize("length", [0, 1, 2, 5, 20])
def test_after_its_prefix_a_detecting_row_follows_the_same_rules(length):
    """Language and task chosen, the row is masked exactly like a row whose prompt named them."""
    generated = histories(length, seed=length)
    logits = torch.randn(len(generated), VOCABULARY, generator=torch.Generator().manual_seed(length)) * 4
    given = DETECTING.constrain(logits.clone(), [DETECTING.track(tokens) for tokens in generated])
    detected = DETECTING.constrain(logits.clone(), [DETECTING.track([50262, TRANSCRIBE_TOKEN] + tokens, TRANSCRIBE_TOKEN)
                                                    for tokens in generated])
    assert torch.equal(detected, given)


def test_rows_in_and_past_their_prefix_share_one_batch():
    logits = torch.randn(3, VOCABULARY, generator=torch.Generator().manual_seed(5)) * 4
    rows = [DETECTING.track([], TRANSCRIBE_TOKEN), DETECTING.track([50259], TRANSCRIBE_TOKEN), DETECTING.track([])]
    constrained = DETECTING.constrain(logits.clone(), rows)
    assert allowed(constrained[0]) == [int(50259 + logits[0, 50259:50263].argmax())]
    assert allowed(constrained[1]) == [TRANSCRIBE_TOKEN]
    assert torch.equal(constrained[2], DETECTING.constrain(logits[2:].clone(), [DETECTING.track([])])[0])


def test_reads_the_language_tokens_from_the_model(tmp_path):
    (tmp_path / "generation_config.json").write_text(
        '{"no_timestamps_token_id": 50363, "eos_token_id": 50257, "max_initial_timestamp_index": 50,'
        ' "lang_to_id": {"<|fr|>": 50265, "<|en|>": 50259}}')
    assert TimestampRules.from_model_dir(tmp_path).language_ids == (50259, 50265)
