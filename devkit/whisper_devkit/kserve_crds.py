"""KServe's CustomResourceDefinitions, derived from the pinned KServe release's published API types.

The Go module proxy does not serve github.com/kserve/kserve (every version answers 403), so its config/crd
cannot be read. The KServe Python SDK of the same release (``kserve==0.21.0`` on PyPI) carries the same API as
generated model classes (``openapi_types`` with the JSON names in ``attribute_map``). This module turns them into
structural schemas: KServe's own types are typed field by field (so the API server prunes and validates like the
real CRDs); embedded Kubernetes core types (containers, tolerations, affinity, ...) are kept as open objects.
"""

from __future__ import annotations

import re
from importlib.metadata import version

import kserve.models

from . import binaries

GROUP = "serving.kserve.io"
OPEN_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
SCALARS = {"str": {"type": "string"}, "int": {"type": "integer"}, "bool": {"type": "boolean"},
           "float": {"type": "number"}, "object": {"x-kubernetes-preserve-unknown-fields": True},
           "ResourceQuantity": {"x-kubernetes-int-or-string": True}}
LIST_TYPE = re.compile(r"^list\[(.+)\]$")
DICT_TYPE = re.compile(r"^dict\(str, (.+)\)$")
KSERVE_TYPE = re.compile(r"^V1(alpha1|alpha2|beta1)")


class KServeVersionMismatch(RuntimeError):
    """The installed KServe SDK is not the release pinned in versions.env."""


def schema_for(type_name: str, enclosing: tuple[str, ...] = ()) -> dict:
    """OpenAPI v3 schema of one SDK type name; KServe types recurse (a cycle falls back to an open object)."""
    if type_name in SCALARS:
        return dict(SCALARS[type_name])
    if match := LIST_TYPE.match(type_name):
        return {"type": "array", "items": schema_for(match.group(1), enclosing)}
    if match := DICT_TYPE.match(type_name):
        return {"type": "object", "additionalProperties": schema_for(match.group(1), enclosing)}
    model = getattr(kserve.models, type_name, None)
    if not KSERVE_TYPE.match(type_name) or model is None or type_name in enclosing:
        return dict(OPEN_OBJECT)
    properties = {model.attribute_map[field]: schema_for(field_type, (*enclosing, type_name))
                  for field, field_type in model.openapi_types.items()}
    return {"type": "object", "properties": properties}


def crd(kind: str, plural: str, version: str, scope: str, short_names: list[str],
        printer_columns: list[dict]) -> dict:
    model = getattr(kserve.models, f"{version.capitalize()}{kind}")
    spec_type = model.openapi_types["spec"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/name": "kserve",
                                                             "app.kubernetes.io/version": kserve_version()}},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                      "shortNames": short_names},
            "versions": [{
                "name": version,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": printer_columns,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                    "spec": schema_for(spec_type), "status": dict(OPEN_OBJECT)}}},
            }],
        },
    }


def kserve_version() -> str:
    pinned = binaries.pinned_versions()["KSERVE_VERSION"].lstrip("v")
    installed = version("kserve")
    if installed != pinned:
        raise KServeVersionMismatch(f"kserve SDK {installed} installed, versions.env pins {pinned}")
    return pinned


def _condition_column(name: str, condition: str) -> dict:
    return {"name": name, "type": "string", "jsonPath": f".status.conditions[?(@.type=='{condition}')].status"}


AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
RUNTIME_COLUMNS = [{"name": "Disabled", "type": "boolean", "jsonPath": ".spec.disabled"},
                   {"name": "ModelType", "type": "string", "jsonPath": ".spec.supportedModelFormats[*].name"},
                   {"name": "Containers", "type": "string", "jsonPath": ".spec.containers[*].name"}, AGE]


def kserve_crds() -> list[dict]:
    """InferenceService, ServingRuntime and ClusterServingRuntime, as KServe names and prints them."""
    return [
        crd("InferenceService", "inferenceservices", "v1beta1", "Namespaced", ["isvc"],
            [{"name": "URL", "type": "string", "jsonPath": ".status.url"}, _condition_column("Ready", "Ready"),
             AGE]),
        crd("ServingRuntime", "servingruntimes", "v1alpha1", "Namespaced", [], RUNTIME_COLUMNS),
        crd("ClusterServingRuntime", "clusterservingruntimes", "v1alpha1", "Cluster", [], RUNTIME_COLUMNS),
    ]
