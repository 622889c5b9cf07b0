"""The WhisperEndpoint spec as typed objects, with the same defaults as the CRD's OpenAPI schema.

The API server applies the CRD's defaults and CEL rules first; parsing here applies them again so that
``whisper-operator render`` works without a cluster and a spec that slipped past the API server
(e.g. an older CRD) is reported instead of deployed.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Optional, Union

import pydantic
from pydantic.alias_generators import to_camel

from whisper_runtime import contract

from .errors import InvalidSpec
from .presets import PRESETS, storage_uri_for

Quantity = Union[int, str]


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class SecretKeyRef(_Model):
    name: str
    key: str = "token"


class SecretRef(_Model):
    name: str


class ModelSource(_Model):
    preset: Optional[Literal[PRESETS]] = None  # type: ignore[valid-type]
    storage_uri: Optional[str] = None
    hub_token_secret_ref: Optional[SecretKeyRef] = None
    #: A Secret in KServe's storage-credential format, for the storage-initializer that downloads the model.
    storage_secret_ref: Optional[SecretRef] = None

    @property
    def resolved_storage_uri(self) -> str:
        return self.storage_uri or storage_uri_for(self.preset)

    @property
    def display_name(self) -> str:
        return self.preset or self.storage_uri


class TorchCompile(_Model):
    enabled: bool = True
    level: int = pydantic.Field(default=3, ge=1, le=3)


class CudaGraphs(_Model):
    enabled: bool = True
    capture_sizes: tuple[pydantic.PositiveInt, ...] = ()


class Optimization(_Model):
    dtype: Literal["bfloat16", "float16", "float32", "auto"] = "bfloat16"
    kv_cache_dtype: Literal["fp8", "auto"] = "fp8"
    torch_compile: TorchCompile = TorchCompile()
    cuda_graphs: CudaGraphs = CudaGraphs()


class Serving(_Model):
    max_num_seqs: int = pydantic.Field(default=256, ge=1, le=1024)
    #: Scheduler token budget per engine step; each new 30-second window's encoder takes 1500 of it
    #: (contract.ENCODER_TOKENS_PER_WINDOW), so this bounds how many windows start decoding per step.
    max_num_batched_tokens: int = pydantic.Field(default=24000, ge=contract.ENCODER_TOKENS_PER_WINDOW, le=1048576)
    #: An integer percent: Kubernetes API conventions avoid floats ("0.9" -> 90).
    gpu_memory_utilization_percent: int = pydantic.Field(default=90, ge=5, le=100)
    max_audio_seconds: int = pydantic.Field(default=14400, ge=1, le=86400)
    max_upload_megabytes: int = pydantic.Field(default=1024, ge=1, le=16384)
    default_language: Optional[str] = pydantic.Field(default=None, pattern=r"^[a-z]{2,3}$")
    default_task: Literal["transcribe", "translate"] = "transcribe"


class Resources(_Model):
    gpus_per_replica: int = pydantic.Field(default=1, ge=1, le=8)
    min_compute_capability: str = pydantic.Field(default="8.9", pattern=r"^(0|[1-9][0-9]?)\.(0|[1-9][0-9]?)$")
    gpu_products: tuple[str, ...] = ()
    cpu: Optional[Quantity] = None
    memory: Optional[Quantity] = None

    @property
    def compute_capability(self) -> tuple[int, int]:
        return contract.parse_compute_capability(self.min_compute_capability)


class QueueDepthScaling(_Model):
    """Standard mode: KEDA scales on the runtime's ``whisper_queue_depth`` as Prometheus reports it."""

    #: Windows waiting for the engine per replica that KEDA aims for.
    target: int = pydantic.Field(default=16, ge=1, le=100000)
    prometheus_url: str = pydantic.Field(
        default="http://prometheus-operated.monitoring.svc:9090", pattern=r"^https?://[^\s]+$", max_length=2048
    )


