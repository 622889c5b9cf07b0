"""The KServe InferenceService a WhisperEndpoint stands for."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

from whisper_runtime import contract

from ..resources import (
    CACHE_MOUNT_PATH,
    CACHE_VOLUME,
    ENDPOINT_LABEL,
    GPU_RESOURCE,
    INFERENCE_SERVICE,
    KEDA_AUTOSCALER_CLASS,
    KSERVE_AUTOSCALER_CLASS_ANNOTATION,
    KSERVE_DEPLOYMENT_MODE_ANNOTATION,
    KSERVE_STORAGE_SECRET_ANNOTATION,
    MANAGED_BY,
    QUEUE_DEPTH_METRIC,
    RUNTIME_GROUP_ID,
    SPEC_HASH_ANNOTATION,
    VLLM_CACHE_ROOT,
    WHISPER_ENDPOINT,
)
from ..settings import OperatorConfig
from ..spec import VLLM_CACHE_ROOT_ENV, Cache, Endpoint, WhisperEndpointSpec
from .scheduling import gpu_tolerations, render_node_affinity

#: Where the API key Secret is mounted in the runtime container: a file, not an environment variable, so the key
#: stays out of the process environment that child processes (vLLM's engine core) inherit.
API_KEY_VOLUME = "whisper-api-key"
API_KEY_DIR = "/etc/whisper/api-key"
API_KEY_FILE = "api-key"


def runtime_args(spec: WhisperEndpointSpec) -> contract.RuntimeArgs:
    """The runtime's arguments (the shared contract) for this spec."""
    optimization, serving = spec.optimization, spec.serving
    return contract.RuntimeArgs(
        engine=spec.engine,
        dtype=optimization.dtype,
        kv_cache_dtype=optimization.kv_cache_dtype,
        compilation_level=optimization.torch_compile.level if optimization.torch_compile.enabled else 0,
        cuda_graphs=optimization.cuda_graphs.enabled,
        cuda_graph_sizes=optimization.cuda_graphs.capture_sizes,
        max_num_seqs=serving.max_num_seqs,
        max_num_batched_tokens=serving.max_num_batched_tokens,
        gpu_memory_utilization=serving.gpu_memory_utilization_percent / 100,
        tensor_parallel_size=spec.resources.gpus_per_replica,
        max_audio_seconds=serving.max_audio_seconds,
        max_upload_mb=serving.max_upload_megabytes,
        default_language=serving.default_language,
        default_task=serving.default_task,
        api_key_file=f"{API_KEY_DIR}/{API_KEY_FILE}" if spec.auth.api_key_secret_ref else None,
    )


def _env(spec: WhisperEndpointSpec) -> list[dict[str, Any]]:
    secret = spec.model.hub_token_secret_ref
    token = (
        [{"name": contract.HF_TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}}}]
        if secret
        else []
    )
    cache = [{"name": VLLM_CACHE_ROOT_ENV, "value": VLLM_CACHE_ROOT}] if spec.cache else []
    return token + cache + [{"name": variable.name, "value": variable.value} for variable in spec.env]


def _resources(spec: WhisperEndpointSpec) -> dict[str, Any]:
    wanted = spec.resources
    gpus = {GPU_RESOURCE: str(wanted.gpus_per_replica)}
    requests = {name: str(value) for name, value in (("cpu", wanted.cpu), ("memory", wanted.memory)) if value}
    memory_limit = {"memory": requests["memory"]} if "memory" in requests else {}
    return {"requests": {**requests, **gpus}, "limits": {**gpus, **memory_limit}}


def _model(spec: WhisperEndpointSpec, config: OperatorConfig) -> dict[str, Any]:
    model: dict[str, Any] = {
        "modelFormat": {"name": contract.MODEL_FORMAT},
        "runtime": config.runtime_name,
        "protocolVersion": "v2",
        "storageUri": _storage_uri(spec),
        "args": runtime_args(spec).to_argv(),
        "resources": _resources(spec),
    }
    if spec.runtime_image:
        model["image"] = spec.runtime_image
    env = _env(spec)
    if env:
        model["env"] = env
    mounts = [mount for _, mount in _volumes(spec)]
    if mounts:
        model["volumeMounts"] = mounts
    return model


def _volumes(spec: WhisperEndpointSpec) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The predictor's volumes, each with its mount in the runtime container."""
    volumes = []
    secret = spec.auth.api_key_secret_ref
    if secret:  # only the one key of the Secret, as the file --api_key_file names
        items = [{"key": secret.key, "path": API_KEY_FILE}]
        volumes.append(({"name": API_KEY_VOLUME, "secret": {"secretName": secret.name, "items": items}},
                        {"name": API_KEY_VOLUME, "mountPath": API_KEY_DIR, "readOnly": True}))
    if spec.cache:  # the claim that outlives the pods
        volumes.append(({"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": spec.cache.persistent_volume_claim}},
                        {"name": CACHE_VOLUME, "mountPath": CACHE_MOUNT_PATH}))
    return volumes


def _storage_uri(spec: WhisperEndpointSpec) -> str:
    """The model's source; a model already on the cache claim is mounted from there (KServe's pvc://)."""
    cache = spec.cache
    if cache and cache.model_path:
        return f"pvc://{cache.persistent_volume_claim}/{cache.model_path}"
    return spec.model.resolved_storage_uri


