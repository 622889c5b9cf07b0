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
