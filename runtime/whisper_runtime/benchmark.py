"""Benchmark-only mode: a model shape with random weights, decoding a fixed number of tokens per window.

Speed does not depend on the weights' values, so a large-v3 shape with random weights measures what large-v3
costs on a GPU even where its weights cannot be fetched, and a fixed number of tokens per window makes every
engine do exactly the same work. Transcripts mean nothing in this mode, so it is kept out of serving: the
flags are not part of the argument contract (the operator cannot write them, the CRD and chart cannot reach
them), and a server started with them says so in its log and marks every response.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Optional, Sequence

#: Tokens decoded per window unless told otherwise: about what 30 s of fast speech takes.
DEFAULT_TOKENS_PER_WINDOW = 128
#: Whisper's decoder holds 448 positions; the decoder prompt takes at least 3 of them.
MAX_TOKENS_PER_WINDOW = 440
#: The HTTP header (and v2 response parameter, without the X-) that marks a benchmark server's answers.
NOTICE_HEADER = "X-Whisper-Benchmark-Mode"
NOTICE_PARAMETER = "benchmark_mode"


@dataclasses.dataclass(frozen=True)
class BenchmarkMode:
    tokens_per_window: int = DEFAULT_TOKENS_PER_WINDOW

    def __post_init__(self) -> None:
        if not 1 <= self.tokens_per_window <= MAX_TOKENS_PER_WINDOW:
            raise ValueError(f"tokens per window must be 1..{MAX_TOKENS_PER_WINDOW}, got {self.tokens_per_window}")

    @property
    def notice(self) -> str:
        return f"random weights, {self.tokens_per_window} tokens per window: for speed benchmarks only, the text is meaningless"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    group = parser.add_argument_group("benchmark only (never for serving: the transcripts are meaningless)")
    group.add_argument(
        "--benchmark_random_weights",
        action="store_true",
        help="load random weights of the model folder's shape (config.json only) and decode a fixed number of tokens per window",
    )
    group.add_argument("--benchmark_tokens_per_window", type=int, default=DEFAULT_TOKENS_PER_WINDOW)
    return parser


def from_namespace(namespace: argparse.Namespace) -> Optional[BenchmarkMode]:
    if not namespace.benchmark_random_weights:
        return None
    return BenchmarkMode(namespace.benchmark_tokens_per_window)


def parse(argv: Sequence[str]) -> Optional[BenchmarkMode]:
    """Only the benchmark flags of a command line (the others are left alone), like ``contract.parse``."""
    namespace, _ = add_arguments(argparse.ArgumentParser(add_help=False)).parse_known_args(list(argv))
    return from_namespace(namespace)
