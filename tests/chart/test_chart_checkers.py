"""The offline checkers the chart tests rely on do find what they look for."""

from k8s_types import type_problems
from pod_security import restricted_violations


def test_restricted_profile_flags_an_unsafe_pod():
    pod = {
        "hostNetwork": True,
        "containers": [{"name": "app", "securityContext": {"privileged": True, "runAsUser": 0,
                                                           "capabilities": {"add": ["SYS_ADMIN"]}},
                        "ports": [{"containerPort": 80, "hostPort": 80}]}],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
    }
    assert sorted(restricted_violations(pod)) == sorted([
        "hostNetwork is not allowed",
        "volume root: hostPath is not allowed",
        "container app: privileged",
        "container app: allowPrivilegeEscalation must be false",
        "container app: capabilities must drop ALL",
        "container app: capabilities may add only NET_BIND_SERVICE",
        "container app: runAsNonRoot must be true",
        "container app: runAsUser must not be 0",
        "container app: seccompProfile must be RuntimeDefault or Localhost",
        "container app: hostPort is not allowed",
    ])


def test_restricted_profile_takes_pod_level_settings_for_every_container():
    pod = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "securityContext": {"allowPrivilegeEscalation": False,
                                                           "capabilities": {"drop": ["ALL"]}}}],
    }
    assert restricted_violations(pod) == []


def test_type_check_finds_misspelt_fields_and_wrong_scalars():
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1", "kind": "ClusterServingRuntime", "metadata": {"name": "x"},
        "spec": {"supportedModelFormats": [{"name": "whisper", "version": 1}],
                 "containers": [{"name": "kserve-container", "securityContex": {}}]},
    }
    assert sorted(type_problems(runtime)) == [
        "ClusterServingRuntime/x.spec.containers[0].securityContex: unknown field of V1Container",
        "ClusterServingRuntime/x.spec.supportedModelFormats[0].version: expected str, got 1",
    ]
