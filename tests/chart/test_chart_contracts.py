"""What the chart writes matches what the code reads: runtime flags, operator flags, RBAC, peering, runtime name."""

from pathlib import Path

import pytest
import yaml
from whisper_operator import cli as operator_cli
from whisper_operator.rbac import policy_rules
from whisper_operator.render import render_inference_service
from whisper_operator.settings import OperatorConfig
from whisper_operator.spec import Endpoint
from whisper_runtime import contract
from whisper_runtime.cli import build_parser as runtime_parser

from chart_render import NON_DEFAULT, REPO_ROOT, one, select

#: Resources without a namespace: they can only be granted by a ClusterRole bound cluster-wide.
CLUSTER_SCOPED_RESOURCES = {"customresourcedefinitions", "namespaces", "clusterkopfpeerings"}
EXAMPLE_ENDPOINT = REPO_ROOT / "examples" / "whisper-endpoint.yaml"


def runtime_container(release: list[dict]) -> dict:
    (container,) = one(release, "ClusterServingRuntime")["spec"]["containers"]
    return container


def runtime_argv(release: list[dict], model_name: str = "whisper") -> list[str]:
    """The runtime's arguments after KServe fills in the template fields."""
    return [arg.replace("{{.Name}}", model_name) for arg in runtime_container(release)["args"]]


def operator_container(release: list[dict]) -> dict:
    (container,) = one(release, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def permission_triples(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_runtime_arguments_are_flags_the_runtime_parses(release):
    namespace = runtime_parser().parse_args(runtime_argv(release))
    assert (namespace.model_name, namespace.model_dir) == ("whisper", Path("/mnt/models"))
    assert (namespace.http_port, namespace.grpc_port) == (8080, 8081)


def test_default_runtime_arguments_switch_on_the_contract_optimisations(default_release):
    parsed = contract.RuntimeArgs.from_namespace(runtime_parser().parse_args(runtime_argv(default_release)))
    assert parsed == contract.RuntimeArgs()
    assert (parsed.kv_cache_dtype, parsed.compilation_level, parsed.cuda_graphs) == ("fp8", 3, True)


def test_custom_runtime_arguments_reach_the_runtime(custom_release):
    parsed = contract.RuntimeArgs.from_namespace(runtime_parser().parse_args(runtime_argv(custom_release)))
    assert (parsed.dtype, parsed.kv_cache_dtype, parsed.compilation_level) == ("float16", "auto", 0)
    assert (parsed.cuda_graphs, parsed.max_num_seqs, parsed.max_num_batched_tokens) == (False, 16, 3000)


def test_an_endpoints_arguments_come_after_the_runtimes_and_win(default_release):
    """KServe appends the InferenceService's args to the ClusterServingRuntime's (MergeRuntimeContainers)."""
    body = yaml.safe_load(EXAMPLE_ENDPOINT.read_text())
    body["spec"]["optimization"] = {"kvCacheDtype": "auto", "cudaGraphs": {"enabled": False}}
    manifest = render_inference_service(Endpoint.from_body(body), OperatorConfig())
    endpoint_args = manifest["spec"]["predictor"]["model"]["args"]
    merged = runtime_parser().parse_args(runtime_argv(default_release) + endpoint_args)
    parsed = contract.RuntimeArgs.from_namespace(merged)
    assert (parsed.kv_cache_dtype, parsed.cuda_graphs) == ("auto", False)
    assert manifest["spec"]["predictor"]["model"]["runtime"] == one(default_release, "ClusterServingRuntime")[
        "metadata"]["name"]


def test_operator_arguments_are_flags_of_whisper_operator_run(release):
    container = operator_container(release)
    entrypoint_args = ["run"]  # operator/Dockerfile: ENTRYPOINT ["whisper-operator", "run"]
    parsed = operator_cli._parser().parse_args(entrypoint_args + container["args"])
    health_port = container["ports"][0]["containerPort"]
    assert parsed.liveness == f"http://0.0.0.0:{health_port}/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert parsed.standalone is False  # peering on: more replicas are safe


def test_operator_watches_the_configured_namespaces(custom_release):
    parsed = operator_cli._parser().parse_args(["run", *operator_container(custom_release)["args"]])
    assert parsed.namespace == NON_DEFAULT["watchNamespaces"]
    assert not parsed.all_namespaces


def test_operator_uses_the_runtime_the_chart_installs(release):
    env = {variable["name"]: variable.get("value") for variable in operator_container(release)["env"]}
    config = OperatorConfig.from_env(env)
    assert config.runtime_name == one(release, "ClusterServingRuntime")["metadata"]["name"]
    assert "POD_NAME" in env  # the peering priority comes from it


def test_peering_object_is_the_one_the_operator_waits_for(default_release, custom_release):
    (cluster_peering,) = select(default_release, "ClusterKopfPeering")
    assert cluster_peering["metadata"]["name"] == operator_cli.PEERING_NAME
    assert select(default_release, "KopfPeering") == []
    namespaced = select(custom_release, "KopfPeering")
    assert {(peering["metadata"]["namespace"], peering["metadata"]["name"]) for peering in namespaced} == {
        (namespace, operator_cli.PEERING_NAME) for namespace in NON_DEFAULT["watchNamespaces"]}
    assert select(custom_release, "ClusterKopfPeering") == []


def test_rbac_grants_exactly_what_the_operator_declares(release):
    rules = [rule for role in select(release, "ClusterRole") + select(release, "Role") for rule in role["rules"]]
    assert permission_triples(rules) == permission_triples(policy_rules(peering=True))
    assert not any("*" in rule[key] for rule in rules for key in ("apiGroups", "resources", "verbs"))


def test_namespaced_permissions_are_bound_only_in_watched_namespaces(custom_release):
    service_account = one(custom_release, "ServiceAccount")["metadata"]
    subject = {"kind": "ServiceAccount", "name": service_account["name"], "namespace": service_account["namespace"]}
    roles = {role["metadata"]["name"]: role for role in select(custom_release, "ClusterRole")}
    bindings = select(custom_release, "RoleBinding") + select(custom_release, "ClusterRoleBinding")
    assert all(binding["subjects"] == [subject] for binding in bindings)
    for binding in select(custom_release, "ClusterRoleBinding"):
        granted = {resource for rule in roles[binding["roleRef"]["name"]]["rules"] for resource in rule["resources"]}
        assert granted <= CLUSTER_SCOPED_RESOURCES
    role_bindings = select(custom_release, "RoleBinding")
    assert sorted(binding["metadata"]["namespace"] for binding in role_bindings) == sorted(
        NON_DEFAULT["watchNamespaces"])
    for binding in role_bindings:
        granted = {resource for rule in roles[binding["roleRef"]["name"]]["rules"] for resource in rule["resources"]}
        assert not granted & CLUSTER_SCOPED_RESOURCES


def test_cluster_wide_operator_binds_every_role_cluster_wide(default_release):
    assert select(default_release, "RoleBinding") == []
    bound = {binding["roleRef"]["name"] for binding in select(default_release, "ClusterRoleBinding")}
    assert bound == {role["metadata"]["name"] for role in select(default_release, "ClusterRole")}


def test_rbac_can_be_left_to_the_cluster_admin(render):
    release = render({"rbac": {"create": False}})
    assert not {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} & {obj["kind"] for obj in release}
