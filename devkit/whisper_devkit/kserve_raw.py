"""What KServe's controller does for an InferenceService in Standard (RawDeployment) mode, as pure functions.

KServe's controller manager cannot be built here (the Go module proxy refuses github.com/kserve/kserve), so the
local cluster runs this stand-in (``kserve_standin``): an InferenceService's predictor becomes the Deployment and
Service KServe would create (``<name>-predictor``, KServe's labels, the ServingRuntime's pod spec with the
predictor's overrides, the storage-initializer for a ``storageUri``), and its status reports ``PredictorReady``,
``IngressReady`` and ``Ready`` from the Deployment as KServe does with ingress creation disabled.
"""

from __future__ import annotations

import copy

ISVC_LABEL = "serving.kserve.io/inferenceservice"
RUNTIME_CONTAINER = "kserve-container"
MODEL_MOUNT = "/mnt/models"
STORAGE_INITIALIZER_IMAGE = "kserve/storage-initializer:v0.21.0"
MODEL_SPEC_ONLY_FIELDS = ("modelFormat", "runtime", "storageUri", "protocolVersion")
RUNTIME_POD_FIELDS = ("containers", "volumes", "nodeSelector", "affinity", "tolerations", "imagePullSecrets")
PREDICTOR_NON_POD_FIELDS = ("model", "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "labels",
                            "annotations", "canaryTrafficPercent", "containerConcurrency", "timeout", "logger",
                            "batcher", "deploymentStrategy", "storageUris", "workerSpec", "autoScaling")


class RuntimeProblem(LookupError):
    """The predictor cannot get a runtime; ``reason`` is what KServe's status condition says."""

    reason = "RuntimeProblem"


class NoSupportingRuntime(RuntimeProblem):
    """No enabled ServingRuntime/ClusterServingRuntime supports the predictor's model format and protocol."""

    reason = "NoSupportingRuntime"


class NoServingContainer(RuntimeProblem):
    """The selected runtime has no container named ``kserve-container``."""

    reason = "InvalidRuntime"


def _supports(runtime: dict, model: dict) -> bool:
    spec = runtime["spec"]
    formats = {entry["name"] for entry in spec.get("supportedModelFormats", [])}
    protocol = model.get("protocolVersion", "v1")
    return (not spec.get("disabled") and model.get("modelFormat", {}).get("name") in formats
            and protocol in spec.get("protocolVersions", ["v1"]))


def select_runtime(isvc: dict, namespaced: list[dict], cluster_wide: list[dict]) -> dict:
    """The runtime KServe would pick: the named one, else an auto-selectable one (namespace first)."""
    model = isvc["spec"]["predictor"].get("model", {})
    name = model.get("runtime")
    same_namespace = [runtime for runtime in namespaced
                      if runtime["metadata"]["namespace"] == isvc["metadata"]["namespace"]]
    for runtime in same_namespace + cluster_wide:
        if _supports(runtime, model) and (runtime["metadata"]["name"] == name if name else
                                          _auto_selectable(runtime, model)):
            return runtime
    raise NoSupportingRuntime(f"No runtime found to support predictor with model type: {model.get('modelFormat')}")


def _auto_selectable(runtime: dict, model: dict) -> bool:
    format_name = model.get("modelFormat", {}).get("name")
    return any(entry["name"] == format_name and entry.get("autoSelect")
               for entry in runtime["spec"].get("supportedModelFormats", []))


def _merge_env(base: list[dict], override: list[dict]) -> list[dict]:
    merged = {entry["name"]: entry for entry in base}
    merged.update({entry["name"]: entry for entry in override})
    return list(merged.values())


def _fill_placeholders(values: list[str], isvc_name: str) -> list[str]:
    return [value.replace("{{.Name}}", isvc_name) for value in values]


def predictor_container(runtime_container: dict, model: dict, isvc_name: str) -> dict:
    """The runtime's container overridden by the predictor's model spec, as KServe merges them."""
    container = copy.deepcopy(runtime_container)
    overrides = {key: value for key, value in model.items() if key not in MODEL_SPEC_ONLY_FIELDS}
    env = _merge_env(container.get("env", []), overrides.pop("env", []))
    container.update(overrides)
    if env:
        container["env"] = env
    for key in ("args", "command"):
        if key in container:
            container[key] = _fill_placeholders(container[key], isvc_name)
    container["name"] = RUNTIME_CONTAINER
    return container


