"""The operator end to end: WhisperEndpoints applied with kubectl become KServe InferenceServices on the right GPUs.

One Helm release and one operator process (run as the chart's ServiceAccount) serve the whole module; each test
works in its own namespace.
"""

from __future__ import annotations

import collections
import copy
import json
import random
import re
import time
import uuid

import pytest
import yaml

from invalid_specs import CEL, ENDPOINT_POLICY, POLICY, POLICY_DENIED, SCHEMA
from operator_harness import (ADMITTED_GPU_NODES, CHART, EXAMPLE, ISVC, REFUSED_GPU_NODES, RELEASE, WEP, NotYet,
                              OperatorProcess, chart_operator_env, condition, eventually, get_json, get_or_none,
                              install_chart, uninstall_chart)
from whisper_devkit.kwok_nodes import gpu_node
from whisper_operator.render import render_inference_service
from whisper_operator.resources import SPEC_HASH_ANNOTATION
from whisper_operator.settings import OperatorConfig
from whisper_operator.spec import Endpoint, parse_spec

pytestmark = pytest.mark.e2e

EXAMPLE_ENDPOINT = yaml.safe_load(EXAMPLE.read_text())
NAME = EXAMPLE_ENDPOINT["metadata"]["name"]


@pytest.fixture(scope="module")
def operator(cluster, tmp_path_factory):
    """The chart with an endpoint policy (admission policy + the operator's env), and the operator as it configures."""
    install_chart(cluster, "--set-json", f"endpointPolicy={json.dumps(ENDPOINT_POLICY)}")
    process = OperatorProcess(cluster, tmp_path_factory.mktemp("operator") / "operator.log")
    process.start()
    yield process
    process.stop()
    uninstall_chart(cluster)


@pytest.fixture
def namespace(unique_namespace, operator):
    """A test namespace; after the test the operator must still be running by itself (no crash loop)."""
    yield unique_namespace
    operator.assert_alive()


def endpoint(namespace: str, name: str = NAME, **spec: object) -> dict:
    manifest = copy.deepcopy(EXAMPLE_ENDPOINT)
    manifest["metadata"].update(name=name, namespace=namespace)
    manifest["spec"].update(spec)
    return manifest


def kubectl_apply(cluster, manifest: dict, check: bool = True):
    return cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=check)


def predictor_pods(cluster, namespace: str, name: str = NAME) -> list[dict]:
    selector = f"serving.kserve.io/inferenceservice={name}"
    return get_json(cluster, "pods", "-n", namespace, "-l", selector)["items"]


def wait_ready(cluster, namespace: str, name: str = NAME, timeout: int = 120) -> dict:
    cluster.kubectl("wait", "--for=condition=Ready", f"--timeout={timeout}s", f"{WEP}/{name}", "-n", namespace)
    return get_json(cluster, WEP, name, "-n", namespace)


def assert_converged(cluster, namespace: str, name: str) -> dict:
    """The live InferenceService is the one the operator renders from the live endpoint, owned by it, and the
    endpoint's status has observed its latest generation."""
    live_endpoint = get_json(cluster, WEP, name, "-n", namespace)
    isvc = get_or_none(cluster, ISVC, name, "-n", namespace)
    if isvc is None:
        raise NotYet(f"no InferenceService {namespace}/{name} yet")
    return assert_owned_and_current(live_endpoint, isvc)


