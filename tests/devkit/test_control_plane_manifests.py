"""Pure builders of the local control plane: simulated nodes, KServe CRDs, KServe's RawDeployment output."""

from __future__ import annotations

import pytest

from whisper_devkit.kserve_crds import kserve_crds, schema_for
from whisper_devkit.kserve_raw import (NoServingContainer, NoSupportingRuntime, inference_service_status,
                                       predictor_manifests, select_runtime)
from whisper_devkit.kwok_nodes import GPU_TAINT, all_nodes, gpu_node

NOW = "2026-01-01T00:00:00Z"


def runtime(name: str, formats: list[dict], namespace: str | None = None, **spec: object) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    container = {"name": "kserve-container", "image": "img", "args": ["--model_name={{.Name}}"],
                 "env": [{"name": "A", "value": "runtime"}], "ports": [{"containerPort": 9000}]}
    return {"metadata": metadata, "spec": {"supportedModelFormats": formats, "protocolVersions": ["v2"],
                                           "containers": [container], **spec}}


def isvc(**predictor: object) -> dict:
    model = {"modelFormat": {"name": "whisper"}, "protocolVersion": "v2", **predictor.pop("model", {})}
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "asr", "namespace": "team", "uid": "u-1", "generation": 3},
            "spec": {"predictor": {"model": model, **predictor}}}


def test_gpu_node_is_tainted_and_labelled_like_gpu_feature_discovery():
    node = gpu_node("l4")
    assert node["metadata"]["labels"]["nvidia.com/gpu.compute.major"] == "8"
    assert node["metadata"]["labels"]["nvidia.com/gpu.compute.minor"] == "9"
    assert node["spec"]["taints"] == [GPU_TAINT]
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "1"
    assert len({n["metadata"]["name"] for n in all_nodes()}) == 5


def test_crd_schemas_type_kserve_fields_and_keep_core_types_open():
    isvc_crd = kserve_crds()[0]
    predictor = isvc_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "predictor"]["properties"]
    assert predictor["minReplicas"] == {"type": "integer"}
    assert predictor["model"]["properties"]["storageUri"] == {"type": "string"}
    assert predictor["tolerations"]["items"]["x-kubernetes-preserve-unknown-fields"] is True
    assert schema_for("dict(str, ResourceQuantity)")["additionalProperties"] == {"x-kubernetes-int-or-string": True}


def test_runtime_selection_prefers_the_namespace_and_needs_auto_select():
    cluster_wide = runtime("cluster", [{"name": "whisper", "autoSelect": True}])
    local = runtime("local", [{"name": "whisper", "autoSelect": True}], namespace="team")
    other_namespace = runtime("elsewhere", [{"name": "whisper", "autoSelect": True}], namespace="other")
    assert select_runtime(isvc(), [other_namespace, local], [cluster_wide]) is local
    assert select_runtime(isvc(), [other_namespace], [cluster_wide]) is cluster_wide
    with pytest.raises(NoSupportingRuntime):
        select_runtime(isvc(), [], [runtime("manual", [{"name": "whisper"}])])
    assert select_runtime(isvc(model={"runtime": "manual"}), [], [runtime("manual", [{"name": "whisper"}])])


def test_predictor_merges_model_over_runtime_and_mounts_storage():
    deployment, service = predictor_manifests(
        isvc(model={"storageUri": "pvc://m/asr", "env": [{"name": "A", "value": "model"}]},
             nodeSelector={"nvidia.com/gpu.present": "true"}),
        runtime("cluster", [{"name": "whisper", "autoSelect": True}], nodeSelector={"pool": "gpu"}))
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert deployment["metadata"]["name"] == service["metadata"]["name"] == "asr-predictor"
    assert container["args"] == ["--model_name=asr"]
    assert container["env"] == [{"name": "A", "value": "model"}]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["initContainers"][0]["args"] == ["pvc://m/asr", "/mnt/models"]
    assert service["spec"]["ports"][0]["targetPort"] == 9000
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_status_is_ready_only_with_an_available_deployment():
    available = {"status": {"conditions": [{"type": "Available", "status": "True"}]}}
    ready = inference_service_status(isvc(), available, None, NOW)
    assert {c["type"]: c["status"] for c in ready["conditions"]}["Ready"] == "True"
    assert ready["url"] == "http://asr-predictor.team.svc.cluster.local"
    assert ready["observedGeneration"] == 3
    missing = inference_service_status(isvc(), None, NoSupportingRuntime("No runtime found"), NOW)
    ready_condition = next(c for c in missing["conditions"] if c["type"] == "Ready")
    assert (ready_condition["status"], ready_condition["reason"]) == ("False", "NoSupportingRuntime")
    assert "url" not in missing


def test_runtime_without_serving_container_is_reported():
    sidecar_only = runtime("broken", [{"name": "whisper", "autoSelect": True}])
    sidecar_only["spec"]["containers"][0]["name"] = "sidecar"
    with pytest.raises(NoServingContainer, match="no container kserve-container"):
        predictor_manifests(isvc(), sidecar_only)
