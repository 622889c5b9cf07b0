"""`helm template` with default and non-default values renders the objects cluster admins expect."""

import pytest

from chart_render import NAMESPACE, NON_DEFAULT, HelmFailed, one, select
from k8s_types import MODELS, type_problems
from pod_security import restricted_violations
from whisper_operator.policy import EndpointPolicy

CLUSTER_SCOPED = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ClusterServingRuntime",
                  "ClusterKopfPeering", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
#: Kinds with no class in the Kubernetes or KServe Python clients to check them against.
UNTYPED_KINDS = {"ServiceMonitor", "PrometheusRule", "ClusterKopfPeering", "KopfPeering"}


def operator_pod(release: list[dict]) -> dict:
    return one(release, "Deployment")["spec"]["template"]["spec"]


def runtime_pod(release: list[dict]) -> dict:
    """The parts of a pod spec KServe takes from the ClusterServingRuntime."""
    spec = one(release, "ClusterServingRuntime")["spec"]
    return {key: spec[key] for key in ("containers", "volumes", "hostIPC") if key in spec}


def test_default_release_has_the_expected_objects(default_release):
    kinds = sorted({obj["kind"] for obj in default_release})
    assert kinds == ["ClusterKopfPeering", "ClusterRole", "ClusterRoleBinding", "ClusterServingRuntime",
                     "CustomResourceDefinition", "Deployment", "ServiceAccount"]
    assert select(default_release, "ServiceMonitor") == []


def test_objects_match_the_kubernetes_and_kserve_types(release):
    checked = [obj for obj in release if (obj["apiVersion"], obj["kind"]) in MODELS]
    assert len(checked) == len([obj for obj in release if obj["kind"] not in UNTYPED_KINDS])
    assert [problem for obj in checked for problem in type_problems(obj)] == []


def test_namespaced_objects_live_in_the_release_namespace(release):
    namespaces = {obj["metadata"].get("namespace") for obj in release if obj["kind"] not in CLUSTER_SCOPED}
    assert namespaces <= {NAMESPACE, *NON_DEFAULT["watchNamespaces"]}
    assert all("namespace" not in obj["metadata"] for obj in release if obj["kind"] in CLUSTER_SCOPED)


