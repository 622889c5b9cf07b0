"""The reconcile loop against an in-memory API server: create, idempotence, drift repair, updates, errors."""

from __future__ import annotations

import copy

import pytest

from operator_testkit import KEY, InMemoryCluster, endpoint
from whisper_operator.errors import ApplyRejected, ClusterUnavailable
from whisper_operator.reconcile import reconcile
from whisper_operator.settings import OperatorConfig

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"
def run(body, cluster, now=NOW):
    return reconcile(body, cluster, OperatorConfig(), now)


def condition(outcome, kind):
    return next(c for c in outcome.status["conditions"] if c["type"] == kind)


def test_first_reconcile_creates_an_owned_inference_service():
    cluster = InMemoryCluster()
    outcome = run(endpoint(), cluster)
    isvc = cluster.inference_services[KEY]
    assert isvc["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "hf://openai/whisper-large-v3-turbo"
    assert [(e.type, e.reason) for e in outcome.events] == [("Normal", "Created")]
    assert condition(outcome, "Progressing")["status"] == "True"
    assert outcome.status["observedGeneration"] == 1


def test_second_reconcile_changes_nothing():
    cluster = InMemoryCluster()
    first = run(endpoint(), cluster)
    second = run(endpoint(status=first.status), cluster, now=LATER)
    assert cluster.applies == 1
    assert second.events == []
    assert second.status == first.status


def test_hand_edit_of_the_inference_service_is_put_back():
    cluster = InMemoryCluster()
    first = run(endpoint(), cluster)
    desired = copy.deepcopy(cluster.inference_services[KEY]["spec"])
    cluster.inference_services[KEY]["spec"]["predictor"]["model"]["args"] = ["--kv_cache_dtype=auto"]
    cluster.inference_services[KEY]["spec"]["predictor"]["affinity"] = {}
    outcome = run(endpoint(status=first.status), cluster, now=LATER)
    assert cluster.inference_services[KEY]["spec"] == desired
    (event,) = outcome.events
    assert (event.type, event.reason) == ("Warning", "DriftRepaired")
    assert "spec.predictor.model.args" in event.message


def test_fields_added_by_others_are_not_drift():
    cluster = InMemoryCluster()
    first = run(endpoint(), cluster)
    live = cluster.inference_services[KEY]
    live["metadata"]["labels"]["team"] = "speech"
    live["spec"]["predictor"]["model"]["resources"]["requests"]["cpu"] = "1"
    run(endpoint(status=first.status), cluster, now=LATER)
    assert cluster.applies == 1


def test_deleted_inference_service_is_recreated():
    cluster = InMemoryCluster()
    first = run(endpoint(), cluster)
    del cluster.inference_services[KEY]
    outcome = run(endpoint(status=first.status), cluster, now=LATER)
    assert KEY in cluster.inference_services
    assert [e.reason for e in outcome.events] == ["Created"]


def test_spec_change_updates_the_inference_service():
    cluster = InMemoryCluster()
    first = run(endpoint(), cluster)
    changed = endpoint({"model": {"preset": "large-v3"}, "serving": {"maxNumSeqs": 8}}, generation=2,
                       status=first.status)
    outcome = run(changed, cluster, now=LATER)
    model = cluster.inference_services[KEY]["spec"]["predictor"]["model"]
    assert model["storageUri"] == "hf://openai/whisper-large-v3"
    assert "--max_num_seqs=8" in model["args"]
    assert [e.reason for e in outcome.events] == ["Updated"]
    assert outcome.status["observedGeneration"] == 2


def test_ready_when_kserve_reports_ready():
    cluster = InMemoryCluster()
    first = run(endpoint(), cluster)
    cluster.kserve_reports(*KEY, url="http://whisper.speech.example.com",
                           conditions=[{"type": "Ready", "status": "True"}],
                           modelStatus={"copies": {"totalCopies": 1}})
    outcome = run(endpoint(status=first.status), cluster, now=LATER)
    assert condition(outcome, "Ready")["status"] == "True"
    assert (outcome.status["url"], outcome.status["readyReplicas"]) == ("http://whisper.speech.example.com", 1)
    assert [(e.type, e.reason) for e in outcome.events] == [("Normal", "Ready")]


def test_invalid_spec_is_degraded_and_creates_nothing():
    cluster = InMemoryCluster()
    bad = endpoint({"model": {"preset": "large-v3"}, "resources": {"minComputeCapability": "8.6"}})
    outcome = run(bad, cluster)
    assert cluster.inference_services == {}
    assert cluster.applies == 0
    degraded = condition(outcome, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
    assert "fp8 KV cache needs minComputeCapability >= 8.9" in degraded["message"]
    assert [(e.type, e.reason) for e in outcome.events] == [("Warning", "InvalidSpec")]
    assert outcome.problem is not None


def test_invalid_spec_keeps_the_last_good_inference_service():
    cluster = InMemoryCluster()
    first = run(endpoint(), cluster)
    before = copy.deepcopy(cluster.inference_services[KEY])
    bad = endpoint({"model": {}}, generation=2, status=first.status)
    outcome = run(bad, cluster, now=LATER)
    assert cluster.inference_services[KEY] == before
    assert condition(outcome, "Degraded")["observedGeneration"] == 2


def test_rejected_apply_is_degraded_with_the_api_message():
    cluster = InMemoryCluster()
    cluster.fail_with = ApplyRejected("admission webhook denied: runtime whisper-vllm not found")
    outcome = run(endpoint(), cluster)
    degraded = condition(outcome, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ApplyRejected")
    assert "runtime whisper-vllm not found" in degraded["message"]


def test_unavailable_cluster_propagates_for_a_retry():
    cluster = InMemoryCluster()
    cluster.fail_with = ClusterUnavailable("503 Service Unavailable")
    with pytest.raises(ClusterUnavailable):
        run(endpoint(), cluster)


def test_status_patch_removes_fields_that_went_away():
    cluster = InMemoryCluster()
    outcome = run(endpoint({"model": {}}), cluster)
    patch = outcome.status_patch({"url": "http://old", "readyReplicas": 1, "conditions": []})
    assert patch["url"] is None
    assert patch["conditions"] == outcome.status["conditions"]


def predictor_deployment(cluster: InMemoryCluster, progressing: str) -> dict:
    """Play KServe and the Deployment controller: the predictor Deployment of the live InferenceService's spec."""
    isvc = cluster.inference_services[KEY]
    template = {"metadata": {"annotations": dict(isvc["metadata"]["annotations"])}}
    return {"metadata": {"name": f"{KEY[1]}-predictor", "generation": 1}, "spec": {"template": template},
            "status": {"observedGeneration": 1, "conditions": [{"type": "Progressing", "reason": progressing}]}}


def test_serving_generation_comes_from_the_predictor_deployment_which_is_read_only_until_settled():
    cluster = InMemoryCluster()
    first = run(endpoint(), cluster)
    cluster.kserve_reports(*KEY, conditions=[{"type": "Ready", "status": "True"}])
    cluster.deployments[(KEY[0], f"{KEY[1]}-predictor")] = predictor_deployment(cluster, "ReplicaSetUpdated")
    rolling = run(endpoint(status=first.status), cluster, now=LATER)
    assert condition(rolling, "Progressing")["reason"] == "RollingOut"
    assert "servingGeneration" not in rolling.status
    cluster.deployments[(KEY[0], f"{KEY[1]}-predictor")] = predictor_deployment(cluster, "NewReplicaSetAvailable")
    settled = run(endpoint(status=rolling.status), cluster, now=LATER)
    assert settled.status["servingGeneration"] == 1
    assert condition(settled, "Progressing")["status"] == "False"
    reads = cluster.deployment_reads
    assert run(endpoint(status=settled.status), cluster, now=LATER).status == settled.status
    assert cluster.deployment_reads == reads
