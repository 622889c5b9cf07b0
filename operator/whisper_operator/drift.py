"""Drift: where a live object no longer holds what the operator decided (pure; no I/O).

Only what we render is compared: fields that the API server, KServe's webhook or other controllers add
(defaults, status, extra labels) are not drift; a changed or removed value of ours is.
"""

from __future__ import annotations

from typing import Any, Mapping


def _drift(desired: Any, live: Any, path: str) -> list[str]:
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return [path]
        return [found for key, value in desired.items() for found in _drift(value, live.get(key), f"{path}.{key}")]
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return [path]
        return [found for index, pair in enumerate(zip(desired, live)) for found in _drift(*pair, f"{path}[{index}]")]
    return [] if desired == live else [path]


def drifted_paths(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """Paths (e.g. ``spec.predictor.model.args``) whose live value differs from the desired one."""
    compared = {
        "metadata": {key: desired["metadata"].get(key, {}) for key in ("labels", "annotations")},
        "spec": desired["spec"],
    }
    return [path.lstrip(".") for path in _drift(compared, live, "")]
