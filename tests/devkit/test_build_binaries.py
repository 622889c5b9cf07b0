"""devkit/build-binaries.sh's `build`: a binary is rebuilt when its recipe (module, package, version, linker
flags) changes and kept when it does not. A real `go build` of a tiny module (no network: GOPROXY=off)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from whisper_devkit.binaries import BUILD_SCRIPT

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="needs Go")

GREETER = '''package main

import "fmt"

var greeting = "unset"

func main() { fmt.Println(greeting) }
'''


@pytest.fixture
def build(tmp_path: Path):
    """`build greeter probe example.com/greeter VERSION FLAGS` from the sourced script; returns its output line."""
    (tmp_path / "greeter").mkdir()
    (tmp_path / "greeter" / "go.mod").write_text("module example.com/greeter\n\ngo 1.24\n")
    (tmp_path / "greeter" / "main.go").write_text(GREETER)
    probe = tmp_path / "work" / "probe"
    probe.mkdir(parents=True)
    (probe / "go.mod").write_text("module whisper-devkit/probe\n\ngo 1.24\n\n"
                                  "replace example.com/greeter => ../../greeter\n")

    def run(version: str, flags: str) -> str:
        script = (f'source "{BUILD_SCRIPT}"; bin="{tmp_path}/bin"; work="{tmp_path}/work"; mkdir -p "$bin"; '
                  f'build greeter probe example.com/greeter "{version}" "{flags}"')
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "GOPROXY": "off", "GOFLAGS": "-buildvcs=false"})
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    return run


def greet(tmp_path: Path) -> str:
    return subprocess.run([str(tmp_path / "bin" / "greeter")], capture_output=True, text=True).stdout.strip()


def test_a_changed_recipe_rebuilds_and_an_unchanged_one_is_kept(build, tmp_path):
    assert build("v0.1.0", "-X main.greeting=one").startswith("built")
    assert greet(tmp_path) == "one"
    assert build("v0.1.0", "-X main.greeting=one").startswith("cached")

    assert build("v0.1.0", "-X main.greeting=two").startswith("built")  # new linker flags
    assert greet(tmp_path) == "two"
    assert build("v0.2.0", "-X main.greeting=two").startswith("built")  # new version
    recipe = (tmp_path / "bin" / "greeter.recipe").read_text()
    assert recipe.strip() == "probe example.com/greeter@v0.2.0 -ldflags=-s -w -X main.greeting=two"


def test_a_binary_without_recipe_is_rebuilt(build, tmp_path):
    """Binaries from before recipes existed (e.g. a helm without its Kubernetes version) are not trusted."""
    build("v0.1.0", "-X main.greeting=one")
    (tmp_path / "bin" / "greeter.recipe").unlink()
    assert build("v0.1.0", "-X main.greeting=one").startswith("built")
