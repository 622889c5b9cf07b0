"""Build-once folders in the devkit cache (``${WHISPER_KSERVE_CACHE:-~/.cache/whisper-kserve}``).

A folder is built in a temporary sibling and renamed into place when complete, so an interrupted build never
leaves a half-made folder that later runs would trust.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from whisper_devkit.binaries import cache_root


def cache_path(*parts: str) -> Path:
    return cache_root().joinpath(*parts)


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Return ``target``, first calling ``build(empty_folder)`` and renaming the result there if it is missing."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(staging)
        staging.chmod(0o755)  # mkdtemp makes it private; models are mounted into pods running as other users
        os.rename(staging, target)
    except OSError:
        if not target.is_dir():  # a concurrent build that won the rename is fine; anything else is not
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