def assert_owned_and_current(live_endpoint: dict, isvc: dict) -> dict:
    name = live_endpoint["metadata"]["name"]
    desired = render_inference_service(Endpoint.from_body(live_endpoint), OperatorConfig())
    assert isvc["metadata"]["annotations"][SPEC_HASH_ANNOTATION] == \
        desired["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    assert isvc["spec"]["predictor"]["model"]["args"] == desired["spec"]["predictor"]["model"]["args"]
    [owner] = isvc["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "WhisperEndpoint", name, live_endpoint["metadata"]["uid"], True)
    assert live_endpoint.get("status", {}).get("observedGeneration") == live_endpoint["metadata"]["generation"]
    return isvc


def isvc_args(cluster, namespace: str, name: str = NAME) -> list[str]:
    return get_json(cluster, ISVC, name, "-n", namespace)["spec"]["predictor"]["model"]["args"]


def test_example_becomes_a_ready_inference_service_on_ada_or_newer(cluster, namespace):
    cluster.kubectl("apply", "-f", str(EXAMPLE), "-n", namespace)

    isvc = eventually(lambda: assert_converged(cluster, namespace, NAME))
    assert isvc["spec"]["predictor"]["model"]["runtime"] == "whisper-vllm"
    assert "--kv_cache_dtype=fp8" in isvc["spec"]["predictor"]["model"]["args"]
    live = wait_ready(cluster, namespace)

    [pod] = predictor_pods(cluster, namespace)
    assert pod["spec"]["nodeName"] in ADMITTED_GPU_NODES
    assert pod["status"]["phase"] == "Running"
    generation = live["metadata"]["generation"]
    for kind, status in (("Ready", "True"), ("Progressing", "False"), ("Degraded", "False")):
        found = condition(live, kind)
        assert (found["status"], found["observedGeneration"]) == (status, generation), found
        assert found["reason"] and found["lastTransitionTime"]
    isvc_url = get_json(cluster, ISVC, NAME, "-n", namespace)["status"]["url"]
    assert live["status"]["url"] == isvc_url

    table = cluster.kubectl("get", "whisperendpoints", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "MODEL", "READY", "URL", "REPLICAS", "AGE"]
    replicas = str(live["status"]["readyReplicas"])  # KServe's modelStatus.copies.totalCopies, when it reports it
    assert table[1].split()[:5] == [NAME, live["status"]["model"], "True", isvc_url, replicas]
    reasons = cluster.kubectl("get", "events", "-n", namespace, "-o", "jsonpath={.items[*].reason}",
                              f"--field-selector=involvedObject.kind=WhisperEndpoint,involvedObject.name={NAME}")
    assert {"Created", "Ready"} <= set(reasons.stdout.split())


def test_replicas_never_land_below_compute_capability_8_9(cluster, namespace):
    """Three replicas of one GPU each: the H100 and the L4 take one each, the third waits rather than use the
    free A10G (8.6) or T4 (7.5)."""
    kubectl_apply(cluster, endpoint(namespace, autoscaling={"minReplicas": 3, "maxReplicas": 3}))

    def two_running_one_refused() -> tuple[list[dict], dict]:
        """The pods, and the pending one's PodScheduled verdict: that pod can exist before the scheduler tried it."""
        pods = predictor_pods(cluster, namespace)
        phases = sorted(pod["status"].get("phase") for pod in pods)
        if phases != ["Pending", "Running", "Running"]:
            raise NotYet(f"pod phases {phases}")
        [pending] = [pod for pod in pods if pod["status"]["phase"] == "Pending"]
        return pods, condition(pending, "PodScheduled")

    pods, unschedulable = eventually(two_running_one_refused, timeout=90)
    assert {pod["spec"]["nodeName"] for pod in pods if pod["status"]["phase"] == "Running"} == ADMITTED_GPU_NODES
    assert unschedulable["reason"] == "Unschedulable"
    assert "didn't match Pod's node affinity/selector" in unschedulable["message"]
    nodes = {node["metadata"]["name"] for node in get_json(cluster, "nodes")["items"]}
    assert REFUSED_GPU_NODES <= nodes  # they exist and have a free GPU, yet were refused


def test_spec_change_updates_and_hand_edit_is_put_back(cluster, namespace):
    kubectl_apply(cluster, endpoint(namespace))
    eventually(lambda: assert_converged(cluster, namespace, NAME))
    assert {"--max_num_seqs=256", "--max_num_batched_tokens=24000"} <= set(isvc_args(cluster, namespace))

    kubectl_apply(cluster, endpoint(namespace, serving={"maxNumSeqs": 8}))
    eventually(lambda: assert_converged(cluster, namespace, NAME))
    assert "--max_num_seqs=8" in isvc_args(cluster, namespace)
    live = wait_ready(cluster, namespace)
    assert condition(live, "Ready")["observedGeneration"] == live["metadata"]["generation"] == 2

    hand_edit = [{"op": "replace", "path": "/spec/predictor/model/args", "value": ["--engine=transformers"]}]
    cluster.kubectl("patch", ISVC, NAME, "-n", namespace, "--type=json", "-p", json.dumps(hand_edit))
    eventually(lambda: assert_converged(cluster, namespace, NAME), timeout=45)
    assert "--max_num_seqs=8" in isvc_args(cluster, namespace)
    reasons = cluster.kubectl("get", "events", "-n", namespace, "-o", "jsonpath={.items[*].reason}",
                              f"--field-selector=involvedObject.name={NAME},involvedObject.kind=WhisperEndpoint")
    assert {"Updated", "DriftRepaired"} <= set(reasons.stdout.split())


def test_delete_collects_inference_service_deployment_and_pods(cluster, namespace):
    kubectl_apply(cluster, endpoint(namespace))
    wait_ready(cluster, namespace)
    assert predictor_pods(cluster, namespace)

    cluster.kubectl("delete", WEP, NAME, "-n", namespace, "--timeout=60s")
    selector = f"serving.kserve.io/inferenceservice={NAME}"
    cluster.kubectl("wait", "--for=delete", "--timeout=60s", f"{ISVC}/{NAME}", "-n", namespace)
    cluster.kubectl("wait", "--for=delete", "--timeout=60s", "deployments,pods", "-l", selector, "-n", namespace)
    leftovers = cluster.kubectl("get", f"{ISVC},deployments,replicasets,pods", "-n", namespace, "-o", "name")
    assert leftovers.stdout.strip() == ""


@pytest.fixture(scope="module")
def refusal_namespace(cluster, operator):
    """One namespace for every refused apply: nothing may ever appear in it."""
    name = f"e2e-refused-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


def changed_endpoint(namespace: str, change: dict) -> dict:
    """The example endpoint with a case of invalid_specs.py applied (a None spec field is removed)."""
    manifest = endpoint(namespace, change.get("name", NAME))
    for field, value in change.get("spec", {}).items():
        if value is None:
            del manifest["spec"][field]
        else:
            manifest["spec"][field] = value
    return manifest


def assert_refused_and_nothing_created(cluster, namespace: str, manifest: dict, message: str) -> None:
    refused = kubectl_apply(cluster, manifest, check=False)
    assert refused.returncode != 0
    assert message in refused.stderr, refused.stderr
    assert cluster.kubectl("get", f"{WEP},{ISVC}", "-n", namespace, "-o", "name").stdout.strip() == ""


def test_the_api_server_refuses_at_least_30_distinct_invalid_specs():
    """The figure docs/operator.md quotes: every case below is refused by the API server, with its message."""
    cases = [case[0] for case in SCHEMA + CEL + POLICY]
    assert len(set(cases)) == len(cases) == 55


@pytest.mark.parametrize(("change", "message"), [pytest.param(change, message, id=case)
                                                 for case, change, message in SCHEMA + CEL])
def test_invalid_spec_is_refused_by_the_api_server_and_creates_nothing(cluster, refusal_namespace, change, message):
    assert_refused_and_nothing_created(cluster, refusal_namespace, changed_endpoint(refusal_namespace, change),
                                       message)


@pytest.fixture(scope="module")
def operator_policy(cluster, operator):
    """The endpoint policy exactly as the operator reads it from the chart's env."""
    return OperatorConfig.from_env(chart_operator_env(cluster)).policy


@pytest.mark.parametrize("change", [pytest.param(change, id=case) for case, change in POLICY])
def test_endpoint_policy_refuses_at_admission_with_the_operators_message(cluster, refusal_namespace,
                                                                         operator_policy, change):
    manifest = changed_endpoint(refusal_namespace, change)
    [operator_says] = operator_policy.violations(parse_spec(manifest["spec"]))
    assert_refused_and_nothing_created(cluster, refusal_namespace, manifest, POLICY_DENIED + operator_says)


POLICY_BINDING = "validatingadmissionpolicybinding/whisper-operator-endpoint-policy"


def test_endpoint_that_predates_the_admission_policy_is_refused_by_the_operator(cluster, namespace, operator_policy):
    """An endpoint created while the policy was not bound yet: the operator deploys nothing and says why; its own
    writes to the endpoint (status, annotations) still pass the admission policy, which checks only spec changes."""
    binding = get_json(cluster, POLICY_BINDING)
    cluster.kubectl("delete", POLICY_BINDING)
    forbidden = endpoint(namespace, runtimeImage="docker.io/attacker/miner:latest")
    try:
        eventually(lambda: assert_applied(kubectl_apply(cluster, forbidden, check=False)), timeout=30)
    finally:
        metadata = {key: binding["metadata"][key] for key in ("name", "labels", "annotations")}
        cluster.apply({"apiVersion": binding["apiVersion"], "kind": binding["kind"], "metadata": metadata,
                       "spec": binding["spec"]})

    def refused() -> dict:
        found = condition(get_json(cluster, WEP, NAME, "-n", namespace), "Ready")
        if found["reason"] != "NotAllowedByPolicy":
            raise NotYet(f"Ready is {found}")
        return found

    ready = eventually(refused)
    [operator_says] = operator_policy.violations(parse_spec(forbidden["spec"]))
    assert (ready["status"], ready["message"]) == ("False", operator_says)
    reasons = cluster.kubectl("get", "events", "-n", namespace, "-o", "jsonpath={.items[*].reason}",
                              f"--field-selector=involvedObject.kind=WhisperEndpoint,involvedObject.name={NAME}")
    assert "NotAllowedByPolicy" in reasons.stdout.split()
    assert get_or_none(cluster, ISVC, NAME, "-n", namespace) is None
    time.sleep(2)  # a resync later, still nothing
    assert cluster.kubectl("get", f"{ISVC},deployments,pods", "-n", namespace, "-o", "name").stdout.strip() == ""


def assert_applied(done) -> None:
    assert done.returncode == 0, done.stderr


KILLS, ENDPOINTS = 20, 20
POOL_NODE = "gpu-h100-pool"


@pytest.fixture
def gpu_pool(cluster):
    """One more simulated H100 node with two GPUs for each endpoint: all of them can become Ready, also while a
    rolling update surges a second pod."""
    node = gpu_node("h100", count=2 * ENDPOINTS)
    node["metadata"]["name"] = node["metadata"]["labels"]["kubernetes.io/hostname"] = POOL_NODE
    cluster.kubectl("create", "-f", "-", input=json.dumps(node))
    cluster.kubectl("wait", "--for=condition=Ready", "--timeout=30s", f"node/{POOL_NODE}")
    yield POOL_NODE
    cluster.kubectl("delete", "node", POOL_NODE, "--wait=false")


def apply_all(cluster, manifests: list[dict]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))


def test_20_operator_kills_at_random_points_of_reconcile_leave_20_ready_endpoints_without_orphans_or_duplicates(
        cluster, namespace, operator, gpu_pool):
    """SIGKILL the operator 20 times, each right after a random number of its reconciles (or during start-up),
    while 20 endpoints are created, changed and resumed and 2 more are deleted; then every endpoint is Ready with
    exactly one InferenceService, Deployment and pod of its latest spec, and nothing is left of the deleted ones."""
    shuffle = random.Random(20261204)
    names = [f"endpoint-{index:02d}" for index in range(ENDPOINTS)]
    doomed = {5: "doomed-a", 12: "doomed-b"}  # deleted in these rounds
    max_num_seqs = dict.fromkeys(names, 256)
    operator.kill()
    apply_all(cluster, [endpoint(namespace, name) for name in names + list(doomed.values())])
    kill_points = []
    for round_number in range(KILLS):
        operator.start()
        for name in shuffle.sample(names, 3):
            max_num_seqs[name] = shuffle.randint(1, 1024)
        apply_all(cluster, [endpoint(namespace, name, serving={"maxNumSeqs": seqs})
                            for name, seqs in max_num_seqs.items()])
        if round_number in doomed:
            cluster.kubectl("delete", WEP, doomed[round_number], "-n", namespace, "--wait=false")
        kill_points.append(kill_after_handlers(operator, shuffle.randint(0, ENDPOINTS - 1), shuffle))
    operator.start()

    def all_converged() -> None:
        endpoints = {item["metadata"]["name"]: item for item in get_json(cluster, WEP, "-n", namespace)["items"]}
        isvcs = get_json(cluster, ISVC, "-n", namespace)["items"]
        assert sorted(endpoints) == names
        assert sorted(isvc["metadata"]["name"] for isvc in isvcs) == names, "an orphan or a missing one"
        for isvc in isvcs:
            assert_owned_and_current(endpoints[isvc["metadata"]["name"]], isvc)
            assert f"--max_num_seqs={max_num_seqs[isvc['metadata']['name']]}" in isvc["spec"]["predictor"]["model"][
                "args"]

    eventually(all_converged, timeout=120, interval=2)
    cluster.kubectl("wait", "--for=condition=Ready", "--timeout=120s", WEP, "--all", "-n", namespace)
    deployments = get_json(cluster, "deployments", "-n", namespace)["items"]
    assert sorted(d["metadata"]["name"] for d in deployments) == [f"{name}-predictor" for name in names]

    def one_pod_each() -> None:
        pods = get_json(cluster, "pods", "-n", namespace)["items"]
        running = collections.Counter(pod["metadata"]["labels"].get("serving.kserve.io/inferenceservice")
                                      for pod in pods if pod["status"].get("phase") == "Running")
        assert running == dict.fromkeys(names, 1) and len(pods) == ENDPOINTS, running

    eventually(one_pod_each, timeout=60)
    assert sum(0 < handled < ENDPOINTS for handled in kill_points) >= KILLS // 2, kill_points


#: kopf logs the handler as register.<locals>.reconcile_endpoint
SUCCEEDED = re.compile(r"Handler '[^']*reconcile_endpoint' succeeded")


def kill_after_handlers(operator, handlers: int, shuffle: random.Random) -> int:
    """SIGKILL the operator right after its ``handlers``-th reconcile of this run succeeded (the others are in
    flight or queued), or, for 0, at a random moment of its start-up; returns how many had succeeded."""
    if handlers == 0:
        time.sleep(shuffle.uniform(0.2, 1.5))
    else:
        deadline = time.monotonic() + 30
        while len(SUCCEEDED.findall(operator.log_since_start())) < handlers and time.monotonic() < deadline:
            time.sleep(0.05)
    operator.kill()
    return len(SUCCEEDED.findall(operator.log_since_start()))


def test_operator_recovers_from_an_api_server_restart(cluster, namespace, operator):
    kubectl_apply(cluster, endpoint(namespace))
    eventually(lambda: assert_converged(cluster, namespace, NAME))

    cluster.restart_apiserver()
    kubectl_apply(cluster, endpoint(namespace, serving={"maxNumSeqs": 4}))

    eventually(lambda: assert_converged(cluster, namespace, NAME), timeout=120)
    assert "--max_num_seqs=4" in isvc_args(cluster, namespace)
    operator.assert_alive()


#: One private source per scheme KServe's credential builder knows, with a Secret in its format (the S3 key names
#: are those of the inferenceservice-config KServe ships).
PRIVATE_SOURCES = {
    "hf": ("hf://my-org/whisper-private", {"HF_TOKEN": "hf_e2e_secret_token"}, {}),
    "s3": ("s3://models/whisper-private",
           {"AWS_ACCESS_KEY_ID": "AKIAE2EACCESSKEY", "AWS_SECRET_ACCESS_KEY": "e2e-secret-access-key"},
           {"serving.kserve.io/s3-endpoint": "minio.storage:9000"}),
    "gs": ("gs://models/whisper-private", {"gcloud-application-credentials.json": '{"private_key": "e2e-gcs-key"}'},
           {}),
}


def storage_initializer(cluster, namespace: str, name: str) -> tuple[dict, dict]:
    pods = predictor_pods(cluster, namespace, name)
    if not pods:
        raise NotYet(f"no predictor pod for {name} yet")
    [init] = [container for container in pods[0]["spec"].get("initContainers", [])
              if container["name"] == "storage-initializer"]
    return pods[0], init


def test_private_models_give_the_storage_initializer_the_secret_and_nothing_else_holds_it(cluster, namespace):
    """KServe's pod webhook puts the credentials of storageSecretRef on the storage-initializer, the way its
    credential builder reads each scheme; the secret values live in the Secrets only."""
    for scheme, (uri, data, annotations) in PRIVATE_SOURCES.items():
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "stringData": data,
                  "metadata": {"name": f"{scheme}-creds", "namespace": namespace, "annotations": annotations}}
        kubectl_apply(cluster, secret)
        kubectl_apply(cluster, endpoint(namespace, f"private-{scheme}",
                                        model={"storageUri": uri, "storageSecretRef": {"name": f"{scheme}-creds"}}))

    def env_of(scheme: str) -> dict:
        pod, init = storage_initializer(cluster, namespace, f"private-{scheme}")
        return {"pod": pod, "init": init, "env": {variable["name"]: variable for variable in init.get("env", [])}}

    hf = eventually(lambda: env_of("hf"))
    assert hf["env"]["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-creds", "key": "HF_TOKEN"}
    assert hf["init"]["args"][0] == "hf://my-org/whisper-private"
    s3 = eventually(lambda: env_of("s3"))
    access_key = s3["env"]["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]
    assert access_key == {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}
    assert s3["env"]["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3-creds"
    assert s3["env"]["S3_ENDPOINT"]["value"] == "minio.storage:9000"
    gs = eventually(lambda: env_of("gs"))
    assert gs["env"]["GOOGLE_APPLICATION_CREDENTIALS"]["value"] == "/var/secrets/gcloud-application-credentials.json"
    volumes = {volume["name"]: volume for volume in gs["pod"]["spec"]["volumes"]}
    assert volumes["user-gcp-sa"]["secret"]["secretName"] == "gs-creds"

    everything = cluster.kubectl("get", "all,whisperendpoints,inferenceservices,serviceaccounts,configmaps,events",
                                 "-n", namespace, "-o", "json").stdout
    for secret_value in ("hf_e2e_secret_token", "AKIAE2EACCESSKEY", "e2e-secret-access-key", "e2e-gcs-key"):
        assert secret_value not in everything


def test_api_key_reaches_the_runtime_as_a_file_from_the_secret_and_nothing_else_holds_it(cluster, namespace):
    """KServe's real controller mounts the Secret's key where --api_key_file points; the key's value lives in the
    Secret only; the chart's NetworkPolicy, accepted by the API server, selects the pod KServe made."""
    key = "sk-e2e-api-key-5f0c7b1e9d2a"
    kubectl_apply(cluster, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "stringData": {"token": key},
                            "metadata": {"name": "api-key", "namespace": namespace}})
    kubectl_apply(cluster, endpoint(namespace, "keyed", auth={"apiKeySecretRef": {"name": "api-key"}}))

    def runtime_pod() -> dict:
        pods = predictor_pods(cluster, namespace, "keyed")
        if not pods:
            raise NotYet("no predictor pod for keyed yet")
        return pods[0]

    pod = eventually(runtime_pod)
    [container] = [container for container in pod["spec"]["containers"] if container["name"] == "kserve-container"]
    assert "--api_key_file=/etc/whisper/api-key/api-key" in container["args"]
    assert {"name": "whisper-api-key", "mountPath": "/etc/whisper/api-key", "readOnly": True} in container["volumeMounts"]
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    assert volumes["whisper-api-key"]["secret"]["secretName"] == "api-key"
    assert volumes["whisper-api-key"]["secret"]["items"] == [{"key": "token", "path": "api-key"}]
    everything = cluster.kubectl("get", "all,whisperendpoints,inferenceservices,configmaps,events",
                                 "-n", namespace, "-o", "json").stdout
    assert key not in everything

    # The chart's NetworkPolicy for this namespace: the API server takes it, and its selector finds this pod.
    rendered = cluster.helm("template", RELEASE, str(CHART), "--show-only", "templates/networkpolicy.yaml",
                            "--set", "networkPolicy.enabled=true", "--set", f"networkPolicy.namespaces={{{namespace}}}")
    [policy] = [document for document in yaml.safe_load_all(rendered.stdout) if document]
    kubectl_apply(cluster, policy)
    selector = ",".join(f"{label}={value}" for label, value in policy["spec"]["podSelector"]["matchLabels"].items())
    selected = get_json(cluster, "pods", "-n", namespace, "-l", selector)["items"]
    assert [each["metadata"]["name"] for each in selected] == [pod["metadata"]["name"]]


def test_queue_depth_autoscaling_becomes_kserves_keda_scaled_object(cluster, namespace):
    """KServe's real controller turns the rendered autoscalerClass keda + External metric into a ScaledObject on
    the predictor Deployment, scaling on the runtime's queue depth (KEDA's CRD from KServe's KEDA module)."""
    scaling = {"minReplicas": 1, "maxReplicas": 4,
               "queueDepth": {"target": 24, "prometheusUrl": "http://prometheus.monitoring:9090"}}
    kubectl_apply(cluster, endpoint(namespace, "queued", autoscaling=scaling))

    def scaled_object() -> dict:
        found = get_or_none(cluster, "scaledobjects.keda.sh", "queued-predictor", "-n", namespace)
        if found is None:
            raise NotYet("no ScaledObject yet")
        return found

    spec = eventually(scaled_object)["spec"]
    assert spec["scaleTargetRef"]["name"] == "queued-predictor"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 4)
    [trigger] = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"] == {
        "serverAddress": "http://prometheus.monitoring:9090", "threshold": "24",
        "query": f'sum(whisper_queue_depth{{namespace="{namespace}",pod=~"queued-predictor-.*"}})'}
    assert get_or_none(cluster, "hpa", "queued-predictor", "-n", namespace) is None  # KEDA's, not KServe's HPA


