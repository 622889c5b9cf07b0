"""Pure builders of the local control plane: simulated nodes, KServe's manifests adapted to the local cluster."""

from __future__ import annotations

import base64
import json

from whisper_devkit.cluster import audit_policy
from whisper_devkit.kserve_manager import inferenceservice_config, loopback_webhooks, manager_argv, manager_rbac
from whisper_devkit.kwok_nodes import GPU_TAINT, all_nodes, gpu_node
from whisper_devkit.operator_scale import gpu_pool_nodes, percentile


def test_gpu_node_is_tainted_and_labelled_like_gpu_feature_discovery():
    node = gpu_node("l4")
    assert node["metadata"]["labels"]["nvidia.com/gpu.compute.major"] == "8"
    assert node["metadata"]["labels"]["nvidia.com/gpu.compute.minor"] == "9"
    assert node["spec"]["taints"] == [GPU_TAINT]
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "1"
    assert len({n["metadata"]["name"] for n in all_nodes()}) == 5


def test_inferenceservice_config_selects_standard_mode_without_ingress_and_pins_images():
    shipped = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "inferenceservice-config", "namespace": "kserve"},
               "data": {"_example": "# documentation, not JSON",
                        "deploy": '{"defaultDeploymentMode": "Serverless"}',
                        "ingress": '{"ingressDomain": "example.com", "disableIngressCreation": false}',
                        "storageInitializer": '{"image": "kserve/storage-initializer:latest", "cpuLimit": "1"}'}}
    data = inferenceservice_config(shipped, "v0.20.0")["data"]
    assert json.loads(data["deploy"]) == {"defaultDeploymentMode": "Standard"}
    ingress = json.loads(data["ingress"])
    assert ingress["disableIngressCreation"] is ingress["disableIstioVirtualHost"] is True
    assert ingress["domainTemplate"] == "{{ .Name }}-predictor.{{ .Namespace }}.{{ .IngressDomain }}"
    assert ingress["ingressDomain"] == "svc.cluster.local"
    assert json.loads(data["storageInitializer"]) == {"image": "kserve/storage-initializer:v0.20.0", "cpuLimit": "1"}
    assert data["_example"] == "# documentation, not JSON"
    assert json.loads(shipped["data"]["deploy"]) == {"defaultDeploymentMode": "Serverless"}  # input untouched


def test_webhooks_call_the_manager_on_loopback_and_trust_the_cluster_ca():
    shipped = [{"kind": "ValidatingWebhookConfiguration", "metadata": {"name": "inferenceservice.serving.kserve.io"},
                "webhooks": [{"name": "validator", "failurePolicy": "Fail", "clientConfig": {"service": {
                    "name": "$(webhookServiceName)", "namespace": "$(kserveNamespace)", "path": "/validate-isvc"}}}]}]
    [adapted] = loopback_webhooks(shipped, "https://127.0.0.1:9443", b"PEM")
    [webhook] = adapted["webhooks"]
    assert webhook["clientConfig"] == {"url": "https://127.0.0.1:9443/validate-isvc",
                                       "caBundle": base64.b64encode(b"PEM").decode()}
    assert webhook["failurePolicy"] == "Fail"
    assert "service" in shipped[0]["webhooks"][0]["clientConfig"]


def test_manager_rbac_lives_in_the_kserve_namespace():
    shipped = [{"kind": "ServiceAccount", "metadata": {"name": "kserve-controller-manager"}},
               {"kind": "ClusterRoleBinding", "metadata": {"name": "kserve-manager-rolebinding"},
                "subjects": [{"kind": "ServiceAccount", "name": "kserve-controller-manager"}]}]
    account, binding = manager_rbac(shipped)
    assert account["metadata"]["namespace"] == binding["subjects"][0]["namespace"] == "kserve"


def test_manager_listens_on_loopback_only_and_runs_alone():
    argv = manager_argv(metrics_port=1, probe_port=2, webhook_port=3, host="127.0.0.1")
    assert argv == ["--metrics-addr=127.0.0.1:1", "--health-probe-addr=127.0.0.1:2", "--webhook-port=3",
                    "--leader-elect=false"]


def test_audit_policy_logs_the_finished_requests_of_the_chosen_users_and_nobody_elses():
    policy = audit_policy(["system:serviceaccount:whisper-system:whisper-operator"])
    assert policy["rules"] == [{"level": "Metadata", "users": ["system:serviceaccount:whisper-system:whisper-operator"]},
                               {"level": "None"}]  # first match wins
    assert set(policy["omitStages"]) == {"RequestReceived", "ResponseStarted"}


def test_the_scale_benchmarks_gpu_pool_has_one_gpu_per_endpoint_on_nodes_of_at_most_100():
    nodes = gpu_pool_nodes(250)
    gpus = [int(node["status"]["capacity"]["nvidia.com/gpu"]) for node in nodes]
    assert gpus == [100, 100, 50]
    assert all(node["spec"]["taints"] == [GPU_TAINT] for node in nodes)
    assert {node["metadata"]["labels"]["nvidia.com/gpu.compute.major"] for node in nodes} == {"9"}


def test_percentile_is_nearest_rank():
    values = [float(value) for value in range(1, 501)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile([3.0], 0.99)) == (250.0, 495.0, 3.0)
