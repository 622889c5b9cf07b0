"""The local control plane itself: simulated GPU nodes, real RBAC, KServe's CRDs, webhooks and Standard mode."""

from __future__ import annotations

import json

import pytest

from whisper_devkit.kwok_nodes import CPU_NODE_NAME, GPU_MODELS, GPU_RESOURCE, GPU_TAINT

pytestmark = pytest.mark.e2e

RUNTIME_NAME = "e2e-echo-runtime"
KSERVE_CRDS = ("inferenceservices", "servingruntimes", "clusterservingruntimes", "inferencegraphs", "trainedmodels",
               "clusterstoragecontainers")


def get_json(cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


@pytest.mark.parametrize("kind", sorted(GPU_MODELS))
def test_gpu_node_has_feature_discovery_labels_capacity_and_taint(cluster, kind):
    node = get_json(cluster, "node", f"gpu-{kind}-0")
    gpu = GPU_MODELS[kind]
    labels = node["metadata"]["labels"]
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["nvidia.com/gpu.product"] == gpu.product
    assert (labels["nvidia.com/gpu.compute.major"], labels["nvidia.com/gpu.compute.minor"]) == tuple(
        map(str, gpu.compute_capability))
    assert node["status"]["allocatable"][GPU_RESOURCE] == "1"
    assert GPU_TAINT in node["spec"]["taints"]
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_cpu_node_is_ready_and_untainted(cluster):
    node = get_json(cluster, "node", CPU_NODE_NAME)
    assert not node["spec"].get("taints")
    assert "nvidia.com/gpu.present" not in node["metadata"]["labels"]


def test_service_account_gets_only_what_rbac_grants(cluster, unique_namespace):
    cluster.kubectl("create", "serviceaccount", "reader", "-n", unique_namespace)
    as_reader = cluster.kubeconfig_for_service_account(unique_namespace, "reader")

    denied = cluster.kubectl("get", "configmaps", "-n", unique_namespace, kubeconfig=as_reader, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert f"system:serviceaccount:{unique_namespace}:reader" in denied.stderr

    cluster.kubectl("create", "role", "read-configmaps", "--verb=get,list", "--resource=configmaps",
                    "-n", unique_namespace)
    cluster.kubectl("create", "rolebinding", "reader-reads-configmaps", "--role=read-configmaps",
                    f"--serviceaccount={unique_namespace}:reader", "-n", unique_namespace)
    allowed = cluster.kubectl("get", "configmaps", "-n", unique_namespace, kubeconfig=as_reader)
    assert "kube-root-ca.crt" in allowed.stdout
    still_denied = cluster.kubectl("get", "secrets", "-n", unique_namespace, kubeconfig=as_reader, check=False)
    assert "Forbidden" in still_denied.stderr


def test_kserve_crds_are_established_and_validate(cluster, unique_namespace):
    for crd in KSERVE_CRDS:
        established = cluster.kubectl("get", f"crd/{crd}.serving.kserve.io", "-o",
                                      "jsonpath={.status.conditions[?(@.type=='Established')].status}")
        assert established.stdout == "True"
    misspelled = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                  "metadata": {"name": "typo", "namespace": unique_namespace},
                  "spec": {"predictor": {"model": {"modelFormat": {"name": "x"}}, "minReplica": 1}}}
    refused = cluster.kubectl("create", "--validate=strict", "-f", "-", input=json.dumps(misspelled), check=False)
    assert refused.returncode != 0
    assert 'unknown field "spec.predictor.minReplica"' in refused.stderr


def test_kserve_validating_webhook_refuses_an_invalid_inference_service(cluster, unique_namespace):
    invalid = inference_service("upside-down", unique_namespace, minReplicas=3, maxReplicas=2)
    refused = cluster.kubectl("create", "-f", "-", input=json.dumps(invalid), check=False)
    assert refused.returncode != 0
    assert "inferenceservice.kserve-webhook-server.validator" in refused.stderr
    assert "'MinReplicas' cannot be greater than MaxReplicas" in refused.stderr


@pytest.fixture
def echo_runtime(cluster):
    """A ClusterServingRuntime for an "echo" model format, as a runtime vendor would ship one."""
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1", "kind": "ClusterServingRuntime",
        "metadata": {"name": RUNTIME_NAME},
        "spec": {"supportedModelFormats": [{"name": "echo", "autoSelect": True}], "protocolVersions": ["v2"],
                 "containers": [{"name": "kserve-container", "image": "example.org/echo:1",
                                 "args": ["--model_name={{.Name}}"], "ports": [{"containerPort": 8080}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
    }
    cluster.apply(runtime)
    yield RUNTIME_NAME
    cluster.kubectl("delete", "clusterservingruntime", RUNTIME_NAME)


def inference_service(name: str, namespace: str, **predictor: object) -> dict:
    model = {"modelFormat": {"name": "echo"}, "protocolVersion": "v2", "storageUri": "hf://example/echo"}
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"predictor": {"model": model, **predictor}}}


def wait_ready(cluster, namespace: str, name: str) -> dict:
    cluster.kubectl("wait", "--for=condition=Ready", "--timeout=90s", f"inferenceservice/{name}", "-n", namespace)
    return get_json(cluster, "inferenceservice", name, "-n", namespace)


def predictor_pods(cluster, namespace: str, name: str) -> list[dict]:
    return get_json(cluster, "pods", "-n", namespace, "-l", f"serving.kserve.io/inferenceservice={name}")["items"]


def test_inference_service_becomes_a_running_deployment(cluster, unique_namespace, echo_runtime):
    cluster.apply(inference_service("echo", unique_namespace))

    isvc = wait_ready(cluster, unique_namespace, "echo")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"  # the defaulter
    assert isvc["status"]["url"] == f"http://echo-predictor.{unique_namespace}.svc.cluster.local"
    deployment = get_json(cluster, "deployment", "echo-predictor", "-n", unique_namespace)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--model_name=echo"]
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == isvc["metadata"]["uid"]
    [pod] = predictor_pods(cluster, unique_namespace, "echo")
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["nodeName"] == CPU_NODE_NAME  # the GPU nodes are tainted
    [initializer] = pod["spec"]["initContainers"]  # injected by KServe's pod webhook for the storageUri
    assert (initializer["name"], initializer["args"][0]) == ("storage-initializer", "hf://example/echo")
    cluster.kubectl("get", "service", "echo-predictor", "-n", unique_namespace)

    cluster.kubectl("delete", "inferenceservice", "echo", "-n", unique_namespace)
    cluster.kubectl("wait", "--for=delete", "--timeout=60s", "deployment/echo-predictor", "-n", unique_namespace)


def test_gpu_predictor_is_scheduled_only_by_compute_capability(cluster, unique_namespace, echo_runtime):
    at_least_ada = {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "nvidia.com/gpu.compute.major", "operator": "In", "values": ["9"]}]}]}
    cluster.apply(inference_service(
        "gpu-echo", unique_namespace,
        tolerations=[{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": at_least_ada}},
        model={"modelFormat": {"name": "echo"}, "protocolVersion": "v2",
               "resources": {"limits": {GPU_RESOURCE: "1"}}}))

    wait_ready(cluster, unique_namespace, "gpu-echo")
    [pod] = predictor_pods(cluster, unique_namespace, "gpu-echo")
    assert pod["spec"]["nodeName"] == "gpu-h100-0"


def test_inference_service_without_runtime_reports_why(cluster, unique_namespace):
    cluster.apply(inference_service("orphan", unique_namespace))
    cluster.kubectl("wait", "--for=jsonpath={.status.modelStatus.lastFailureInfo.reason}=NoSupportingRuntime",
                    "--timeout=30s", "inferenceservice/orphan", "-n", unique_namespace)
    isvc = get_json(cluster, "inferenceservice", "orphan", "-n", unique_namespace)
    assert isvc["status"]["modelStatus"]["transitionStatus"] == "InvalidSpec"


def test_api_server_restart_keeps_state(cluster, unique_namespace):
    cluster.kubectl("create", "configmap", "survivor", "-n", unique_namespace, "--from-literal=k=v")
    cluster.restart_apiserver()
    assert get_json(cluster, "configmap", "survivor", "-n", unique_namespace)["data"] == {"k": "v"}