def _cache_security_context() -> dict[str, Any]:
    """The cache claim writable for the runtime's group (OnRootMismatch: no walk of a full cache on every start)."""
    return {"securityContext": {"fsGroup": RUNTIME_GROUP_ID, "fsGroupChangePolicy": "OnRootMismatch"}}


def _rollout(spec: WhisperEndpointSpec) -> dict[str, Any]:
    """Standard mode: a rolling update that keeps serving pods until their successors are ready (the runtime's
    readiness waits for its warm-up); Knative: the canary share of a new revision, when the spec asks for one."""
    if spec.deployment_mode == "Standard":
        surge, unavailable = spec.rollout.surge_and_unavailable
        return {"deploymentStrategy": {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}
    if spec.rollout.canary_traffic_percent is not None:
        return {"canaryTrafficPercent": spec.rollout.canary_traffic_percent}
    return {}


def queue_depth_query(endpoint: Endpoint) -> str:
    """The endpoint's total queue depth: every predictor pod of its Deployment (named ``<name>-predictor-...``)."""
    selector = f'namespace="{endpoint.namespace}",pod=~"{endpoint.name}-predictor-.*"'
    return f"sum({QUEUE_DEPTH_METRIC}{{{selector}}})"


def _scaling(endpoint: Endpoint) -> dict[str, Any]:
    """Replica bounds and the signal: Knative's concurrency target, or KServe's KEDA ``autoScaling`` on the queue.

    KServe turns an External Prometheus metric into a KEDA prometheus trigger whose ``threshold`` is
    ``target.value``; KEDA averages it over the replicas, so the endpoint-wide sum aims at ``target`` per replica.
    """
    scaling = endpoint.spec.autoscaling
    rendered: dict[str, Any] = {"minReplicas": scaling.min_replicas, "maxReplicas": scaling.max_replicas}
    if scaling.target_concurrency is not None:
        rendered.update(scaleMetric="concurrency", scaleTarget=scaling.target_concurrency)
    if scaling.queue_depth is not None:
        metric = {"backend": "prometheus", "serverAddress": scaling.queue_depth.prometheus_url,
                  "query": queue_depth_query(endpoint)}
        target = {"type": "Value", "value": str(scaling.queue_depth.target)}
        rendered["autoScaling"] = {"metrics": [{"type": "External", "external": {"metric": metric, "target": target}}]}
    return rendered


def _predictor(endpoint: Endpoint, config: OperatorConfig) -> dict[str, Any]:
    spec = endpoint.spec
    user_tolerations = [toleration.model_dump(by_alias=True, exclude_none=True) for toleration in spec.tolerations]
    predictor = {
        **_scaling(endpoint),
        **_rollout(spec),
        **(_cache_security_context() if spec.cache else {}),
        "model": _model(spec, config),
        "affinity": {
            "nodeAffinity": render_node_affinity(spec.resources.compute_capability, spec.resources.gpu_products)
        },
        "tolerations": gpu_tolerations() + user_tolerations,
    }
    if spec.node_selector:
        predictor["nodeSelector"] = dict(spec.node_selector)
    volumes = [volume for volume, _ in _volumes(spec)]
    if volumes:
        predictor["volumes"] = volumes
    return predictor


def _annotations(spec: WhisperEndpointSpec) -> dict[str, str]:
    """KServe's switches; KServe copies the InferenceService's annotations to the predictor pods, where its
    storage-initializer webhook reads the storage Secret's name."""
    annotations = {KSERVE_DEPLOYMENT_MODE_ANNOTATION: spec.deployment_mode}
    if spec.model.storage_secret_ref:
        annotations[KSERVE_STORAGE_SECRET_ANNOTATION] = spec.model.storage_secret_ref.name
    if spec.autoscaling.queue_depth is not None:
        annotations[KSERVE_AUTOSCALER_CLASS_ANNOTATION] = KEDA_AUTOSCALER_CLASS
    return annotations


def owner_reference(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "apiVersion": WHISPER_ENDPOINT.api_version,
        "kind": WHISPER_ENDPOINT.kind,
        "name": endpoint.name,
        "uid": endpoint.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def spec_hash(manifest: dict[str, Any]) -> str:
    """A short digest of the desired object: it changes whenever the desired state does."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def render_inference_service(endpoint: Endpoint, config: Optional[OperatorConfig] = None) -> dict[str, Any]:
    """The desired InferenceService; it carries an owner reference when the endpoint's uid is known."""
    config = config or OperatorConfig()
    metadata: dict[str, Any] = {
        "name": endpoint.name,
        "namespace": endpoint.namespace,
        "labels": {
            "app.kubernetes.io/name": "whisper",
            "app.kubernetes.io/instance": endpoint.name,
            "app.kubernetes.io/managed-by": MANAGED_BY,
            ENDPOINT_LABEL: endpoint.name,
        },
        "annotations": _annotations(endpoint.spec),
    }
    if endpoint.uid:
        metadata["ownerReferences"] = [owner_reference(endpoint)]
    manifest = {
        "apiVersion": INFERENCE_SERVICE.api_version,
        "kind": INFERENCE_SERVICE.kind,
        "metadata": metadata,
        "spec": {"predictor": _predictor(endpoint, config)},
    }
    metadata["annotations"][SPEC_HASH_ANNOTATION] = spec_hash(manifest)
    return manifest
