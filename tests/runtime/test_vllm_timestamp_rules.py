"""The vLLM logits processor against vLLM's own loader and batch-update protocol.

CI has no vLLM (it is the GPU extra), so this runs where vLLM is installed: the GPU machine, or a CPU machine with
the vLLM wheel on the path (``pip install --no-deps --target DIR vllm==0.24.0`` plus what it imports; nothing here
touches a GPU).
"""

import json
from types import SimpleNamespace

import pytest
import torch

vllm = pytest.importorskip("vllm")
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality, _load_custom_logitsprocs  # noqa: E402

from whisper_runtime.engines.timestamp_rules import (  # noqa: E402
    DETECT_LANGUAGE_THEN, OPT_IN, VLLM_LOGITS_PROCESSOR, TimestampRules)
from whisper_runtime.engines.vllm_timestamp_rules import WhisperTimestampRules  # noqa: E402

VOCABULARY = 51865
LANGUAGES = {"<|en|>": 50259, "<|zh|>": 50260, "<|de|>": 50261}
RULES = TimestampRules(no_timestamps_id=50363, eos_id=50257, max_initial_timestamp_index=50,
                       language_ids=tuple(LANGUAGES.values()))
TRANSCRIBE_TOKEN = 50359
TRANSCRIBE = vllm.SamplingParams(max_tokens=8, extra_args={OPT_IN: True})
DETECT_THEN_TRANSCRIBE = vllm.SamplingParams(max_tokens=8, extra_args={OPT_IN: True, DETECT_LANGUAGE_THEN: TRANSCRIBE_TOKEN})
#: A request that does not ask for the rules (none of the runtime's do any more) is left alone.
NOT_OPTED_IN = vllm.SamplingParams(max_tokens=1)


@pytest.fixture
def vllm_config(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps(
        {"no_timestamps_token_id": 50363, "eos_token_id": 50257, "max_initial_timestamp_index": 50,
         "lang_to_id": LANGUAGES}))
    return SimpleNamespace(model_config=SimpleNamespace(model=str(tmp_path)))


def update(processor, batch_size, added=(), removed=(), moved=()):
    processor.update_state(BatchUpdate(batch_size=batch_size, added=list(added), removed=list(removed),
                                       moved=list(moved)))


def expected_row(logits_row: torch.Tensor, tokens: list[int], then_task_id=None) -> torch.Tensor:
    return RULES.constrain(logits_row[None].clone(), [RULES.track(list(tokens), then_task_id)])[0]


def test_vllm_loads_it_by_its_qualified_name():
    """What ``build_logitsprocs`` calls on the engine's ``logits_processors`` (the built-in ones need a GPU)."""
    assert _load_custom_logitsprocs([VLLM_LOGITS_PROCESSOR]) == [WhisperTimestampRules]


def test_constrains_only_opted_in_rows_as_the_batch_changes(vllm_config):
    processor = WhisperTimestampRules(vllm_config, torch.device("cpu"), False)
    first, detection, third = [], [], []
    update(processor, 3, added=[(0, TRANSCRIBE, [50258], first), (1, NOT_OPTED_IN, [50258], detection),
                                (2, TRANSCRIBE, [50258], third)])
    logits = torch.randn(3, VOCABULARY)
    constrained = processor.apply(logits.clone())
    assert torch.equal(constrained[0], expected_row(logits[0], first))
    assert torch.equal(constrained[1], logits[1])  # not opted in: left alone
    assert torch.equal(constrained[2], expected_row(logits[2], third))

    # vLLM appends to its own lists; the processor follows them without being told.
    first += [RULES.timestamp_begin, 400, 401, RULES.timestamp_begin + 30]
    third += [RULES.timestamp_begin + 2, 900]
    # The unconstrained request finishes; the last row moves into its slot.
    update(processor, 2, removed=[1], moved=[(2, 1, MoveDirectionality.UNIDIRECTIONAL)])
    logits = torch.randn(2, VOCABULARY)
    constrained = processor.apply(logits.clone())
    assert torch.equal(constrained[0], expected_row(logits[0], first))
    assert torch.equal(constrained[1], expected_row(logits[1], third))

    # A swap, then a new transcription request in a reused slot.
    update(processor, 2, moved=[(0, 1, MoveDirectionality.SWAP)])
    update(processor, 2, removed=[0])
    fresh = []
    update(processor, 2, added=[(0, TRANSCRIBE, [50258], fresh)])
    logits = torch.randn(2, VOCABULARY)
    constrained = processor.apply(logits.clone())
    assert torch.equal(constrained[0], expected_row(logits[0], fresh))
    assert torch.equal(constrained[1], expected_row(logits[1], first))


def test_a_batch_without_transcriptions_is_untouched(vllm_config):
    processor = WhisperTimestampRules(vllm_config, torch.device("cpu"), False)
    update(processor, 1, added=[(0, NOT_OPTED_IN, [50258], [])])
    logits = torch.randn(1, VOCABULARY)
    assert torch.equal(processor.apply(logits.clone()), logits)


def test_a_request_without_a_language_detects_it_then_follows_the_rules(vllm_config):
    processor = WhisperTimestampRules(vllm_config, torch.device("cpu"), False)
    detecting, given = [], []
    update(processor, 2, added=[(0, DETECT_THEN_TRANSCRIBE, [50258], detecting), (1, TRANSCRIBE, [50258], given)])
    for step in range(4):
        logits = torch.randn(2, VOCABULARY)
        constrained = processor.apply(logits.clone())
        assert torch.equal(constrained[0], expected_row(logits[0], detecting, TRANSCRIBE_TOKEN))
        assert torch.equal(constrained[1], expected_row(logits[1], given))
        allowed = torch.nonzero(torch.isfinite(constrained[0])).flatten().tolist()
        if step == 0:
            assert len(allowed) == 1 and allowed[0] in LANGUAGES.values()
        if step == 1:
            assert allowed == [TRANSCRIBE_TOKEN]
        detecting.append(int(constrained[0].argmax()))
        given.append(int(constrained[1].argmax()))
    assert detecting[2] >= RULES.timestamp_begin  # after the prefix, a timestamp comes first
