"""Fixtures for the chart tests: the pinned helm binary and rendered releases."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from whisper_devkit import binaries

from chart_render import NON_DEFAULT_VALUES_FILE, template, values_file


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    """helm as built by devkit/build-binaries.sh; CI builds it first (`make test`), so there it must exist."""
    try:
        return binaries.tool_path("helm")
    except binaries.MissingBinaryError as missing:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"helm not built on this machine ({missing})")


@pytest.fixture(scope="session")
def default_release(helm_binary) -> list[dict]:
    """The chart rendered with its default values, CRDs included."""
    return template(helm_binary, None, "--include-crds")


@pytest.fixture(scope="session")
def custom_release(helm_binary) -> list[dict]:
    """The chart rendered with tests/chart/values-nondefault.yaml."""
    return template(helm_binary, NON_DEFAULT_VALUES_FILE)


@pytest.fixture(params=["default_release", "custom_release"])
def release(request) -> list[dict]:
    """Each of the two renderings above, in turn."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def render(helm_binary, tmp_path):
    """Render the chart with the given values (a dict, merged over the defaults by Helm)."""
    def rendered(values: dict, *extra: str) -> list[dict]:
        return template(helm_binary, values_file(tmp_path, values), *extra)
    return rendered
