"""Helpers for the operator's tests: load the CRDs, turn Kubernetes structural schemas into JSON Schema."""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "crds" / "whisper.kserve-contrib.io_whisperendpoints.yaml"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
GOLDEN = Path(__file__).resolve().parent / "golden"

#: KServe's Go module whose InferenceService CRD rendered objects must satisfy. The pinned v0.21.0 is not served
#: by the Go module proxy (403 "not available"); v0.20.0's InferenceService CRD is byte-identical to the one on
#: KServe's main branch after it, where 0.21 was developed, so it stands in until 0.21.0 can be downloaded.
KSERVE_MODULE = "github.com/kserve/kserve@v0.20.0"
KSERVE_ISVC_CRD = "config/crd/full/serving.kserve.io_inferenceservices.yaml"


#: Namespace and name of the WhisperEndpoint that endpoint() builds.
KEY = ("speech", "whisper")


def endpoint(spec: dict | None = None, generation: int = 1, status: dict | None = None) -> dict:
    """A WhisperEndpoint as the API server returns it."""
    body = {
        "apiVersion": "whisper.kserve-contrib.io/v1alpha1",
        "kind": "WhisperEndpoint",
        "metadata": {"name": "whisper", "namespace": "speech", "uid": "uid-1", "generation": generation},
        "spec": spec or {"model": {"preset": "large-v3-turbo"}},
    }
    if status:
        body["status"] = status
    return body


def load_yaml_documents(path: Path) -> list[Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # KServe's CRD is 2 MB: the C loader takes a second
    return [document for document in yaml.load_all(path.read_text(), Loader=loader) if document]


def whisper_crd() -> dict[str, Any]:
    return load_yaml_documents(CRD_PATH)[0]


def version_schema(crd: dict[str, Any], version: str) -> dict[str, Any]:
    return next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]


@functools.lru_cache(maxsize=1)
def kserve_isvc_crd() -> dict[str, Any]:
    """KServe's real InferenceService CRD, from its Go module (downloaded once into the Go module cache)."""
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GO111MODULE": "on"}
    result = subprocess.run(
        ["go", "mod", "download", "-json", KSERVE_MODULE], capture_output=True, text=True, env=env, check=False
    )
    info = json.loads(result.stdout or "{}")
    if "Dir" not in info:
        raise RuntimeError(f"go mod download {KSERVE_MODULE} failed: {info.get('Error') or result.stderr}")
    return load_yaml_documents(Path(info["Dir"]) / KSERVE_ISVC_CRD)[0]


def walk_schema(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path, children after parents."""
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from walk_schema(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk_schema(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk_schema(node["additionalProperties"], f"{path}{{}}")
    for keyword in ("anyOf", "allOf", "oneOf"):
        for index, child in enumerate(node.get(keyword) or []):
            yield from walk_schema(child, f"{path}<{keyword}{index}>")


def strict_json_schema(structural: dict[str, Any]) -> dict[str, Any]:
    """A Kubernetes structural schema as JSON Schema that also refuses unknown fields.

    The API server would prune unknown fields silently; refusing them here catches a renderer that writes a
    field KServe does not know (it would vanish in the cluster).
    """
    schema = copy.deepcopy(structural)
    for _, node in walk_schema(schema):
        if node.get("nullable"):
            node["type"] = [node["type"], "null"]
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
    return schema


def strict_validator(structural: dict[str, Any]) -> jsonschema.Draft7Validator:
    """Built once per schema: jsonschema.validate() would re-check a 2 MB schema on every call."""
    return jsonschema.Draft7Validator(strict_json_schema(structural))


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Kubernetes CRD defaulting: missing properties with a default get it, recursively (defaults included)."""
    if isinstance(value, dict) and "properties" in schema:
        result = dict(value)
        for name, child in schema["properties"].items():
            if name not in result and "default" in child:
                result[name] = copy.deepcopy(child["default"])
            if name in result:
                result[name] = apply_defaults(child, result[name])
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], item) for item in value]
    return value


class InMemoryCluster:
    """A small stand-in for the API server: stores InferenceServices, WhisperEndpoints and Deployments, applies like
    server-side apply (the applied fields win, fields set by others stay), bumps generation on spec changes,
    and can be told to fail the next call with one of the operator's errors."""

    def __init__(self) -> None:
        self.inference_services: dict[tuple[str, str], dict[str, Any]] = {}
        self.endpoints: dict[tuple[str, str], dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.applies = 0
        self.deployment_reads = 0
        self.inference_service_reads = 0
        self.fail_with: Exception | None = None

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error

    def get_inference_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._maybe_fail()
        self.inference_service_reads += 1
        found = self.inference_services.get((namespace, name))
        return copy.deepcopy(found) if found else None

    def apply_inference_service(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self._maybe_fail()
        self.applies += 1
        key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        live = self.inference_services.get(key) or {"metadata": {"generation": 0}}
        merged = _merge(live, copy.deepcopy(manifest))
        if merged.get("spec") != live.get("spec"):
            merged["metadata"]["generation"] = live["metadata"]["generation"] + 1
        self.inference_services[key] = merged
        return copy.deepcopy(merged)

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.deployment_reads += 1
        found = self.deployments.get((namespace, name))
        return copy.deepcopy(found) if found else None

    def get_endpoint(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.endpoints.get((namespace, name))
        return copy.deepcopy(found) if found else None

    def patch_endpoint_status(self, namespace: str, name: str, status_patch: dict[str, Any]) -> None:
        status = self.endpoints[(namespace, name)].setdefault("status", {})
        for key, value in status_patch.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = copy.deepcopy(value)

    def kserve_reports(self, namespace: str, name: str, **status: Any) -> None:
        """Play KServe's controller: write the InferenceService's status for its current generation."""
        isvc = self.inference_services[(namespace, name)]
        isvc["status"] = {"observedGeneration": isvc["metadata"]["generation"], **status}


def _merge(live: Any, applied: Any) -> Any:
    if isinstance(live, dict) and isinstance(applied, dict):
        return {**live, **{key: _merge(live.get(key), value) for key, value in applied.items()}}
    return applied
