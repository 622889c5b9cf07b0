"""The WhisperEndpoint CRD: structural, defaults valid and equal to spec.py's, CEL messages equal to spec.py's.

CEL rules themselves are evaluated by a real API server in the e2e tests.
"""

from __future__ import annotations

import jsonschema
import pytest

import operator_testkit as kit
from whisper_operator.spec import WhisperEndpointSpec, spec_problems
from whisper_runtime import contract

#: Keywords a structural schema may use (apiextensions.k8s.io/v1 JSONSchemaProps, less the forbidden ones).
ALLOWED_KEYWORDS = {
    "type", "description", "properties", "required", "items", "additionalProperties", "default", "enum",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "format",
    "minItems", "maxItems", "minProperties", "maxProperties", "nullable", "anyOf", "allOf", "oneOf", "not",
    "title", "example", "multipleOf", "x-kubernetes-validations", "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-map-type", "x-kubernetes-embedded-resource",
}
#: Inside anyOf/allOf/oneOf/not only value validations are allowed (no type, default, description...).
FORBIDDEN_IN_JUNCTORS = {"description", "default", "additionalProperties", "nullable", "title"}


def structural_problems(schema: dict) -> list[str]:
    problems = []
    for path, node in kit.walk_schema(schema):
        in_junctor = "<" in path
        if unknown := set(node) - ALLOWED_KEYWORDS:
            problems.append(f"{path}: keywords not allowed in a CRD schema: {sorted(unknown)}")
        if in_junctor:
            if bad := set(node) & FORBIDDEN_IN_JUNCTORS:
                problems.append(f"{path}: {sorted(bad)} inside a junctor")
            continue
        typeless_ok = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
        if "type" not in node and not typeless_ok:
            problems.append(f"{path or '<root>'}: no type")
        if node.get("type") == "array" and "items" not in node:
            problems.append(f"{path}: array without items")
        if "properties" in node and isinstance(node.get("additionalProperties"), dict):
            problems.append(f"{path}: properties and additionalProperties together")
        if node.get("x-kubernetes-list-type") == "map":
            item = node["items"]
            for key in node.get("x-kubernetes-list-map-keys", []):
                if key not in item.get("required", []) and "default" not in item["properties"][key]:
                    problems.append(f"{path}: list-map key {key} is neither required nor defaulted")
    return problems


