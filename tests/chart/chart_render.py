"""Run Helm on the chart and read what it renders."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "whisper-operator"
RELEASE = "whisper"
NAMESPACE = "whisper-system"


NON_DEFAULT_VALUES_FILE = Path(__file__).with_name("values-nondefault.yaml")
#: Every overridable part of the chart set to something other than its default.
NON_DEFAULT = yaml.safe_load(NON_DEFAULT_VALUES_FILE.read_text())


class HelmFailed(AssertionError):
    """Helm exited non-zero; the message holds its stderr."""


def helm(binary: Path, *args: str) -> str:
    result = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise HelmFailed(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def values_file(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def template(binary: Path, values: Path | None = None, *extra: str) -> list[dict]:
    """`helm template` of the chart as the release `whisper` in `whisper-system`, as a list of objects; helm assumes
    the Kubernetes version it was built for (test_chart_lint.py checks it is the pinned one)."""
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, *extra]
    if values is not None:
        args += ["--values", str(values)]
    return [doc for doc in yaml.safe_load_all(helm(binary, *args)) if doc]


def select(objects: list[dict], kind: str) -> list[dict]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[dict], kind: str) -> dict:
    (found,) = select(objects, kind)
    return found
