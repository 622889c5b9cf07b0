"""API coordinates and the label/annotation keys the operator writes: one place for every name."""

from __future__ import annotations

import dataclasses

GROUP = "whisper.kserve-contrib.io"
VERSION = "v1alpha1"
KIND = "WhisperEndpoint"
PLURAL = "whisperendpoints"


@dataclasses.dataclass(frozen=True)
class ApiResource:
    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


WHISPER_ENDPOINT = ApiResource(GROUP, VERSION, PLURAL, KIND)
INFERENCE_SERVICE = ApiResource("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService")


def predictor_deployment_name(inference_service: str) -> str:
    """The Deployment KServe's Standard mode runs the predictor in."""
    return f"{inference_service}-predictor"


#: KServe's annotation choosing plain Deployments ("Standard") or Knative Services ("Knative").
KSERVE_DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"

#: KServe's credential builder takes the storage-initializer's credentials from the Secret this pod annotation
#: names (its ``storageSecretNameAnnotation`` setting, this by default), ahead of the ServiceAccount's secrets.
KSERVE_STORAGE_SECRET_ANNOTATION = "serving.kserve.io/storageSecretName"

#: KServe's annotation choosing the autoscaler of Standard mode; "keda" makes it create a KEDA ScaledObject.
KSERVE_AUTOSCALER_CLASS_ANNOTATION = "serving.kserve.io/autoscalerClass"
KEDA_AUTOSCALER_CLASS = "keda"
#: The runtime's gauge of windows waiting for the engine (whisper_runtime.metrics.QUEUE_DEPTH).
QUEUE_DEPTH_METRIC = "whisper_queue_depth"

ENDPOINT_LABEL = f"{GROUP}/endpoint"
SPEC_HASH_ANNOTATION = f"{GROUP}/spec-hash"
MANAGED_BY = "whisper-operator"
FIELD_MANAGER = "whisper-operator"

#: NVIDIA GPU Feature Discovery node labels and the device plugin's resource/taint name.
GPU_RESOURCE = "nvidia.com/gpu"
GFD_COMPUTE_MAJOR = "nvidia.com/gpu.compute.major"
GFD_COMPUTE_MINOR = "nvidia.com/gpu.compute.minor"
GFD_PRODUCT = "nvidia.com/gpu.product"

#: Warm replicas: the endpoint's cache claim, mounted on kserve-container; vLLM keeps its torch.compile cache
#: (with Inductor's and Triton's) under VLLM_CACHE_ROOT/torch_compile_cache/<hash of config and code>.
CACHE_VOLUME = "whisper-cache"
CACHE_MOUNT_PATH = "/var/cache/whisper"
VLLM_CACHE_ROOT = f"{CACHE_MOUNT_PATH}/vllm"
#: The runtime image's user and group (runtime/Dockerfile): fsGroup makes the claim writable for it.
RUNTIME_GROUP_ID = 1000
