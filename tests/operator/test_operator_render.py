"""Rendering examples/ into InferenceServices: golden manifests, the runtime contract, KServe's real schema.

Golden files: tests/operator/golden/<example>.yaml hold `whisper-operator render -f examples/<example>.yaml`.
After an intended change, regenerate them with
    WHISPER_UPDATE_GOLDEN=1 python -m pytest tests/operator/test_operator_render.py
and review the diff.
"""

from __future__ import annotations

import io
import os

import pytest
import yaml

import operator_testkit as kit
from whisper_operator.cli import render_files
from whisper_operator.render import render_inference_service, runtime_args
from whisper_operator.settings import OperatorConfig
from whisper_operator.spec import Endpoint
from whisper_runtime import contract
from whisper_runtime.metrics import QUEUE_DEPTH

EXAMPLE_IDS = [path.name for path in kit.EXAMPLES]


def rendered(example) -> list[dict]:
    out = io.StringIO()
    assert render_files([str(example)], OperatorConfig(), out) == 0
    return list(yaml.safe_load_all(out.getvalue()))


def endpoints(example) -> list[Endpoint]:
    return [Endpoint.from_body(document) for document in kit.load_yaml_documents(example)]


@pytest.mark.parametrize("example", kit.EXAMPLES, ids=EXAMPLE_IDS)
def test_examples_render_to_the_golden_manifests(example):
    out = io.StringIO()
    render_files([str(example)], OperatorConfig(), out)
    golden = kit.GOLDEN / example.name
    if os.environ.get("WHISPER_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(out.getvalue())
    assert out.getvalue() == golden.read_text()


@pytest.mark.parametrize("example", kit.EXAMPLES, ids=EXAMPLE_IDS)
def test_rendered_inference_services_satisfy_kserves_crd(example, kserve_isvc_validator):
    for manifest in rendered(example):
        kserve_isvc_validator.validate(manifest)


def test_kserve_schema_check_catches_a_wrong_field(kserve_isvc_validator):
    manifest = rendered(kit.EXAMPLES[0])[0]
    manifest["spec"]["predictor"]["model"]["storageURI"] = "hf://typo"
    manifest["spec"]["predictor"]["minReplicas"] = "one"
    problems = [error.message for error in kserve_isvc_validator.iter_errors(manifest)]
    assert any("storageURI" in problem for problem in problems)
    assert any("'one' is not of type 'integer'" in problem for problem in problems)


@pytest.mark.parametrize("example", kit.EXAMPLES, ids=EXAMPLE_IDS)
def test_runtime_reads_back_exactly_the_rendered_arguments(example):
    for endpoint, manifest in zip(endpoints(example), rendered(example)):
        argv = manifest["spec"]["predictor"]["model"]["args"]
        assert contract.parse(argv) == runtime_args(endpoint.spec)


@pytest.mark.parametrize("example", ["whisper-endpoint.yaml", "large-v3.yaml", "large-v3-turbo.yaml"])
def test_preset_examples_switch_on_fp8_compile_and_cuda_graphs(example):
    model = rendered(kit.REPO / "examples" / example)[0]["spec"]["predictor"]["model"]
    assert {"--kv_cache_dtype=fp8", "--compilation_level=3", "--cuda_graphs", "--dtype=bfloat16"} <= set(model["args"])
    assert model["modelFormat"] == {"name": contract.MODEL_FORMAT}
    assert model["runtime"] == "whisper-vllm"
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_hub_token_comes_from_the_secret():
    manifest = rendered(kit.REPO / "examples" / "storage-uri-with-token.yaml")[0]
    model = manifest["spec"]["predictor"]["model"]
    assert model["env"][0] == {
        "name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}}}
    assert manifest["metadata"]["annotations"]["serving.kserve.io/storageSecretName"] == "hf-token"
    assert model["storageUri"] == "hf://my-org/whisper-large-v3-finetuned-medical"
    assert model["image"] == "ghcr.io/whisper-kserve/whisper-runtime:0.1.0"


def test_api_key_is_a_file_from_the_secret_and_nowhere_else():
    manifest = rendered(kit.REPO / "examples" / "storage-uri-with-token.yaml")[0]
    predictor = manifest["spec"]["predictor"]
    assert predictor["volumes"] == [{"name": "whisper-api-key", "secret": {
        "secretName": "whisper-api-key", "items": [{"key": "token", "path": "api-key"}]}}]
    assert predictor["model"]["volumeMounts"] == [
        {"name": "whisper-api-key", "mountPath": "/etc/whisper/api-key", "readOnly": True}]
    assert "--api_key_file=/etc/whisper/api-key/api-key" in predictor["model"]["args"]
    assert all(variable["name"] != contract.API_KEY_ENV for variable in predictor["model"]["env"])


def test_without_auth_nothing_about_a_key_is_rendered():
    predictor = rendered(kit.REPO / "examples" / "whisper-endpoint.yaml")[0]["spec"]["predictor"]
    assert "volumes" not in predictor and "volumeMounts" not in predictor["model"]
    assert not any(arg.startswith("--api_key_file") for arg in predictor["model"]["args"])


def test_knative_example_scales_on_concurrency_from_zero():
    manifest = rendered(kit.REPO / "examples" / "distil-large-v3.5.yaml")[0]
    assert manifest["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    predictor = manifest["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 3)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 8)


def test_standard_mode_scales_on_the_queue_depth_through_keda():
    manifest = rendered(kit.REPO / "examples" / "large-v3.yaml")[0]
    assert manifest["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
    predictor = manifest["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 6)
    [metric] = predictor["autoScaling"]["metrics"]
    assert metric == {"type": "External", "external": {
        "metric": {"backend": "prometheus", "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
                   "query": 'sum(whisper_queue_depth{namespace="default",pod=~"whisper-large-v3-predictor-.*"})'},
        "target": {"type": "Value", "value": "32"}}}
    assert "scaleMetric" not in predictor
    assert QUEUE_DEPTH.describe()[0].name == "whisper_queue_depth"  # the name the runtime exports


def test_without_queue_depth_standard_mode_keeps_kserves_default_autoscaler():
    manifest = rendered(kit.REPO / "examples" / "whisper-endpoint.yaml")[0]
    assert "serving.kserve.io/autoscalerClass" not in manifest["metadata"]["annotations"]
    assert "autoScaling" not in manifest["spec"]["predictor"]


def test_scheduler_token_budget_reaches_the_runtime():
    spec = {"model": {"preset": "large-v3"}, "serving": {"maxNumBatchedTokens": 3000}}
    body = {"metadata": {"name": "w"}, "spec": spec}
    args = render_inference_service(Endpoint.from_body(body))["spec"]["predictor"]["model"]["args"]
    assert "--max_num_batched_tokens=3000" in args


def test_owner_reference_when_the_endpoint_exists():
    body = {"metadata": {"name": "w", "namespace": "ns", "uid": "1234"}, "spec": {"model": {"preset": "large-v3"}}}
    reference = render_inference_service(Endpoint.from_body(body))["metadata"]["ownerReferences"][0]
    assert reference == {"apiVersion": "whisper.kserve-contrib.io/v1alpha1", "kind": "WhisperEndpoint",
                         "name": "w", "uid": "1234", "controller": True, "blockOwnerDeletion": True}


def test_spec_hash_follows_the_desired_state():
    def hash_of(spec):
        body = {"metadata": {"name": "w", "namespace": "ns"}, "spec": spec}
        return render_inference_service(Endpoint.from_body(body))["metadata"]["annotations"][
            "whisper.kserve-contrib.io/spec-hash"]

    base = {"model": {"preset": "large-v3"}}
    assert hash_of(base) == hash_of(dict(base))
    assert hash_of(base) != hash_of({**base, "serving": {"maxNumSeqs": 8}})
    assert hash_of(base) != hash_of({**base, "deploymentMode": "Knative"})


def test_runtime_name_comes_from_configuration():
    body = {"metadata": {"name": "w"}, "spec": {"model": {"preset": "large-v3"}}}
    manifest = render_inference_service(Endpoint.from_body(body), OperatorConfig(runtime_name="whisper-custom"))
    assert manifest["spec"]["predictor"]["model"]["runtime"] == "whisper-custom"


def test_warm_replicas_mount_the_cache_claim_for_vllm_and_serve_the_model_from_it():
    manifest = rendered(kit.REPO / "examples" / "warm-replicas.yaml")[0]
    predictor = manifest["spec"]["predictor"]
    assert predictor["volumes"] == [{"name": "whisper-cache", "persistentVolumeClaim": {"claimName": "whisper-cache"}}]
    assert predictor["securityContext"]["fsGroup"] == 1000  # the runtime image's user (runtime/Dockerfile)
    model = predictor["model"]
    assert model["volumeMounts"] == [{"name": "whisper-cache", "mountPath": "/var/cache/whisper"}]
    assert {"name": "VLLM_CACHE_ROOT", "value": "/var/cache/whisper/vllm"} in model["env"]
    assert model["storageUri"] == "pvc://whisper-cache/models/whisper-large-v3-turbo"


def test_without_model_path_the_cache_holds_only_the_compile_cache():
    spec = {"model": {"preset": "large-v3"}, "cache": {"persistentVolumeClaim": "compile-cache"}}
    predictor = render_inference_service(Endpoint.from_body({"metadata": {"name": "w"}, "spec": spec}))["spec"][
        "predictor"]
    assert predictor["model"]["storageUri"] == "hf://openai/whisper-large-v3"
    assert predictor["volumes"][0]["persistentVolumeClaim"] == {"claimName": "compile-cache"}
    assert "volumes" not in rendered(kit.REPO / "examples" / "whisper-endpoint.yaml")[0]["spec"]["predictor"]


def test_standard_mode_rolls_out_one_pod_at_a_time_and_knative_only_names_a_canary():
    standard = rendered(kit.REPO / "examples" / "whisper-endpoint.yaml")[0]["spec"]["predictor"]
    assert standard["deploymentStrategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    knative = rendered(kit.REPO / "examples" / "distil-large-v3.5.yaml")[0]["spec"]["predictor"]
    assert "deploymentStrategy" not in knative and "canaryTrafficPercent" not in knative
    spec = {"model": {"preset": "large-v3"}, "deploymentMode": "Knative", "rollout": {"canaryTrafficPercent": 10}}
    canary = render_inference_service(Endpoint.from_body({"metadata": {"name": "w"}, "spec": spec}))
    assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 10
    spec = {"model": {"preset": "large-v3"}, "rollout": {"maxSurge": 0, "maxUnavailable": 1}}
    in_place = render_inference_service(Endpoint.from_body({"metadata": {"name": "w"}, "spec": spec}))
    assert in_place["spec"]["predictor"]["deploymentStrategy"]["rollingUpdate"] == {"maxSurge": 0,
                                                                                    "maxUnavailable": 1}