def _storage_initializer(storage_uri: str) -> dict:
    return {"name": "storage-initializer", "image": STORAGE_INITIALIZER_IMAGE,
            "args": [storage_uri, MODEL_MOUNT],
            "volumeMounts": [{"name": "kserve-provision-location", "mountPath": MODEL_MOUNT}],
            "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}


def predictor_pod_spec(isvc: dict, runtime: dict) -> dict:
    """The ServingRuntime's pod spec, with the predictor's pod-level fields winning (KServe's MergePodSpec)."""
    predictor = isvc["spec"]["predictor"]
    model = predictor.get("model", {})
    runtime_spec = runtime["spec"]
    pod = {key: copy.deepcopy(runtime_spec[key]) for key in RUNTIME_POD_FIELDS if key in runtime_spec}
    pod.update({key: value for key, value in predictor.items() if key not in PREDICTOR_NON_POD_FIELDS})
    main = next((c for c in runtime_spec["containers"] if c["name"] == RUNTIME_CONTAINER), None)
    if main is None:
        raise NoServingContainer(f"runtime {runtime['metadata']['name']} has no container {RUNTIME_CONTAINER}")
    container = predictor_container(main, model, isvc["metadata"]["name"])
    if storage_uri := model.get("storageUri"):
        pod["initContainers"] = [_storage_initializer(storage_uri)]
        pod["volumes"] = [*pod.get("volumes", []), {"name": "kserve-provision-location", "emptyDir": {}}]
        mount = {"name": "kserve-provision-location", "mountPath": MODEL_MOUNT, "readOnly": True}
        container["volumeMounts"] = [*container.get("volumeMounts", []), mount]
    pod["containers"] = [container] + [c for c in runtime_spec["containers"] if c["name"] != RUNTIME_CONTAINER]
    return pod


def _owner_reference(isvc: dict) -> dict:
    return {"apiVersion": isvc["apiVersion"], "kind": "InferenceService", "name": isvc["metadata"]["name"],
            "uid": isvc["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def predictor_name(isvc: dict) -> str:
    return f"{isvc['metadata']['name']}-predictor"


def predictor_manifests(isvc: dict, runtime: dict) -> list[dict]:
    """The predictor Deployment and Service KServe creates in RawDeployment mode."""
    name, namespace = predictor_name(isvc), isvc["metadata"]["namespace"]
    predictor = isvc["spec"]["predictor"]
    labels = {ISVC_LABEL: isvc["metadata"]["name"], "component": "predictor", "app": f"isvc.{name}",
              **runtime["spec"].get("labels", {}), **predictor.get("labels", {})}
    metadata = {"name": name, "namespace": namespace, "labels": labels,
                "ownerReferences": [_owner_reference(isvc)]}
    pod_spec = predictor_pod_spec(isvc, runtime)
    port = next((p["containerPort"] for p in pod_spec["containers"][0].get("ports", [])), 8080)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
        "spec": {"replicas": predictor.get("minReplicas", 1), "selector": {"matchLabels": {"app": f"isvc.{name}"}},
                 "template": {"metadata": {"labels": labels, "annotations": {
                     **runtime["spec"].get("annotations", {}), **predictor.get("annotations", {})}},
                     "spec": pod_spec}},
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": metadata,
        "spec": {"selector": {"app": f"isvc.{name}"},
                 "ports": [{"name": "http", "port": 80, "targetPort": port, "protocol": "TCP"}]},
    }
    return [deployment, service]


def _condition(kind: str, ready: bool, reason: str | None, message: str | None, previous: list[dict],
               now: str) -> dict:
    """A condition whose lastTransitionTime moves only when its status does."""
    status = "True" if ready else "False"
    earlier = next((c for c in previous if c["type"] == kind and c["status"] == status), None)
    since = earlier["lastTransitionTime"] if earlier else now
    condition = {"type": kind, "status": status, "lastTransitionTime": since}
    if not ready:
        condition.update(reason=reason, message=message)
    return condition


def inference_service_status(isvc: dict, deployment: dict | None, problem: RuntimeProblem | None,
                             now: str) -> dict:
    """KServe's status for a raw-deployment predictor: Ready once its Deployment is available."""
    available = bool(deployment) and any(
        c["type"] == "Available" and c["status"] == "True" for c in deployment.get("status", {}).get("conditions", []))
    reason = problem.reason if problem else "MinimumReplicasUnavailable"
    message = str(problem) if problem else "Deployment does not have minimum availability."
    previous = isvc.get("status", {}).get("conditions", [])
    predictor = _condition("PredictorReady", available, reason, message, previous, now)
    url = f"http://{predictor_name(isvc)}.{isvc['metadata']['namespace']}.svc.cluster.local"
    status = {"observedGeneration": isvc["metadata"].get("generation", 1),
              "conditions": [_condition("IngressReady", True, None, None, previous, now), predictor,
                             _condition("Ready", available, reason, message, previous, now)],
              "modelStatus": {"transitionStatus": "UpToDate" if available else "InProgress"}}
    if available:
        status.update(url=url, address={"url": url}, components={"predictor": {"url": url}})
    return status
