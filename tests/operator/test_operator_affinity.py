"""GPU scheduling: the rendered node affinity admits exactly the nodes with compute capability >= the minimum.

A small matcher implements Kubernetes' nodeSelectorTerms semantics (terms ORed, expressions ANDed, Gt/Lt
compare integers strictly, a missing label fails In/Gt/Lt) so each node is judged as the scheduler would.
"""

from __future__ import annotations

import pytest

from whisper_operator.render import gpu_tolerations, render_inference_service, render_node_affinity
from whisper_operator.spec import Endpoint

OPERATORS = {
    "In": lambda value, values: value is not None and value in values,
    "NotIn": lambda value, values: value is None or value not in values,
    "Exists": lambda value, values: value is not None,
    "DoesNotExist": lambda value, values: value is None,
    "Gt": lambda value, values: value is not None and value.isdigit() and int(value) > int(values[0]),
    "Lt": lambda value, values: value is not None and value.isdigit() and int(value) < int(values[0]),
}


def admits(node_affinity: dict, labels: dict[str, str]) -> bool:
    terms = node_affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    def matches(rule: dict) -> bool:
        return OPERATORS[rule["operator"]](labels.get(rule["key"]), rule.get("values", []))

    return any(all(matches(rule) for rule in term["matchExpressions"]) for term in terms)


def gpu_node(major: int, minor: int, product: str = "NVIDIA-L4") -> dict[str, str]:
    return {
        "nvidia.com/gpu.compute.major": str(major),
        "nvidia.com/gpu.compute.minor": str(minor),
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.family": "undefined",
    }


@pytest.mark.parametrize(
    ("gpu", "capability", "admitted"),
    [
        ("H100", (9, 0), True),
        ("L4 / L40S", (8, 9), True),
        ("A10 / RTX 3090", (8, 6), False),
        ("A100", (8, 0), False),
        ("T4", (7, 5), False),
        ("B200", (10, 0), True),
        ("RTX PRO 6000 Blackwell", (12, 0), True),
    ],
)
def test_default_minimum_admits_ada_and_newer_only(gpu, capability, admitted):
    affinity = render_node_affinity((8, 9))
    assert admits(affinity, gpu_node(*capability)) is admitted, gpu


def test_node_without_gfd_labels_is_not_admitted():
    assert not admits(render_node_affinity((8, 9)), {"kubernetes.io/os": "linux"})


@pytest.mark.parametrize("minimum", [(major, minor) for major in (7, 8, 9, 10, 12) for minor in (0, 1, 5, 9)])
def test_affinity_means_greater_or_equal_for_any_minimum(minimum):
    affinity = render_node_affinity(minimum)
    for major in range(5, 14):
        for minor in range(0, 11):
            assert admits(affinity, gpu_node(major, minor)) is ((major, minor) >= minimum), (minimum, major, minor)


def test_product_allow_list_applies_to_every_term():
    affinity = render_node_affinity((8, 9), ["NVIDIA-L4", "NVIDIA-H100-80GB-HBM3"])
    assert admits(affinity, gpu_node(8, 9, "NVIDIA-L4"))
    assert admits(affinity, gpu_node(9, 0, "NVIDIA-H100-80GB-HBM3"))
    assert not admits(affinity, gpu_node(9, 0, "NVIDIA-H200"))
    assert not admits(affinity, gpu_node(8, 9, "NVIDIA-L40S"))
    assert not admits(affinity, gpu_node(8, 6, "NVIDIA-L4"))


def test_gpu_family_label_is_never_used():
    rendered = str(render_node_affinity((8, 9), ["NVIDIA-L4"]))
    assert "gpu.family" not in rendered


def test_inference_service_carries_affinity_and_gpu_toleration():
    body = {"metadata": {"name": "w", "namespace": "ns"}, "spec": {"model": {"preset": "large-v3"}}}
    predictor = render_inference_service(Endpoint.from_body(body))["spec"]["predictor"]
    assert admits(predictor["affinity"]["nodeAffinity"], gpu_node(8, 9))
    assert not admits(predictor["affinity"]["nodeAffinity"], gpu_node(8, 6))
    assert gpu_tolerations()[0] in predictor["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in predictor["tolerations"]
