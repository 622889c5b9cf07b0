"""GPU placement from NVIDIA GPU Feature Discovery labels.

"Compute capability >= MAJOR.MINOR" is written with the integer labels ``nvidia.com/gpu.compute.major`` and
``.minor``, never ``nvidia.com/gpu.family`` (it reads ``undefined`` for Blackwell and ``ampere`` for an L4 in
some GFD versions). Node selector terms are ORed and the expressions inside one term are ANDed; ``Gt`` is strict
and compares integers, so ">= m" is written ``Gt m-1``.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..resources import GFD_COMPUTE_MAJOR, GFD_COMPUTE_MINOR, GFD_PRODUCT, GPU_RESOURCE


def _greater_than(label: str, value: int) -> dict[str, Any]:
    return {"key": label, "operator": "Gt", "values": [str(value)]}


def compute_capability_terms(minimum: tuple[int, int]) -> list[list[dict[str, Any]]]:
    """Node selector terms (as lists of match expressions) admitting compute capability >= ``minimum``."""
    major, minor = minimum
    if minor == 0:
        return [[_greater_than(GFD_COMPUTE_MAJOR, major - 1)]]
    return [
        [_greater_than(GFD_COMPUTE_MAJOR, major)],
        [
            {"key": GFD_COMPUTE_MAJOR, "operator": "In", "values": [str(major)]},
            _greater_than(GFD_COMPUTE_MINOR, minor - 1),
        ],
    ]


def render_node_affinity(minimum: tuple[int, int], products: Sequence[str] = ()) -> dict[str, Any]:
    """Required node affinity: compute capability >= ``minimum`` and, if given, a GPU product from the allow-list."""
    product_rule = [{"key": GFD_PRODUCT, "operator": "In", "values": list(products)}] if products else []
    terms = [{"matchExpressions": expressions + product_rule} for expressions in compute_capability_terms(minimum)]
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}


def gpu_tolerations() -> list[dict[str, Any]]:
    """GPU nodes are commonly tainted ``nvidia.com/gpu:NoSchedule``; our pods tolerate it."""
    return [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
