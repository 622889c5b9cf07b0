"""Parsing and validating WhisperEndpoint specs: defaults, the fp8 rule and the other cross-field rules."""

from __future__ import annotations

import pytest

from whisper_operator.errors import InvalidSpec
from whisper_operator.presets import PRESET_STORAGE_URIS
from whisper_operator.render import runtime_args
from whisper_operator.spec import Endpoint, parse_spec
from whisper_runtime import contract

MINIMAL = {"model": {"preset": "large-v3-turbo"}}


def with_changes(**sections) -> dict:
    return {**MINIMAL, **sections}


def test_defaults_switch_every_optimization_on():
    args = runtime_args(parse_spec(MINIMAL))
    assert (args.kv_cache_dtype, args.dtype, args.compilation_level, args.cuda_graphs) == ("fp8", "bfloat16", 3, True)
    assert args.gpu_memory_utilization == 0.9


def test_default_spec_asks_for_the_runtimes_own_defaults():
    args = runtime_args(parse_spec(MINIMAL))
    assert args == contract.RuntimeArgs()
    assert (args.max_num_seqs, args.max_num_batched_tokens) == (256, 24000)


def test_presets_map_to_their_hugging_face_repositories():
    assert PRESET_STORAGE_URIS == {
        "large-v3": "hf://openai/whisper-large-v3",
        "large-v3-turbo": "hf://openai/whisper-large-v3-turbo",
        "distil-large-v3.5": "hf://distil-whisper/distil-large-v3.5",
    }
    for preset, uri in PRESET_STORAGE_URIS.items():
        assert parse_spec({"model": {"preset": preset}}).model.resolved_storage_uri == uri


@pytest.mark.parametrize(
    ("minimum", "kv_cache", "accepted"),
    [("8.9", "fp8", True), ("9.0", "fp8", True), ("10.0", "fp8", True), ("8.6", "fp8", False),
     ("8.0", "fp8", False), ("7.5", "fp8", False), ("8.6", "auto", True), ("7.5", "auto", True)],
)
def test_fp8_kv_cache_needs_compute_capability_8_9(minimum, kv_cache, accepted):
    raw = with_changes(resources={"minComputeCapability": minimum}, optimization={"kvCacheDtype": kv_cache})
    if accepted:
        assert parse_spec(raw).optimization.kv_cache_dtype == kv_cache
    else:
        with pytest.raises(InvalidSpec, match=r"fp8 KV cache needs minComputeCapability >= 8\.9"):
            parse_spec(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"model": {}}, "set exactly one of preset or storageUri"),
        ({"model": {"preset": "large-v3", "storageUri": "hf://a/b"}}, "set exactly one of preset or storageUri"),
        (with_changes(autoscaling={"minReplicas": 3, "maxReplicas": 2}), "must not exceed"),
        (with_changes(autoscaling={"minReplicas": 0, "maxReplicas": 2}), "needs deploymentMode Knative"),
        (with_changes(autoscaling={"targetConcurrency": 4}), "targetConcurrency needs deploymentMode Knative"),
        (with_changes(deploymentMode="Knative", autoscaling={"queueDepth": {}}),
         "queueDepth needs deploymentMode Standard"),
        (with_changes(autoscaling={"queueDepth": {"target": 0}}), "queueDepth.target"),
        (with_changes(autoscaling={"queueDepth": {"prometheusUrl": "prometheus:9090"}}), "prometheusUrl"),
        (with_changes(env=[{"name": "HF_TOKEN", "value": "hf_x"}]), "hubTokenSecretRef, never inline"),
        (with_changes(resources={"minComputeCapability": "8.9.1"}), "minComputeCapability"),
        (with_changes(serving={"gpuMemoryUtilizationPercent": 101}), "gpuMemoryUtilizationPercent"),
        (with_changes(serving={"maxNumBatchedTokens": 1499}), "maxNumBatchedTokens: .* greater than or equal to 1500"),
        (with_changes(serving={"maxNumBatchedTokens": 1048577}), "maxNumBatchedTokens: .* less than or equal"),
        (with_changes(serving={"maxNumSeqs": 1025}), "maxNumSeqs"),
        ({"model": {"preset": "large-v2"}}, "model.preset"),
        (with_changes(optimisation={}), "optimisation"),
    ],
)
def test_invalid_specs_are_refused_with_a_clear_message(raw, message):
    with pytest.raises(InvalidSpec, match=message):
        parse_spec(raw)


def test_scale_to_zero_is_allowed_with_knative():
    spec = parse_spec(with_changes(deploymentMode="Knative", autoscaling={"minReplicas": 0, "maxReplicas": 2}))
    assert spec.autoscaling.min_replicas == 0


def test_torch_compile_off_means_compilation_level_zero():
    args = runtime_args(parse_spec(with_changes(optimization={"torchCompile": {"enabled": False}})))
    assert args.compilation_level == 0


def test_endpoint_identity_comes_from_metadata():
    endpoint = Endpoint.from_body(
        {"metadata": {"name": "w", "namespace": "speech", "uid": "u-1", "generation": 4}, "spec": MINIMAL}
    )
    assert (endpoint.name, endpoint.namespace, endpoint.uid, endpoint.generation) == ("w", "speech", "u-1", 4)


@pytest.mark.parametrize(("sections", "message"), [
    ({"rollout": {"maxSurge": 0}}, "rollout: maxSurge and maxUnavailable must not both be 0"),
    ({"rollout": {"maxUnavailable": 1}, "deploymentMode": "Knative", "autoscaling": {"minReplicas": 1}},
     "rollout.maxSurge and rollout.maxUnavailable need deploymentMode Standard"),
    ({"rollout": {"canaryTrafficPercent": 20}}, "rollout.canaryTrafficPercent needs deploymentMode Knative"),
    ({"cache": {"persistentVolumeClaim": "c"}, "env": [{"name": "VLLM_CACHE_ROOT", "value": "/x"}]},
     "env: VLLM_CACHE_ROOT is where cache puts vLLM's compile cache"),
    ({"cache": {"persistentVolumeClaim": "c", "modelPath": "../other-claim"}}, "spec.cache.modelPath"),
    ({"cache": {"persistentVolumeClaim": "Not_A_Name"}}, "spec.cache.persistentVolumeClaim"),
    ({"cache": {}}, "spec.cache.persistentVolumeClaim: Field required"),
])
def test_cache_and_rollout_rules(sections, message):
    with pytest.raises(InvalidSpec, match=message.replace(".", r"\.")):
        parse_spec(with_changes(**sections))


def test_rollout_defaults_keep_serving_pods_until_their_successors_are_ready():
    assert parse_spec(MINIMAL).rollout.surge_and_unavailable == (1, 0)
    assert parse_spec(with_changes(rollout={"maxUnavailable": 2})).rollout.surge_and_unavailable == (1, 2)
    assert parse_spec(with_changes(deploymentMode="Knative", rollout={"canaryTrafficPercent": 0})).rollout \
        .canary_traffic_percent == 0
