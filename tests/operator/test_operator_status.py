"""Our status from KServe's: conditions Ready / Progressing / Degraded, URL, replicas, transition times."""

from __future__ import annotations

from whisper_operator.errors import InvalidSpec
from whisper_operator.render import render_status
from whisper_operator.render.status import rollout_events, transition_events

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


HASH = "0123456789abcdef"


def isvc(ready: str, *, generation=2, observed=2, reason=None, message=None, model_status=None, url=None,
         spec_hash=HASH):
    condition = {"type": "Ready", "status": ready, **({"reason": reason} if reason else {}),
                 **({"message": message} if message else {})}
    status = {"observedGeneration": observed, "conditions": [condition], "modelStatus": model_status or {},
              "deploymentMode": "Standard"}
    if url:
        status["url"] = url
    annotations = {"whisper.kserve-contrib.io/spec-hash": spec_hash}
    return {"metadata": {"name": "w", "generation": generation, "annotations": annotations}, "status": status}


def deployment(*, spec_hash=HASH, generation=2, observed=2, progressing="NewReplicaSetAvailable"):
    """KServe's predictor Deployment as the Deployment controller reports on it."""
    template = {"metadata": {"annotations": {"whisper.kserve-contrib.io/spec-hash": spec_hash}}}
    status = {"observedGeneration": observed,
              "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                             {"type": "Progressing", "status": "True", "reason": progressing}]}
    return {"metadata": {"name": "w-predictor", "generation": generation}, "spec": {"template": template},
            "status": status}


def conditions(status) -> dict[str, tuple[str, str]]:
    return {condition["type"]: (condition["status"], condition["reason"]) for condition in status["conditions"]}


def status_of(live, previous=None, now=T0, problem=None, rolled=None):
    """Our status for generation 3; ``rolled`` the predictor Deployment (by default one that finished rolling out
    the live InferenceService's spec)."""
    if rolled is None and live is not None:
        rolled = deployment(spec_hash=live["metadata"]["annotations"]["whisper.kserve-contrib.io/spec-hash"])
    return render_status(live, observed_generation=3, previous=previous or {}, now=now, model="large-v3",
                         problem=problem, deployment=rolled or None)


def test_ready_inference_service_makes_a_ready_endpoint():
    live = isvc("True", url="http://w.default.example.com",
                model_status={"transitionStatus": "UpToDate", "copies": {"totalCopies": 2}})
    status = status_of(live)
    assert conditions(status) == {"Ready": ("True", "InferenceServiceReady"), "Progressing": ("False", "Deployed"),
                                  "Degraded": ("False", "AsExpected")}
    assert (status["url"], status["readyReplicas"], status["model"]) == ("http://w.default.example.com", 2, "large-v3")
    assert all(condition["observedGeneration"] == 3 for condition in status["conditions"])
    assert status["observedGeneration"] == 3


def test_first_rollout_names_no_serving_generation_until_the_deployment_finished():
    starting = status_of(isvc("False", reason="PredictorNotReady"),
                         rolled=deployment(observed=1, progressing="ReplicaSetUpdated"))
    assert "servingGeneration" not in starting
    assert "servingGeneration" not in status_of(isvc("True"), rolled={})  # no Deployment to ask
    assert status_of(isvc("True"), previous=starting)["servingGeneration"] == 3


def test_while_a_spec_change_rolls_out_the_previous_generation_serves_and_the_endpoint_stays_ready():
    """maxUnavailable 0: the old pods keep KServe's InferenceService Ready until the new ReplicaSet is available.
    First KServe has not written the new spec into the Deployment, then the Deployment controller has not seen it,
    then the new pods are not all available (Progressing ReplicaSetUpdated), then they are."""
    served = {"servingGeneration": 2}
    live = isvc("True", spec_hash="new")
    stages = [deployment(spec_hash="old"), deployment(spec_hash="new", generation=3, observed=2),
              deployment(spec_hash="new", generation=3, observed=3, progressing="ReplicaSetUpdated"),
              deployment(spec_hash="new", generation=3, observed=3)]
    statuses = [status_of(live, previous=served, rolled=stage) for stage in stages]
    assert [status["servingGeneration"] for status in statuses] == [2, 2, 2, 3]
    just_applied, _, rolling, done = statuses
    assert conditions(just_applied) == conditions(rolling) == {"Ready": ("True", "InferenceServiceReady"), "Progressing": ("True", "RollingOut"),
                                   "Degraded": ("False", "AsExpected")}
    assert conditions(done)["Progressing"] == ("False", "Deployed")
    assert [(event.reason, event.message) for event in rollout_events(rolling, done)] == [
        ("RolledOut", "generation 3 serves all traffic (was generation 2)")]
    assert rollout_events(just_applied, rolling) == [] and rollout_events({}, done) == []


def test_an_autoscaler_moving_kserves_observed_generation_is_no_rollout():
    """KServe reports the Deployment's observedGeneration, which an HPA or KEDA scale-up moves too (measured on
    the e2e cluster: InferenceService generation 1, observedGeneration 2 after the HPA scaled 1 -> 2 replicas)."""
    scaled = status_of(isvc("True", generation=1, observed=2), rolled=deployment(generation=2, observed=2))
    assert conditions(scaled)["Progressing"] == ("False", "Deployed")
    assert scaled["servingGeneration"] == 3


def knative_isvc(created: str, ready: str, rolled_out: str) -> dict:
    live = isvc("True")
    live["status"].update(deploymentMode="Knative", components={"predictor": {
        "latestCreatedRevision": created, "latestReadyRevision": ready, "latestRolledoutRevision": rolled_out}})
    return live


def test_knative_canary_keeps_the_previous_generation_serving_until_the_latest_revision_has_all_traffic():
    served = {"servingGeneration": 2}
    canary = status_of(knative_isvc("w-predictor-00003", "w-predictor-00003", "w-predictor-00002"), previous=served)
    starting = status_of(knative_isvc("w-predictor-00003", "w-predictor-00002", "w-predictor-00002"), previous=served)
    promoted = status_of(knative_isvc("w-predictor-00003", "w-predictor-00003", "w-predictor-00003"), previous=canary)
    assert [status["servingGeneration"] for status in (canary, starting, promoted)] == [2, 2, 3]
    assert conditions(canary)["Progressing"] == ("True", "RollingOut")


def test_refused_spec_or_missing_inference_service_and_the_serving_generation():
    served = {"servingGeneration": 2}
    assert status_of(None, previous=served, problem=InvalidSpec("bad"))["servingGeneration"] == 2
    assert "servingGeneration" not in status_of(None, previous=served)


def test_rolling_out_is_progressing_with_kserves_reason():
    status = status_of(isvc("False", reason="PredictorNotReady", message="pods are starting"))
    assert conditions(status)["Ready"] == ("False", "PredictorNotReady")
    assert conditions(status)["Progressing"] == ("True", "PredictorNotReady")
    assert status["readyReplicas"] == 0


def test_failed_model_load_is_degraded_with_kserves_message():
    failure = {"transitionStatus": "BlockedByFailedLoad",
               "lastFailureInfo": {"reason": "ModelLoadFailed", "message": "no such repo"}}
    status = status_of(isvc("False", model_status=failure))
    assert conditions(status)["Degraded"] == ("True", "ModelLoadFailed")
    assert next(c for c in status["conditions"] if c["type"] == "Degraded")["message"] == "no such repo"


def test_missing_inference_service_is_progressing():
    assert conditions(status_of(None))["Progressing"] == ("True", "Creating")


def test_reconcile_problem_is_degraded_and_not_ready():
    status = status_of(None, problem=InvalidSpec("fp8 KV cache needs ..."))
    assert conditions(status) == {"Ready": ("False", "InvalidSpec"), "Progressing": ("False", "InvalidSpec"),
                                  "Degraded": ("True", "InvalidSpec")}


def test_transition_time_is_kept_while_a_condition_holds():
    first = status_of(isvc("False", reason="PredictorNotReady"), now=T0)
    again = status_of(isvc("False", reason="StillStarting"), previous=first, now=T1)
    ready = status_of(isvc("True"), previous=again, now=T1)
    times = {c["type"]: c["lastTransitionTime"] for c in again["conditions"]}
    assert times == {"Ready": T0, "Progressing": T0, "Degraded": T0}
    times = {c["type"]: c["lastTransitionTime"] for c in ready["conditions"]}
    assert times == {"Ready": T1, "Progressing": T1, "Degraded": T0}


def test_events_on_becoming_ready_degraded_and_losing_readiness():
    starting = status_of(isvc("False", reason="PredictorNotReady"))["conditions"]
    ready = status_of(isvc("True"))["conditions"]
    broken = status_of(None, problem=InvalidSpec("bad"))["conditions"]
    assert [(e.type, e.reason) for e in transition_events(starting, ready)] == [("Normal", "Ready")]
    assert transition_events(ready, ready) == []
    assert [(e.type, e.reason) for e in transition_events(ready, broken)] == [
        ("Warning", "NotReady"), ("Warning", "InvalidSpec")]