def test_operator_pod_meets_the_restricted_pod_security_standard(release):
    pod = operator_pod(release)
    assert restricted_violations(pod) == []
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["automountServiceAccountToken"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_runtime_pod_meets_the_restricted_pod_security_standard(release):
    pod = runtime_pod(release)
    assert restricted_violations(pod) == []
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert "emptyDir" in volumes[mounts["/tmp"]]
    env = {variable["name"]: variable["value"] for variable in container["env"] if "value" in variable}
    assert env["HOME"].startswith("/tmp") and env["TORCHINDUCTOR_CACHE_DIR"].startswith("/tmp")


def test_default_operator_deployment(default_release):
    deployment = one(default_release, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/whisper-kserve/whisper-operator:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert "--all-namespaces" in container["args"]
    assert "--log-level=info" in container["args"]
    assert pod["serviceAccountName"] == one(default_release, "ServiceAccount")["metadata"]["name"]
    assert "imagePullSecrets" not in pod
    assert not {"nodeSelector", "tolerations", "affinity"} & set(pod)


def test_custom_operator_deployment(custom_release):
    deployment = one(custom_release, "Deployment")
    assert deployment["metadata"]["name"] == "stt-operator"
    assert deployment["spec"]["replicas"] == 3
    pod_template = deployment["spec"]["template"]
    pod = pod_template["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/ml/whisper-operator:9.9.9"
    assert container["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "operator-regcred"}]
    assert pod["serviceAccountName"] == "stt-operator-sa"
    assert one(custom_release, "ServiceAccount")["metadata"]["annotations"] == {"example.com/role": "stt"}
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert pod[key] == NON_DEFAULT[key]
    assert container["resources"] == NON_DEFAULT["resources"]
    assert pod_template["metadata"]["annotations"] == NON_DEFAULT["podAnnotations"]
    assert pod_template["metadata"]["labels"]["team"] == "speech"
    assert "--all-namespaces" not in container["args"]
    assert {"--namespace=speech", "--namespace=speech-staging", "--log-level=debug"} <= set(container["args"])
    assert container["ports"][0]["containerPort"] == 9090


def test_default_cluster_serving_runtime(default_release):
    runtime = one(default_release, "ClusterServingRuntime")
    spec = runtime["spec"]
    assert runtime["metadata"]["name"] == "whisper-vllm"
    assert spec["supportedModelFormats"] == [{"name": "whisper", "version": "1", "autoSelect": True, "priority": 1}]
    assert spec["protocolVersions"] == ["v2"]
    assert spec["multiModel"] is False
    (container,) = spec["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == "ghcr.io/whisper-kserve/whisper-runtime:0.1.0"
    assert container["command"] == ["whisper-runtime"]
    assert container["args"][:4] == ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080",
                                     "--grpc_port=8081"]
    assert {"--kv_cache_dtype=fp8", "--compilation_level=3", "--cuda_graphs"} <= set(container["args"])
    assert container["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert "imagePullSecrets" not in spec


def test_custom_cluster_serving_runtime(custom_release):
    runtime = one(custom_release, "ClusterServingRuntime")
    spec = runtime["spec"]
    (container,) = spec["containers"]
    assert runtime["metadata"]["name"] == "whisper-vllm-custom"
    assert container["image"] == "registry.example.com/ml/whisper-runtime:9.9.9-cu13"
    assert container["imagePullPolicy"] == "Always"
    assert spec["imagePullSecrets"] == [{"name": "runtime-regcred"}]
    assert container["args"][4:] == NON_DEFAULT["runtime"]["args"]
    assert {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"} in container["env"]
    assert [port["name"] for port in container["ports"]] == ["http1", "h2c"]
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] == 600


def test_runtime_can_be_left_out(render):
    release = render({"runtime": {"enabled": False}})
    assert select(release, "ClusterServingRuntime") == []
    assert select(release, "Deployment") != []


def test_service_monitor_scrapes_the_runtime_services(custom_release):
    monitor = one(custom_release, "ServiceMonitor")
    runtime = one(custom_release, "ClusterServingRuntime")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= runtime["spec"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["speech", "speech-staging"]}
    assert monitor["spec"]["endpoints"] == [{"port": "http1", "path": "/metrics", "interval": "15s"}]


def test_service_monitor_watches_every_namespace_by_default(render):
    monitor = one(render({"serviceMonitor": {"enabled": True}}), "ServiceMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"any": True}


def test_network_policy_admits_only_the_listed_peers_to_the_runtime_pods(custom_release):
    runtime = one(custom_release, "ClusterServingRuntime")
    policies = select(custom_release, "NetworkPolicy")
    assert [policy["metadata"]["namespace"] for policy in policies] == NON_DEFAULT["watchNamespaces"]
    for policy in policies:
        spec = policy["spec"]
        assert spec["podSelector"]["matchLabels"].items() <= runtime["spec"]["labels"].items()
        assert spec["policyTypes"] == ["Ingress"]
        assert spec["ingress"] == [{"from": NON_DEFAULT["networkPolicy"]["from"], "ports": NON_DEFAULT["networkPolicy"]["ports"]}]


def test_network_policy_defaults_to_the_endpoints_own_namespace(default_release, render):
    assert select(default_release, "NetworkPolicy") == []
    (policy,) = select(render({"networkPolicy": {"enabled": True, "namespaces": ["speech"]}}), "NetworkPolicy")
    assert policy["metadata"]["namespace"] == "speech"
    assert policy["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]


def test_network_policy_needs_namespaces(render):
    with pytest.raises(HelmFailed, match="networkPolicy.namespaces"):
        render({"networkPolicy": {"enabled": True}})


def test_endpoint_policy_is_off_by_default(default_release):
    assert select(default_release, "ValidatingAdmissionPolicy") == []
    (container,) = operator_pod(default_release)["containers"]
    assert "WHISPER_ENDPOINT_POLICY" not in {variable["name"] for variable in container["env"]}


def test_endpoint_policy_reaches_the_operator_and_the_api_server(custom_release):
    (container,) = operator_pod(custom_release)["containers"]
    [text] = [variable["value"] for variable in container["env"] if variable["name"] == "WHISPER_ENDPOINT_POLICY"]
    policy = EndpointPolicy.from_json(text)
    wanted = NON_DEFAULT["endpointPolicy"]
    assert list(policy.runtime_images) == wanted["runtimeImages"] and list(policy.env_names) == wanted["envNames"]
    assert [pattern.model_dump(exclude_none=True) for pattern in policy.tolerations] == wanted["tolerations"]
    admission = one(custom_release, "ValidatingAdmissionPolicy")
    binding = one(custom_release, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {"policyName": admission["metadata"]["name"], "validationActions": ["Deny"]}
    assert admission["spec"]["matchConstraints"]["resourceRules"][0]["resources"] == ["whisperendpoints"]


def test_endpoint_policy_can_leave_admission_to_the_operator(render):
    release = render({"endpointPolicy": {"enabled": True, "admission": False}})
    assert select(release, "ValidatingAdmissionPolicy") == []
    (container,) = operator_pod(release)["containers"]
    assert {"name": "WHISPER_ENDPOINT_POLICY", "value": '{"envNames":[],"runtimeImages":[],"tolerations":[]}'} \
        in container["env"]
