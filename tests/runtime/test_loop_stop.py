"""Stopping a looping decode early: the pattern test, and the Transformers engine's stopping criterion."""

import random

import torch
from whisper_runtime.engines.loop_stop import (
    LOOP_PATTERN_MAX_TOKENS,
    LOOP_PATTERN_REPEATS,
    ends_in_loop,
    vllm_repetition_detection,
)
from whisper_runtime.engines.transformers_engine import RepetitionStop

NINE, COMMA, EOT = 1023, 11, 50257


def vllm_rule(token_ids: list[int], max_pattern: int, min_pattern: int, min_count: int) -> bool:
    """vLLM 0.24's ``check_sequence_repetition``, as its source states it (vllm/v1/core/sched/utils.py)."""
    for pattern_len in range(min_pattern, max_pattern + 1):
        if pattern_len * min_count > len(token_ids):
            return False
        if all(
            token_ids[-(pattern_len * m + n)] == token_ids[-n]
            for n in range(1, pattern_len + 1)
            for m in range(1, min_count)
        ):
            return True
    return False


def test_a_short_pattern_repeated_eight_times_is_a_loop_and_seven_are_not():
    said = [50364, 3342, 11, 1614, 11]  # a timestamp and "60, 7,"
    assert ends_in_loop(said + [COMMA, NINE] * LOOP_PATTERN_REPEATS)
    assert not ends_in_loop(said + [COMMA, NINE] * (LOOP_PATTERN_REPEATS - 1))
    assert ends_in_loop([NINE] * LOOP_PATTERN_REPEATS) and not ends_in_loop([NINE] * (LOOP_PATTERN_REPEATS - 1))
    sentence = list(range(100, 100 + LOOP_PATTERN_MAX_TOKENS))
    assert ends_in_loop(sentence * LOOP_PATTERN_REPEATS)
    assert not ends_in_loop((sentence + [7]) * LOOP_PATTERN_REPEATS)  # longer than the longest pattern looked for


def test_the_test_is_vllms_with_the_parameters_the_engine_hands_it():
    params = vllm_repetition_detection()
    rng = random.Random(0)
    for _ in range(3000):
        alphabet = rng.randint(1, 4)
        ids = [rng.randrange(alphabet) for _ in range(rng.randint(0, 150))]
        expected = vllm_rule(ids, params["max_pattern_size"], params["min_pattern_size"], params["min_count"])
        assert ends_in_loop(ids) == expected, ids


def test_the_transformers_criterion_stops_only_rows_in_a_loop_and_remembers_them():
    rows = torch.tensor([
        list(range(5, 23)),  # speech
        [5, 6] + [COMMA, NINE] * 8,  # a loop
        list(range(5, 15)) + [EOT] * 8,  # ended: its padding repeats, it is no loop
    ])
    stop = RepetitionStop(pad_id=EOT)
    assert stop(rows, None).tolist() == [False, True, False] and stop.stopped == {1}
    padded = torch.cat([rows, torch.tensor([[23], [EOT], [EOT]])], dim=1)
    assert stop(padded, None).tolist() == [False, True, False]  # the stopped row stays stopped under its padding
