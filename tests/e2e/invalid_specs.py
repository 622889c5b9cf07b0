"""Distinct WhisperEndpoints the API server must refuse, each with the words it must say: the CRD's OpenAPI schema
and CEL rules, strict field validation, and the chart's endpoint policy (a ValidatingAdmissionPolicy).

A case is (name, what changes in the example endpoint, expected message); ``spec`` entries replace the example's
top-level spec fields (None removes one).
"""

from __future__ import annotations

#: The endpoint policy the operator tests install the chart with (values.yaml's endpointPolicy).
ENDPOINT_POLICY = {
    "enabled": True,
    "runtimeImages": ["registry.example.com/whisper/*"],
    "tolerations": [{"key": "dedicated", "value": "speech", "effect": "NoSchedule"}],
    "envNames": ["VLLM_*", "OMP_NUM_THREADS"],
    "admission": True,
}
POLICY_DENIED = ("ValidatingAdmissionPolicy 'whisper-operator-endpoint-policy' with binding "
                 "'whisper-operator-endpoint-policy' denied request: ")

SCHEMA = [
    ("no-model", {"spec": {"model": None}}, "spec.model: Required value"),
    ("unknown-preset", {"spec": {"model": {"preset": "large-v4"}}},
     'spec.model.preset: Unsupported value: "large-v4": supported values: "large-v3", "large-v3-turbo"'),
    ("storage-uri-scheme", {"spec": {"model": {"storageUri": "ftp://example.com/whisper"}}},
     'spec.model.storageUri: Invalid value: "ftp://example.com/whisper": spec.model.storageUri in body should match'),
    ("storage-uri-too-long", {"spec": {"model": {"storageUri": "hf://" + "a" * 2050}}},
     "spec.model.storageUri: Too long: may not be more than 2048"),
    ("token-secret-name", {"spec": {"model": {"preset": "large-v3", "hubTokenSecretRef": {"name": "Bad_Name"}}}},
     "spec.model.hubTokenSecretRef.name in body should match"),
    ("engine", {"spec": {"engine": "tensorrt"}}, 'spec.engine: Unsupported value: "tensorrt"'),
    ("dtype", {"spec": {"optimization": {"dtype": "int8"}}}, 'spec.optimization.dtype: Unsupported value: "int8"'),
    ("kv-cache-dtype", {"spec": {"optimization": {"kvCacheDtype": "fp4"}}},
     'spec.optimization.kvCacheDtype: Unsupported value: "fp4"'),
    ("compile-level", {"spec": {"optimization": {"torchCompile": {"level": 4}}}},
     "spec.optimization.torchCompile.level: Invalid value: 4: spec.optimization.torchCompile.level in body should be "
     "less than or equal to 3"),
    ("capture-size-zero", {"spec": {"optimization": {"cudaGraphs": {"captureSizes": [0]}}}},
     "spec.optimization.cudaGraphs.captureSizes[0] in body should be greater than or equal to 1"),
    ("capture-size-duplicate", {"spec": {"optimization": {"cudaGraphs": {"captureSizes": [8, 8]}}}},
     "spec.optimization.cudaGraphs.captureSizes[1]: Duplicate value: 8"),
    ("max-num-seqs", {"spec": {"serving": {"maxNumSeqs": 0}}},
     "spec.serving.maxNumSeqs in body should be greater than or equal to 1"),
    ("batched-tokens-below-a-window", {"spec": {"serving": {"maxNumBatchedTokens": 1000}}},
     "spec.serving.maxNumBatchedTokens in body should be greater than or equal to 1500"),
    ("gpu-memory-percent", {"spec": {"serving": {"gpuMemoryUtilizationPercent": 101}}},
     "spec.serving.gpuMemoryUtilizationPercent in body should be less than or equal to 100"),
    ("audio-seconds", {"spec": {"serving": {"maxAudioSeconds": 86401}}},
     "spec.serving.maxAudioSeconds in body should be less than or equal to 86400"),
    ("upload-megabytes", {"spec": {"serving": {"maxUploadMegabytes": 20000}}},
     "spec.serving.maxUploadMegabytes in body should be less than or equal to 16384"),
    ("language", {"spec": {"serving": {"defaultLanguage": "english"}}},
     'spec.serving.defaultLanguage: Invalid value: "english"'),
    ("task", {"spec": {"serving": {"defaultTask": "summarize"}}},
     'spec.serving.defaultTask: Unsupported value: "summarize"'),
    ("gpus-per-replica", {"spec": {"resources": {"gpusPerReplica": 9}}},
     "spec.resources.gpusPerReplica in body should be less than or equal to 8"),
    ("compute-capability", {"spec": {"resources": {"minComputeCapability": "8,9"}}},
     'spec.resources.minComputeCapability: Invalid value: "8,9": spec.resources.minComputeCapability in body '
     "should match"),
    ("gpu-product", {"spec": {"resources": {"gpuProducts": ["NVIDIA L4"]}}},
     'spec.resources.gpuProducts[0]: Invalid value: "NVIDIA L4"'),
    ("cpu-quantity", {"spec": {"resources": {"cpu": "lots"}}}, 'spec.resources.cpu: Invalid value: "lots"'),
    ("max-replicas", {"spec": {"autoscaling": {"maxReplicas": 101}}},
     "spec.autoscaling.maxReplicas in body should be less than or equal to 100"),
    ("deployment-mode", {"spec": {"deploymentMode": "Serverless"}},
     'spec.deploymentMode: Unsupported value: "Serverless": supported values: "Standard", "Knative"'),
    ("node-selector-value", {"spec": {"nodeSelector": {"pool": "x" * 64}}},
     "spec.nodeSelector.pool: Too long: may not be more than 63"),
    ("toleration-operator", {"spec": {"tolerations": [{"key": "dedicated", "operator": "In"}]}},
     'spec.tolerations[0].operator: Unsupported value: "In"'),
    ("toleration-effect", {"spec": {"tolerations": [{"key": "dedicated", "effect": "NoRun"}]}},
     'spec.tolerations[0].effect: Unsupported value: "NoRun"'),
    ("runtime-image-empty", {"spec": {"runtimeImage": ""}},
     "spec.runtimeImage: Invalid value: \"\": spec.runtimeImage in body should be at least 1 chars long"),
    ("env-name", {"spec": {"env": [{"name": "1BAD", "value": "x"}]}}, 'spec.env[0].name: Invalid value: "1BAD"'),
    ("env-duplicate", {"spec": {"env": [{"name": "VLLM_A", "value": "1"}, {"name": "VLLM_A", "value": "2"}]}},
     'spec.env[1]: Duplicate value: {"name":"VLLM_A"}'),
    ("unknown-field", {"spec": {"replicas": 3}}, 'unknown field "spec.replicas"'),
    ("cache-claim-name", {"spec": {"cache": {"persistentVolumeClaim": "Whisper_Cache"}}},
     "spec.cache.persistentVolumeClaim in body should match"),
    ("cache-model-path-leaves-the-claim", {"spec": {"cache": {"persistentVolumeClaim": "c", "modelPath": "m/../.."}}},
     "spec.cache.modelPath in body should match"),
    ("canary-percent", {"spec": {"deploymentMode": "Knative", "rollout": {"canaryTrafficPercent": 101}}},
     "spec.rollout.canaryTrafficPercent in body should be less than or equal to 100"),
]
CEL = [
    ("fp8-below-8.9", {"spec": {"resources": {"minComputeCapability": "8.6"}}},
     "fp8 KV cache needs minComputeCapability >= 8.9 (Ada Lovelace or newer)"),
    ("preset-and-storage-uri", {"spec": {"model": {"preset": "large-v3-turbo", "storageUri": "hf://openai/whisper"}}},
     "model: set exactly one of preset or storageUri"),
    ("neither-preset-nor-storage-uri", {"spec": {"model": {}}}, "model: set exactly one of preset or storageUri"),
    ("min-above-max-replicas", {"spec": {"autoscaling": {"minReplicas": 3, "maxReplicas": 2}}},
     "autoscaling.minReplicas must not exceed autoscaling.maxReplicas"),
    ("scale-to-zero-in-standard-mode", {"spec": {"autoscaling": {"minReplicas": 0}}},
     "autoscaling.minReplicas 0 (scale to zero) needs deploymentMode Knative"),
    ("concurrency-target-in-standard-mode", {"spec": {"autoscaling": {"targetConcurrency": 4}}},
     "autoscaling.targetConcurrency needs deploymentMode Knative"),
    ("inline-hub-token", {"spec": {"env": [{"name": "HF_TOKEN", "value": "hf_secret"}]}},
     "env: set the hub token through model.hubTokenSecretRef, never inline"),
    ("rollout-that-replaces-nothing", {"spec": {"rollout": {"maxSurge": 0}}},
     "rollout: maxSurge and maxUnavailable must not both be 0 (no pod could ever be replaced)"),
    ("deployment-strategy-in-knative-mode", {"spec": {"deploymentMode": "Knative", "rollout": {"maxSurge": 2}}},
     "rollout.maxSurge and rollout.maxUnavailable need deploymentMode Standard"),
    ("canary-in-standard-mode", {"spec": {"rollout": {"canaryTrafficPercent": 10}}},
     "rollout.canaryTrafficPercent needs deploymentMode Knative"),
    ("compile-cache-root-in-env", {"spec": {"cache": {"persistentVolumeClaim": "c"},
                                            "env": [{"name": "VLLM_CACHE_ROOT", "value": "/tmp"}]}},
     "env: VLLM_CACHE_ROOT is where cache puts vLLM's compile cache; remove it from env"),
    ("name-too-long", {"name": "w" * 46}, "metadata.name must start with a letter"),
    ("name-starts-with-digit", {"name": "1whisper"}, "metadata.name must start with a letter"),
]
#: Refused by the endpoint policy; the message is the operator's own (whisper_operator.policy), checked in the test.
POLICY = [
    ("policy-runtime-image", {"spec": {"runtimeImage": "docker.io/attacker/miner:latest"}}),
    ("policy-image-prefix-is-not-a-match", {"spec": {"runtimeImage": "registry.example.com/whisperer:1"}}),
    ("policy-toleration", {"spec": {"tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                                                     "operator": "Exists"}]}}),
    ("policy-toleration-of-every-taint", {"spec": {"tolerations": [{"operator": "Exists"}]}}),
    ("policy-toleration-value", {"spec": {"tolerations": [{"key": "dedicated", "value": "batch",
                                                           "effect": "NoSchedule"}]}}),
    ("policy-env-name", {"spec": {"env": [{"name": "VLLM_X", "value": "1"}, {"name": "LD_PRELOAD",
                                                                             "value": "/tmp/x.so"}]}}),
]
