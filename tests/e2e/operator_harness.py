"""What the operator's end-to-end tests share: names, polling, reading objects.

The Helm release and the operator process come from ``whisper_devkit.demo``, which the demo uses too: the
operator runs on this machine (not in the chart's pod, which kwok only pretends to run) with the token of the
chart's ServiceAccount, so every API call it makes is checked against the chart's RBAC.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TypeVar

from whisper_devkit.cluster import LocalCluster
from whisper_devkit.demo import (CHART, EXAMPLE, OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, RELEASE,  # noqa: F401
                                 OperatorProcess, chart_operator_env, install_chart, uninstall_chart)

RUNTIME_NAME = "whisper-vllm"
ISVC = "inferenceservices.serving.kserve.io"
WEP = "whisperendpoints.whisper.kserve-contrib.io"
#: Nodes the default minComputeCapability 8.9 admits, and the GPU nodes it must never use.
ADMITTED_GPU_NODES = {"gpu-h100-0", "gpu-l4-0"}
REFUSED_GPU_NODES = {"gpu-a10g-0", "gpu-t4-0"}

T = TypeVar("T")


class NotYet(AssertionError):
    """Raised by a polled check that has not become true yet (the last one is reported on timeout)."""


def eventually(check: Callable[[], T], timeout: float = 60.0, interval: float = 0.5) -> T:
    """Call ``check`` until it returns without AssertionError; re-raise its last failure after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


def get_json(cluster: LocalCluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def get_or_none(cluster: LocalCluster, *args: str) -> dict | None:
    found = cluster.kubectl("get", *args, "-o", "json", "--ignore-not-found")
    return json.loads(found.stdout) if found.stdout.strip() else None


def condition(obj: dict, kind: str) -> dict:
    conditions = {item["type"]: item for item in (obj.get("status") or {}).get("conditions") or []}
    if kind not in conditions:
        raise NotYet(f"no {kind} condition yet in {obj.get('status')}")
    return conditions[kind]