@pytest.fixture
def cache_claim(cluster, namespace):
    """A claim bound to a hostPath volume made for it, so that the scheduler places the predictor pods (kwok then
    runs them); the volume is cluster-scoped and goes afterwards."""
    name, volume = "whisper-cache", f"whisper-cache-{namespace}"
    kubectl_apply(cluster, {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume}, "spec": {
        "capacity": {"storage": "50Gi"}, "accessModes": ["ReadWriteMany"], "storageClassName": "",
        "hostPath": {"path": f"/srv/{volume}"}, "claimRef": {"namespace": namespace, "name": name}}})
    kubectl_apply(cluster, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": name, "namespace": namespace}, "spec": {
                                "accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": volume,
                                "resources": {"requests": {"storage": "50Gi"}}}})
    yield name
    cluster.kubectl("delete", "pv", volume, "--wait=false")


def kserve_container(deployment: dict) -> dict:
    [container] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "kserve-container"]
    return container


def test_warm_replicas_and_rollouts_through_kserves_controller(cluster, namespace, cache_claim, gpu_pool):
    """KServe's real controller puts the cache claim, its mount and VLLM_CACHE_ROOT into the predictor Deployment
    with a rolling update that keeps serving pods until their successors are ready (the runtime's readiness route),
    and its pod webhook mounts the model from the claim (no storage-initializer download). Two replicas: KServe's
    HPA scales the Deployment from 1 to 2, which moves KServe's observedGeneration past the InferenceService's
    generation and must not read as a rollout. A spec change (with maxSurge 2) then rolls out as a new ReplicaSet
    while the endpoint stays Ready with both pods' worth available, KServe carries the new strategy into the
    Deployment, and status.servingGeneration moves from 1 to 2."""
    cache = {"persistentVolumeClaim": cache_claim, "modelPath": "models/whisper-large-v3-turbo"}
    replicas = {"minReplicas": 2, "maxReplicas": 2}
    kubectl_apply(cluster, endpoint(namespace, "warm", cache=cache, autoscaling=replicas))

    def deployment() -> dict:
        found = get_or_none(cluster, "deployment", "warm-predictor", "-n", namespace)
        if found is None:
            raise NotYet("no predictor Deployment yet")
        return found

    first = eventually(deployment)
    assert first["spec"]["strategy"] == {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    pod_spec = first["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod_spec["volumes"]}
    assert volumes["whisper-cache"]["persistentVolumeClaim"] == {"claimName": cache_claim}
    assert pod_spec["securityContext"]["fsGroup"] == 1000
    container = kserve_container(first)
    assert {"name": "whisper-cache", "mountPath": "/var/cache/whisper"} in container["volumeMounts"]
    assert {"name": "VLLM_CACHE_ROOT", "value": "/var/cache/whisper/vllm"} in container["env"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"  # ready = warmed-up engine

    def settled() -> dict:
        current = get_json(cluster, WEP, "warm", "-n", namespace)
        if condition(current, "Progressing")["status"] != "False" or current["status"]["readyReplicas"] != 2:
            raise NotYet(f"status {current['status']}")
        return current

    live = eventually(settled, timeout=90)
    assert live["status"]["servingGeneration"] == live["metadata"]["generation"] == 1
    isvc = get_json(cluster, ISVC, "warm", "-n", namespace)
    assert isvc["status"]["observedGeneration"] > isvc["metadata"]["generation"]  # the HPA's scale-up
    pod = predictor_pods(cluster, namespace, "warm")[0]
    assert not [c for c in pod["spec"].get("initContainers", []) if c["name"] == "storage-initializer"]
    claims = {volume["name"]: volume["persistentVolumeClaim"]["claimName"]
              for volume in pod["spec"]["volumes"] if "persistentVolumeClaim" in volume}
    assert set(claims.values()) == {cache_claim}
    model_mount = next(mount for mount in [c for c in pod["spec"]["containers"] if c["name"] == "kserve-container"][0][
        "volumeMounts"] if mount["mountPath"] == "/mnt/models")
    assert (claims[model_mount["name"]], model_mount["subPath"]) == (cache_claim, cache["modelPath"])

    kubectl_apply(cluster, endpoint(namespace, "warm", cache=cache, autoscaling=replicas, serving={"maxNumSeqs": 8},
                                    rollout={"maxSurge": 2}))
    samples = []

    def rolled_out() -> dict:
        current = get_json(cluster, WEP, "warm", "-n", namespace)
        available = deployment()["status"].get("availableReplicas", 0)
        samples.append((condition(current, "Ready")["status"], available))
        if current["status"].get("servingGeneration") != 2:
            raise NotYet(f"servingGeneration {current['status'].get('servingGeneration')}")
        return current

    current = eventually(rolled_out, timeout=90, interval=0.2)
    assert all(ready == "True" and available >= 2 for ready, available in samples), samples
    assert condition(current, "Progressing")["status"] == "False"
    replica_sets = get_json(cluster, "replicasets", "-n", namespace, "-l",
                            "serving.kserve.io/inferenceservice=warm")["items"]
    assert sorted(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in replica_sets) == [
        "1", "2"]
    rolled = deployment()
    assert "--max_num_seqs=8" in kserve_container(rolled)["args"]
    assert rolled["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 2, "maxUnavailable": 0}
    reasons = cluster.kubectl("get", "events", "-n", namespace, "-o", "jsonpath={.items[*].reason}",
                              "--field-selector=involvedObject.kind=WhisperEndpoint,involvedObject.name=warm")
    assert "RolledOut" in reasons.stdout.split()