class Autoscaling(_Model):
    min_replicas: int = pydantic.Field(default=1, ge=0, le=100)
    max_replicas: int = pydantic.Field(default=1, ge=1, le=100)
    target_concurrency: Optional[int] = pydantic.Field(default=None, ge=1, le=1000)
    queue_depth: Optional[QueueDepthScaling] = None


class Toleration(_Model):
    key: Optional[str] = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: Optional[str] = None
    effect: Optional[Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]] = None
    toleration_seconds: Optional[int] = None


class Auth(_Model):
    """An API key every request to the runtime must carry (health probes and /metrics excepted)."""

    api_key_secret_ref: Optional[SecretKeyRef] = None


class EnvVar(_Model):
    name: str
    value: str = ""


# -- Warm replicas and rollouts (issue 13 items 2 and 4) --------------------------------------------------------

#: A Kubernetes object name (DNS-1123 subdomain), as the CRD's pattern for Secret and claim names.
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
#: A relative folder without "." or ".." segments (and no hidden ones): it cannot leave the claim.
CLAIM_PATH_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$"
#: vLLM's cache folder (torch.compile's artifacts live under it); the operator points it at the cache claim.
VLLM_CACHE_ROOT_ENV = "VLLM_CACHE_ROOT"
#: Standard mode's rolling update when the spec names none: one extra pod at a time, none taken away before
#: its successor is ready (the runtime reports ready only after its warm-up transcription).
DEFAULT_MAX_SURGE = 1
DEFAULT_MAX_UNAVAILABLE = 0


class Cache(_Model):
    """Warm replicas: a PersistentVolumeClaim that outlives the pods holds vLLM's compile cache and, with
    ``modelPath``, the model itself, so a new replica neither compiles again nor downloads anything."""

    persistent_volume_claim: str = pydantic.Field(max_length=253, pattern=OBJECT_NAME_PATTERN)
    #: The claim's folder holding the model (Hugging Face layout): served from there with KServe's pvc://.
    model_path: Optional[str] = pydantic.Field(default=None, max_length=1024, pattern=CLAIM_PATH_PATTERN)


class Rollout(_Model):
    """How a spec change replaces the serving pods without dropping requests."""

    #: Standard mode: pods above the replica count during a rolling update (default DEFAULT_MAX_SURGE).
    max_surge: Optional[int] = pydantic.Field(default=None, ge=0, le=100)
    #: Standard mode: pods that may be unready during a rolling update (default DEFAULT_MAX_UNAVAILABLE).
    max_unavailable: Optional[int] = pydantic.Field(default=None, ge=0, le=100)
    #: Knative mode: the share of traffic the new revision gets until the percent is raised to 100 or removed.
    canary_traffic_percent: Optional[int] = pydantic.Field(default=None, ge=0, le=100)

    @property
    def surge_and_unavailable(self) -> tuple[int, int]:
        surge = DEFAULT_MAX_SURGE if self.max_surge is None else self.max_surge
        unavailable = DEFAULT_MAX_UNAVAILABLE if self.max_unavailable is None else self.max_unavailable
        return surge, unavailable


def cache_and_rollout_problems(spec: "WhisperEndpointSpec") -> list[str]:
    """spec_problems' rules for ``cache`` and ``rollout``, in the words of the CRD's CEL messages."""
    problems = []
    rollout = spec.rollout
    if rollout.surge_and_unavailable == (0, 0):
        problems.append("rollout: maxSurge and maxUnavailable must not both be 0 (no pod could ever be replaced)")
    if (rollout.max_surge is not None or rollout.max_unavailable is not None) and spec.deployment_mode != "Standard":
        problems.append(
            "rollout.maxSurge and rollout.maxUnavailable need deploymentMode Standard "
            "(KServe refuses a Deployment strategy in Knative mode; use rollout.canaryTrafficPercent there)"
        )
    if spec.cache and any(variable.name == VLLM_CACHE_ROOT_ENV for variable in spec.env):
        problems.append("env: VLLM_CACHE_ROOT is where cache puts vLLM's compile cache; remove it from env")
    if rollout.canary_traffic_percent is not None and spec.deployment_mode != "Knative":
        problems.append(
            "rollout.canaryTrafficPercent needs deploymentMode Knative (Standard mode runs one Deployment and "
            "cannot split traffic; it rolls out with rollout.maxSurge and rollout.maxUnavailable)"
        )
    return problems


