"""Check rendered objects against the Kubernetes and KServe API types, field by field, with no cluster.

The official Python clients carry every API type as a model class with ``openapi_types`` (field -> type name)
and ``attribute_map`` (field -> JSON name). Walking an object along them finds misspelt or misplaced fields
and scalars of the wrong type, which an API server would reject or silently drop.
"""

from __future__ import annotations

import re

import kserve.models
import kubernetes.client.models

LIST_TYPE = re.compile(r"^(?:list|List)\[(.+)\]$")
DICT_TYPE = re.compile(r"^(?:dict\(str, |Dict\[str, )(.+)[\])]$")
SCALARS = {"str": (str,), "int": (int,), "bool": (bool,), "float": (int, float), "datetime": (str,)}
#: Kinds checked here: (apiVersion, kind) -> model class name.
MODELS = {
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "V1ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "V1ClusterRoleBinding",
    ("rbac.authorization.k8s.io/v1", "Role"): "V1Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "V1RoleBinding",
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): "V1CustomResourceDefinition",
    ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"): "V1alpha1ClusterServingRuntime",
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): "V1ValidatingAdmissionPolicy",
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"): "V1ValidatingAdmissionPolicyBinding",
}


def model(type_name: str):
    return getattr(kubernetes.client.models, type_name, None) or getattr(kserve.models, type_name)


def problems(value, type_name: str, path: str) -> list[str]:
    """Every place under ``path`` where ``value`` does not fit the API type ``type_name``."""
    if type_name == "object":  # free-form (IntOrString, JSON)
        return []
    if type_name in SCALARS:
        fits = isinstance(value, SCALARS[type_name]) and not (type_name == "int" and isinstance(value, bool))
        return [] if fits else [f"{path}: expected {type_name}, got {value!r}"]
    if match := LIST_TYPE.match(type_name):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {value!r}"]
        return [found for index, item in enumerate(value) for found in problems(item, match.group(1), f"{path}[{index}]")]
    if match := DICT_TYPE.match(type_name):
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {value!r}"]
        return [found for key, item in value.items() for found in problems(item, match.group(1), f"{path}.{key}")]
    return object_problems(value, model(type_name), path)


def object_problems(value, model_class, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object, got {value!r}"]
    fields = {json_name: model_class.openapi_types[field] for field, json_name in model_class.attribute_map.items()}
    found = [f"{path}.{key}: unknown field of {model_class.__name__}" for key in value if key not in fields]
    return found + [problem for key, item in value.items() if key in fields
                    for problem in problems(item, fields[key], f"{path}.{key}")]


def type_problems(obj: dict) -> list[str]:
    """Problems of one rendered object of a kind in MODELS."""
    type_name = MODELS[(obj["apiVersion"], obj["kind"])]
    return problems(obj, type_name, f"{obj['kind']}/{obj['metadata']['name']}")
