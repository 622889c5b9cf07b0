"""Build the benchmark workload: long-form recordings and many short clips, all with known text.

Runs where espeak-ng, sox and the Debian corpora are available (not on the GPU machine); writes
16 kHz FLAC and ``manifest.json`` into one folder that travels to the GPU machine. Kinds: ``long`` (one
long-form recording), ``concurrent`` (distinct recordings of equal length, sent at once) and ``clip``.

    python bench/prepare_data.py --out bench-data --long-minutes 46 --concurrent 8 --concurrent-minutes 9 --clips 64
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from whisper_devkit import speech


def to_flac(source: Path, target: Path) -> None:
    subprocess.run(["sox", str(source), "-r", "16000", "-c", "1", "-b", "16", str(target)], check=True)


def clip_pool() -> list[speech.Utterance]:
    """Real read speech first, then synthetic voices, then telephone prompts."""
    return speech.pocketsphinx_corpus() + speech.espeak_corpus("en") + speech.asterisk_corpus("en")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--long-minutes", type=float, default=12.0)
    parser.add_argument("--concurrent", type=int, default=0, help="distinct recordings for concurrent requests")
    parser.add_argument("--concurrent-minutes", type=float, default=9.0)
    parser.add_argument("--clips", type=int, default=120)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    entries = []
    long_recording = speech.long_form(args.long_minutes, "en")
    to_flac(long_recording.path, args.out / "long-0.flac")
    entries.append({"file": "long-0.flac", "kind": "long", "text": long_recording.text,
                    "seconds": long_recording.duration})
    for index in range(args.concurrent):  # each starts at another prompt, so no two files are alike
        recording = speech.long_form(args.concurrent_minutes, "en", first_clip=1 + 37 * index)
        name = f"concurrent-{index}.flac"
        to_flac(recording.path, args.out / name)
        entries.append({"file": name, "kind": "concurrent", "text": recording.text, "seconds": recording.duration})
    pool = clip_pool()
    if len(pool) < args.clips:
        raise SystemExit(f"only {len(pool)} clips with known text are available, {args.clips} were asked for")
    for index, clip in enumerate(pool[: args.clips]):
        name = f"clip-{index:03d}.flac"
        to_flac(clip.path, args.out / name)
        entries.append({"file": name, "kind": "clip", "text": clip.text, "seconds": clip.duration})
    (args.out / "manifest.json").write_text(json.dumps({"items": entries}, indent=1))
    total = sum(entry["seconds"] for entry in entries)
    print(f"{len(entries)} files, {total / 60:.1f} minutes of audio in {args.out}")


if __name__ == "__main__":
    main()