class WhisperEndpointSpec(_Model):
    model: ModelSource
    engine: Literal["vllm", "transformers"] = "vllm"
    optimization: Optimization = Optimization()
    serving: Serving = Serving()
    resources: Resources = Resources()
    autoscaling: Autoscaling = Autoscaling()
    deployment_mode: Literal["Standard", "Knative"] = "Standard"
    node_selector: dict[str, str] = {}
    tolerations: tuple[Toleration, ...] = ()
    runtime_image: Optional[str] = None
    env: tuple[EnvVar, ...] = ()
    auth: Auth = Auth()
    cache: Optional[Cache] = None
    rollout: Rollout = Rollout()


def spec_problems(spec: WhisperEndpointSpec) -> list[str]:
    """The cross-field rules, in the words of the CRD's CEL messages (empty when the spec is fine)."""
    problems = []
    if (spec.model.preset is None) == (spec.model.storage_uri is None):
        problems.append("model: set exactly one of preset or storageUri")
    if spec.optimization.kv_cache_dtype == "fp8" and not contract.fp8_kv_cache_supported(
        spec.resources.compute_capability
    ):
        problems.append(
            "fp8 KV cache needs minComputeCapability >= 8.9 (Ada Lovelace or newer): "
            "raise resources.minComputeCapability or set optimization.kvCacheDtype: auto"
        )
    if spec.autoscaling.min_replicas > spec.autoscaling.max_replicas:
        problems.append("autoscaling.minReplicas must not exceed autoscaling.maxReplicas")
    if spec.autoscaling.min_replicas == 0 and spec.deployment_mode != "Knative":
        problems.append("autoscaling.minReplicas 0 (scale to zero) needs deploymentMode Knative")
    if spec.autoscaling.target_concurrency is not None and spec.deployment_mode != "Knative":
        problems.append(
            "autoscaling.targetConcurrency needs deploymentMode Knative (Standard mode scales on CPU or queueDepth)"
        )
    if spec.autoscaling.queue_depth is not None and spec.deployment_mode != "Standard":
        problems.append("autoscaling.queueDepth needs deploymentMode Standard (Knative scales on targetConcurrency)")
    if any(variable.name == contract.HF_TOKEN_ENV for variable in spec.env):
        problems.append("env: set the hub token through model.hubTokenSecretRef, never inline")
    if any(variable.name == contract.API_KEY_ENV for variable in spec.env):
        problems.append("env: set the API key through auth.apiKeySecretRef, never inline")
    return problems + cache_and_rollout_problems(spec)


def parse_spec(raw: Mapping[str, Any]) -> WhisperEndpointSpec:
    """Typed spec with defaults applied; raises InvalidSpec with every problem in one message."""
    try:
        spec = WhisperEndpointSpec.model_validate(dict(raw))
    except pydantic.ValidationError as error:
        raise InvalidSpec("; ".join(_describe(problem) for problem in error.errors())) from None
    problems = spec_problems(spec)
    if problems:
        raise InvalidSpec("; ".join(problems))
    return spec


def _describe(problem: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in problem["loc"])
    return f"spec.{location}: {problem['msg']}"


class Endpoint(pydantic.BaseModel):
    """One WhisperEndpoint: its identity (for names and owner references) and its parsed spec."""

    model_config = pydantic.ConfigDict(frozen=True)

    name: str
    namespace: str
    uid: Optional[str] = None
    generation: Optional[int] = None
    spec: WhisperEndpointSpec

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "Endpoint":
        """From a WhisperEndpoint object (a dict as the API returns it); raises InvalidSpec."""
        metadata = body.get("metadata", {})
        return cls(
            name=metadata["name"],
            namespace=metadata.get("namespace") or "default",
            uid=metadata.get("uid"),
            generation=metadata.get("generation"),
            spec=parse_spec(body.get("spec") or {}),
        )