def test_crd_names_and_scope(whisper_crd):
    spec = whisper_crd["spec"]
    assert whisper_crd["metadata"]["name"] == "whisperendpoints.whisper.kserve-contrib.io"
    assert (spec["group"], spec["scope"], spec["names"]["kind"]) == (
        "whisper.kserve-contrib.io", "Namespaced", "WhisperEndpoint")
    assert "wep" in spec["names"]["shortNames"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert {"Model", "Ready", "URL", "Replicas", "Age"} <= set(columns)


def test_crd_schema_is_structural(whisper_schema):
    assert structural_problems(whisper_schema) == []


def test_structural_check_finds_problems():
    bad = {"type": "object", "properties": {"a": {"description": "no type"}, "b": {"type": "array"},
                                             "c": {"type": "string", "$ref": "#/x"}}}
    assert len(structural_problems(bad)) == 3


def test_every_default_is_valid_for_its_node(whisper_schema):
    for path, node in kit.walk_schema(whisper_schema):
        if "default" in node:
            jsonschema.validate(node["default"], kit.strict_json_schema(node))


def test_crd_defaults_equal_the_typed_spec_defaults(whisper_schema):
    spec_schema = whisper_schema["properties"]["spec"]
    minimal = {"model": {"preset": "large-v3"}}
    defaulted_by_api_server = kit.apply_defaults(spec_schema, minimal)
    typed = WhisperEndpointSpec.model_validate(minimal).model_dump(by_alias=True, mode="json")

    def non_empty(value):
        if isinstance(value, dict):
            return {key: non_empty(item) for key, item in value.items() if item not in (None, {}, [], ())}
        return value

    assert non_empty(typed) == defaulted_by_api_server


def test_defaults_inside_lists_and_optional_objects(whisper_schema):
    spec_schema = whisper_schema["properties"]["spec"]
    raw = {
        "model": {"preset": "large-v3", "hubTokenSecretRef": {"name": "s"}},
        "env": [{"name": "A"}],
        "tolerations": [{"key": "k"}],
        "autoscaling": {"queueDepth": {}},
        "auth": {"apiKeySecretRef": {"name": "k"}},
    }
    defaulted = kit.apply_defaults(spec_schema, raw)
    typed = WhisperEndpointSpec.model_validate(raw)
    assert defaulted["model"]["hubTokenSecretRef"]["key"] == typed.model.hub_token_secret_ref.key == "token"
    assert defaulted["auth"]["apiKeySecretRef"]["key"] == typed.auth.api_key_secret_ref.key == "token"
    assert defaulted["env"] == [{"name": "A", "value": typed.env[0].value}]
    assert defaulted["tolerations"] == [{"key": "k", "operator": typed.tolerations[0].operator}]
    assert defaulted["autoscaling"]["queueDepth"] == typed.autoscaling.queue_depth.model_dump(by_alias=True)


@pytest.mark.parametrize("example", kit.EXAMPLES, ids=lambda path: path.name)
def test_examples_satisfy_the_crd_schema(example, whisper_schema):
    for document in kit.load_yaml_documents(example):
        jsonschema.validate(document, kit.strict_json_schema(whisper_schema))


def test_schema_refuses_out_of_range_and_unknown_values(whisper_schema):
    schema = kit.strict_json_schema(whisper_schema)
    base = {"apiVersion": "whisper.kserve-contrib.io/v1alpha1", "kind": "WhisperEndpoint", "metadata": {}}
    for bad_spec in (
        {"model": {"preset": "large-v2"}},
        {"model": {"storageUri": "ftp://host/model"}},
        {"model": {"preset": "large-v3"}, "resources": {"minComputeCapability": "8"}},
        {"model": {"preset": "large-v3"}, "serving": {"gpuMemoryUtilizationPercent": 0}},
        {"model": {"preset": "large-v3"}, "serving": {"maxNumBatchedTokens": 1499}},
        {"model": {"preset": "large-v3"}, "optimization": {"kvCacheDtype": "int8"}},
        {"model": {"preset": "large-v3"}, "deploymentMode": "RawDeployment"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**base, "spec": bad_spec}, schema)


def test_token_budget_admits_at_least_one_window(whisper_schema):
    budget = whisper_schema["properties"]["spec"]["properties"]["serving"]["properties"]["maxNumBatchedTokens"]
    assert budget["minimum"] == contract.ENCODER_TOKENS_PER_WINDOW


def cel_messages(schema: dict) -> set[str]:
    return {rule["message"] for _, node in kit.walk_schema(schema) for rule in node.get("x-kubernetes-validations", [])}


def test_operator_reports_cross_field_problems_with_the_crd_messages(whisper_schema):
    """The same words whether the API server (CEL) or the operator (a spec that bypassed the CRD) refuses."""
    broken = WhisperEndpointSpec.model_validate(
        {
            "model": {"preset": "large-v3", "storageUri": "hf://a/b"},
            "resources": {"minComputeCapability": "8.6"},
            "autoscaling": {"minReplicas": 0, "maxReplicas": 1, "targetConcurrency": 2},
            "env": [{"name": "HF_TOKEN"}, {"name": "WHISPER_API_KEY"}],
        }
    )
    problems = spec_problems(broken)
    assert len(problems) == 6
    assert set(problems) <= cel_messages(whisper_schema)
    too_many = WhisperEndpointSpec.model_validate({"model": {"preset": "large-v3"},
                                                   "autoscaling": {"minReplicas": 3, "maxReplicas": 2}})
    assert set(spec_problems(too_many)) <= cel_messages(whisper_schema)
    queue_on_knative = WhisperEndpointSpec.model_validate({"model": {"preset": "large-v3"}, "deploymentMode": "Knative",
                                                           "autoscaling": {"queueDepth": {}}})
    assert len(spec_problems(queue_on_knative)) == 1
    assert set(spec_problems(queue_on_knative)) <= cel_messages(whisper_schema)


def test_cache_and_rollout_problems_use_the_crd_messages(whisper_schema):
    broken = WhisperEndpointSpec.model_validate({
        "model": {"preset": "large-v3"}, "deploymentMode": "Knative", "autoscaling": {"minReplicas": 1},
        "rollout": {"maxSurge": 0, "maxUnavailable": 0}, "cache": {"persistentVolumeClaim": "c"},
        "env": [{"name": "VLLM_CACHE_ROOT"}]})
    canary_in_standard = WhisperEndpointSpec.model_validate({"model": {"preset": "large-v3"},
                                                             "rollout": {"canaryTrafficPercent": 5}})
    problems = spec_problems(broken) + spec_problems(canary_in_standard)
    assert len(problems) == 4
    assert set(problems) <= cel_messages(whisper_schema)


def test_kopf_peering_crds_are_structural():
    crds = kit.load_yaml_documents(kit.REPO / "crds" / "kopf.dev_peerings.yaml")
    assert {crd["metadata"]["name"] for crd in crds} == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    for crd in crds:
        assert structural_problems(kit.version_schema(crd, "v1")) == []
