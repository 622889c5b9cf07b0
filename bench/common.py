"""What the benchmarks share: the workload on disk, repeated timing with its spread, WER, the table.

A workload is a folder made by ``bench/prepare_data.py``: ``manifest.json`` lists audio files (16 kHz
FLAC) with their reference text, each either one long-form recording or one of many short clips.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile

from whisper_devkit.wer import word_error_rate


@dataclasses.dataclass(frozen=True)
class Item:
    name: str
    kind: str  # "long" or "clip"
    text: str
    seconds: float
    audio: np.ndarray


def load_workload(folder: Path, kinds: Sequence[str] = ("long", "clip")) -> list[Item]:
    manifest = json.loads((folder / "manifest.json").read_text())
    items = []
    for entry in manifest["items"]:
        if entry["kind"] not in kinds:
            continue
        audio, rate = soundfile.read(folder / entry["file"], dtype="float32")
        if rate != 16000:
            raise ValueError(f"{entry['file']}: expected 16 kHz audio, got {rate} Hz")
        items.append(Item(entry["file"], entry["kind"], entry["text"], len(audio) / rate, audio))
    return items


def audio_seconds(items: Iterable[Item]) -> float:
    return sum(item.seconds for item in items)


def corpus_wer(items: Sequence[Item], hypotheses: Sequence[str]) -> float | None:
    """WER in percent over the items (errors summed over items, not an average of ratios); None for no items."""
    if not items:
        return None
    return round(100.0 * word_error_rate([item.text for item in items], list(hypotheses)), 2)


def wer_by_kind(items: Sequence[Item], hypotheses: Sequence[str]) -> dict[str, float | None]:
    """WER over everything, over the long-form recordings and over the short clips."""
    def of(kind: str) -> float | None:
        chosen = [(item, text) for item, text in zip(items, hypotheses) if item.kind == kind]
        return corpus_wer([item for item, _ in chosen], [text for _, text in chosen])
    return {"wer_all": corpus_wer(items, hypotheses), "wer_long": of("long"), "wer_clips": of("clip")}


@dataclasses.dataclass(frozen=True)
class Spread:
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    def __str__(self) -> str:
        if len(self.values) == 1:
            return f"{self.values[0]:.1f}"
        return f"{self.mean:.1f} ± {statistics.stdev(self.values):.1f} [{min(self.values):.1f}..{max(self.values):.1f}]"


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]], out=sys.stdout) -> None:
    """A Markdown table, so it pastes straight into docs/benchmarks.md."""
    print(f"\n### {title}\n", file=out)
    print("| " + " | ".join(header) + " |", file=out)
    print("|" + "---|" * len(header), file=out)
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |", file=out)
    out.flush()


def append_jsonl(path: Path | None, record: dict) -> None:
    if path is not None:
        with path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
