"""The Helm chart against a real API server: install, upgrade, uninstall (tests run in file order)."""

from __future__ import annotations

import json

import pytest

from operator_harness import (CHART, OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, RELEASE, RUNTIME_NAME, WEP,
                              get_json, get_or_none, install_chart, uninstall_chart)

pytestmark = pytest.mark.e2e

CRDS = (WEP, "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")
#: Every object the chart's templates create with default values (crds/ aside).
RELEASE_OBJECTS = (
    ("deployment", OPERATOR_NAMESPACE, "whisper-operator"),
    ("serviceaccount", OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT),
    ("clusterrole", None, "whisper-operator"),
    ("clusterrole", None, "whisper-operator-cluster"),
    ("clusterrolebinding", None, "whisper-operator"),
    ("clusterrolebinding", None, "whisper-operator-cluster"),
    ("clusterservingruntime", None, RUNTIME_NAME),
    ("clusterkopfpeering", None, "whisper-operator"),
)


def lookup(cluster, kind: str, namespace: str | None, name: str) -> dict | None:
    return get_or_none(cluster, kind, name, *(("-n", namespace) if namespace else ()))


def can_i(cluster, verb: str, resource: str, namespace: str = "default") -> bool:
    subject = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
    answer = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace, f"--as={subject}", check=False)
    return answer.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def release(cluster):
    install_chart(cluster)
    yield RELEASE
    if cluster.helm("status", RELEASE, "-n", OPERATOR_NAMESPACE, check=False).returncode == 0:
        uninstall_chart(cluster)


def test_install_establishes_crds_and_creates_every_object(cluster, release):
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s", *(f"crd/{crd}" for crd in CRDS))
    for kind, namespace, name in RELEASE_OBJECTS:
        assert lookup(cluster, kind, namespace, name) is not None, f"{kind} {name} missing"
    runtime = get_json(cluster, "clusterservingruntime", RUNTIME_NAME)
    assert runtime["spec"]["supportedModelFormats"][0]["name"] == "whisper"
    assert runtime["spec"]["protocolVersions"] == ["v2"]
    [container] = runtime["spec"]["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == "ghcr.io/whisper-kserve/whisper-runtime:0.1.0"
    assert "--kv_cache_dtype=fp8" in container["args"]


def test_operator_pod_is_admitted_under_pod_security_restricted(cluster, release):
    cluster.kubectl("wait", "--for=condition=Available", "--timeout=60s", "deployment/whisper-operator",
                    "-n", OPERATOR_NAMESPACE)
    [pod] = get_json(cluster, "pods", "-n", OPERATOR_NAMESPACE,
                     "-l", "app.kubernetes.io/name=whisper-operator")["items"]
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["serviceAccountName"] == OPERATOR_SERVICE_ACCOUNT
    # The namespace really enforces the profile: a pod that breaks it is refused.
    privileged = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "privileged", "namespace": OPERATOR_NAMESPACE},
                  "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]}}
    refused = cluster.kubectl("create", "-f", "-", input=json.dumps(privileged), check=False)
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr


def test_rbac_grants_the_operator_only_what_it_uses(cluster, release):
    for verb, resource in (("watch", WEP), ("patch", WEP), ("patch", f"{WEP}/status"),
                           ("create", "inferenceservices.serving.kserve.io"),
                           ("patch", "inferenceservices.serving.kserve.io"), ("create", "events"),
                           ("patch", "clusterkopfpeerings.kopf.dev")):
        assert can_i(cluster, verb, resource), f"cannot {verb} {resource}"
    for verb, resource in (("delete", "inferenceservices.serving.kserve.io"), ("create", WEP), ("get", "secrets"),
                           ("create", "pods"), ("update", "clusterservingruntimes.serving.kserve.io")):
        assert not can_i(cluster, verb, resource), f"may {verb} {resource}"


def test_upgrade_changes_the_serving_runtime_in_place(cluster, release):
    before = get_json(cluster, "clusterservingruntime", RUNTIME_NAME)["metadata"]["uid"]

    cluster.helm("upgrade", RELEASE, str(CHART), "-n", OPERATOR_NAMESPACE, "--reuse-values",
                 "--set", "runtime.image.tag=0.1.1", "--wait", "--timeout=120s")

    runtime = get_json(cluster, "clusterservingruntime", RUNTIME_NAME)
    assert runtime["spec"]["containers"][0]["image"] == "ghcr.io/whisper-kserve/whisper-runtime:0.1.1"
    assert runtime["metadata"]["uid"] == before
    history = cluster.helm("history", RELEASE, "-n", OPERATOR_NAMESPACE, "-o", "json").stdout
    assert [entry["status"] for entry in json.loads(history)] == ["superseded", "deployed"]


def test_uninstall_removes_the_release_but_keeps_crds_and_custom_resources(cluster, release, unique_namespace):
    """Helm never deletes the CRDs of a chart's crds/ folder (that would delete every user's endpoints)."""
    cluster.kubectl("apply", "-n", unique_namespace, "-f", str(CHART.parents[1] / "examples" / "whisper-endpoint.yaml"))

    uninstall_chart(cluster)

    for kind, namespace, name in RELEASE_OBJECTS:
        assert lookup(cluster, kind, namespace, name) is None, f"{kind} {name} left behind"
    cluster.kubectl("wait", "--for=delete", "--timeout=60s", "pod", "-l", "app.kubernetes.io/name=whisper-operator",
                    "-n", OPERATOR_NAMESPACE)
    for crd in CRDS:
        assert lookup(cluster, "crd", None, crd) is not None
    assert get_json(cluster, WEP, "whisper", "-n", unique_namespace)["metadata"]["name"] == "whisper"
