"""Where the local control plane's Go-built binaries live.

One folder per content of ``devkit/go/versions.env``, so changing any pin builds a fresh set and old sets stay
usable side by side. ``devkit/build-binaries.sh`` asks this module for the folder; Python code asks for tools.

CLI: ``python -m whisper_devkit.binaries dir | path TOOL | build``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

DEVKIT_ROOT = Path(__file__).resolve().parent.parent
VERSIONS_FILE = DEVKIT_ROOT / "go" / "versions.env"
BUILD_SCRIPT = DEVKIT_ROOT / "build-binaries.sh"


class MissingBinaryError(FileNotFoundError):
    """A control-plane binary has not been built for the pinned versions."""


def cache_root() -> Path:
    return Path(os.environ.get("WHISPER_KSERVE_CACHE", "~/.cache/whisper-kserve")).expanduser()


def pinned_versions() -> dict[str, str]:
    lines = VERSIONS_FILE.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.lstrip().startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def bin_dir() -> Path:
    digest = hashlib.sha256(VERSIONS_FILE.read_bytes()).hexdigest()[:12]
    return cache_root() / "bin" / f"k8s-{pinned_versions()['KUBERNETES_VERSION']}-{digest}"


def tool_path(tool: str) -> Path:
    """The built binary of ``tool``; raises MissingBinaryError if it is not there yet."""
    path = bin_dir() / tool
    if not os.access(path, os.X_OK):
        raise MissingBinaryError(f"{path} is missing: run `bash {BUILD_SCRIPT}`")
    return path


def ensure_built() -> Path:
    """Build whatever is missing or was built by another recipe (the script decides; when nothing changed it
    returns in well under a second)."""
    subprocess.run(["bash", str(BUILD_SCRIPT)], check=True)
    return bin_dir()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    commands = {
        "dir": lambda: bin_dir(),
        "path": lambda: tool_path(args[1]),
        "build": ensure_built,
    }
    if not args or args[0] not in commands or (args[0] == "path" and len(args) != 2):
        print("usage: python -m whisper_devkit.binaries dir | path TOOL | build", file=sys.stderr)
        return 2
    try:
        print(commands[args[0]]())
    except MissingBinaryError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
