"""The Dockerfiles use only commands our package installs, and run as a numeric non-root user."""

import json
import re
import tomllib

import pytest

from chart_render import REPO_ROOT, one

DOCKERFILES = {"operator": REPO_ROOT / "operator" / "Dockerfile", "runtime": REPO_ROOT / "runtime" / "Dockerfile"}
CONSOLE_SCRIPTS = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def instructions(dockerfile: str, name: str) -> list[str]:
    """Arguments of every `name` instruction of the final stage (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILES[dockerfile].read_text())
    final_stage = re.split(r"^FROM ", text, flags=re.MULTILINE)[-1]
    return [line.split(None, 1)[1] for line in final_stage.splitlines() if line.upper().startswith(name + " ")]


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_entrypoint_is_one_of_our_console_scripts(dockerfile):
    (entrypoint,) = instructions(dockerfile, "ENTRYPOINT")
    assert json.loads(entrypoint)[0] in CONSOLE_SCRIPTS


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_image_runs_as_a_numeric_non_root_user(dockerfile):
    *_, user = instructions(dockerfile, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_operator_image_starts_the_operator():
    (entrypoint,) = instructions("operator", "ENTRYPOINT")
    assert json.loads(entrypoint) == ["whisper-operator", "run"]
    assert CONSOLE_SCRIPTS["whisper-operator"] == "whisper_operator.cli:main"


def test_cluster_serving_runtime_runs_the_runtime_image_entrypoint(default_release):
    (container,) = one(default_release, "ClusterServingRuntime")["spec"]["containers"]
    (entrypoint,) = instructions("runtime", "ENTRYPOINT")
    assert container["command"] == json.loads(entrypoint)
    assert CONSOLE_SCRIPTS[container["command"][0]] == "whisper_runtime.cli:main"
