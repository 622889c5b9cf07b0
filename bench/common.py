"""What the benchmarks share: the workload on disk, repeated timing with its spread, WER, the table.

A workload is a folder made by ``bench/prepare_data.py``: ``manifest.json`` lists audio files (16 kHz
FLAC) with their reference text, each either one long-form recording or one of many short clips.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile

from whisper_devkit.wer import word_error_rate


@dataclasses.dataclass(frozen=True)
class Item:
    name: str
    kind: str  # "long", "concurrent" or "clip"
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


def accuracy(items: Sequence[Item], hypotheses: Sequence[str]) -> dict:
    """WER over everything, over the long-form recordings and over the short clips, and each file's text
    (so that a change in WER can be traced to the files, and windows, that caused it)."""
    def of(kind: str) -> float | None:
        chosen = [(item, text) for item, text in zip(items, hypotheses) if item.kind == kind]
        return corpus_wer([item for item, _ in chosen], [text for _, text in chosen])
    return {"wer_all": corpus_wer(items, hypotheses), "wer_long": of("long"), "wer_clips": of("clip"),
            "hypotheses": {item.name: text for item, text in zip(items, hypotheses)}}


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


class GpuSampler:
    """Device-wide GPU memory peak and utilization, sampled in a thread (vLLM's engine is another process).

    Utilization (NVML's percentage of time a kernel was running) is averaged only over samples taken
    while ``measuring`` is set, i.e. during the timed part: a low figure means the GPU waited for the CPU.
    """

    def __init__(self, interval: float = 0.2):
        import torch

        self._cuda = torch.cuda
        self._peak = 0
        self._busy: list[int] = []
        self.measuring = False
        self._done = threading.Event()
        if self._cuda.is_available():
            threading.Thread(target=self._sample, args=(interval,), daemon=True).start()

    def _sample(self, interval: float) -> None:
        while not self._done.wait(interval):
            free, total = self._cuda.mem_get_info()
            self._peak = max(self._peak, total - free)
            if self.measuring:
                self._busy.append(self._cuda.utilization())

    def stop(self) -> None:
        self._done.set()

    def reset(self) -> None:
        """Start a new measurement: the peak and the busy samples so far are forgotten."""
        self._peak = 0
        self._busy = []

    def peak_gib(self) -> float | None:
        return round(self._peak / 2**30, 2) if self._peak else None

    def busy_percent(self) -> float | None:
        return round(statistics.fmean(self._busy), 1) if self._busy else None


def start_profiler(pid: int, target: Path, seconds: int = 15) -> subprocess.Popen:
    """py-spy samples a process and its children (vLLM's engine core) for ``seconds``: collapsed stacks."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--subprocesses", "--duration", str(seconds),
                             "--rate", "50", "--format", "raw", "--output", str(target)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


#: Our runtime's counters that say where a request's time went (docs/runtime.md, "Metrics").
PHASE_METRIC, WINDOW_COUNTERS = "whisper_phase_seconds", ("whisper_resumed_windows", "whisper_loop_retries")
SERIAL_METRIC = "whisper_serial_tokens"


def counters_of(exposition: str) -> dict[str, float]:
    """Seconds summed per phase, windows resumed or retried and tokens decoded in series, from Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    counters: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if family.name == PHASE_METRIC and sample.name == PHASE_METRIC + "_sum":
                counters[sample.labels["phase"] + "_s"] = sample.value
            elif family.name in WINDOW_COUNTERS and sample.name.endswith("_total"):
                counters[family.name.removeprefix("whisper_")] = sample.value
            elif family.name == SERIAL_METRIC and sample.name == SERIAL_METRIC + "_sum":
                counters["serial_tokens"] = sample.value
    return counters


def per_request(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
    """What each request of a cell spent or did on average, from counters read before and after it."""
    return {name: round((value - before.get(name, 0.0)) / requests, 4) for name, value in after.items()}


#: The table column phases_column fills.
PHASES_HEADER = "per request: decode / windows / resumed-rest s (windows; tokens in series)"


def phases_column(phases: dict[str, float]) -> str:
    if "first_round_s" not in phases:
        return ""
    return (f"{phases.get('audio_decode_s', 0):.2f} / {phases['first_round_s']:.2f} / {phases['resumption_s']:.2f}"
            f" ({phases.get('resumed_windows', 0):.2f} resumed, {phases.get('loop_retries', 0):.2f} retried;"
            f" {phases.get('serial_tokens', 0):.0f} in series)")
