from __future__ import annotations

import pytest

import operator_testkit as kit


@pytest.fixture(scope="session")
def whisper_crd():
    return kit.whisper_crd()


@pytest.fixture(scope="session")
def whisper_schema(whisper_crd):
    return kit.version_schema(whisper_crd, "v1alpha1")


@pytest.fixture(scope="session")
def kserve_isvc_validator():
    return kit.strict_validator(kit.version_schema(kit.kserve_isvc_crd(), "v1beta1"))
