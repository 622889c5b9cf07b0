"""Our user-facing status (Kubernetes-style conditions) from the InferenceService KServe reports on."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

#: KServe's modelStatus.transitionStatus values that mean "this will not become ready by waiting".
KSERVE_FAILED_TRANSITIONS = ("BlockedByFailedLoad", "InvalidSpec")
#: Standard mode: KServe copies the Deployment's Progressing reason onto PredictorReady; this one says the newest
#: ReplicaSet is fully available, i.e. the old pods are gone.
ROLLED_OUT_DEPLOYMENT_REASON = "NewReplicaSetAvailable"
ROLLING_OUT_MESSAGE = (
    "the new spec is rolling out; the previous one (status.servingGeneration) serves until the new pods are ready"
)
KNATIVE_MODES = ("Knative", "Serverless")


@dataclasses.dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the WhisperEndpoint."""

    type: str  # Normal or Warning
    reason: str
    message: str


def _condition(isvc: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    conditions = isvc.get("status", {}).get("conditions") or []
    return next((condition for condition in conditions if condition.get("type") == kind), {})


def _ready_condition(isvc: Mapping[str, Any]) -> Mapping[str, Any]:
    return _condition(isvc, "Ready")


def _kserve_caught_up(isvc: Mapping[str, Any]) -> bool:
    observed = isvc.get("status", {}).get("observedGeneration")
    return observed is not None and observed == isvc.get("metadata", {}).get("generation", observed)


def rolled_out(isvc: Mapping[str, Any]) -> bool:
    """KServe serves all traffic with the InferenceService's current spec: Standard mode's Deployment finished its
    rolling update; in Knative mode the latest revision is ready and holds 100% (no canary left)."""
    status = isvc.get("status", {})
    if _ready_condition(isvc).get("status") != "True" or not _kserve_caught_up(isvc):
        return False
    if status.get("deploymentMode") in KNATIVE_MODES:
        predictor = (status.get("components") or {}).get("predictor") or {}
        latest = predictor.get("latestReadyRevision")
        return bool(latest) and latest == predictor.get("latestCreatedRevision") == predictor.get(
            "latestRolledoutRevision")
    return _condition(isvc, "PredictorReady").get("reason") == ROLLED_OUT_DEPLOYMENT_REASON


def serving_generation(
    isvc: Optional[Mapping[str, Any]], generation: Optional[int], previous: Mapping[str, Any]
) -> Optional[int]:
    """The newest endpoint generation whose spec serves all traffic: ``generation`` (the one the InferenceService
    was just made to match) once KServe rolled it out, else the one the previous status named; None without an
    InferenceService."""
    if isvc is None:
        return None
    if rolled_out(isvc):
        return generation
    return previous.get("servingGeneration")


def assess(isvc: Optional[Mapping[str, Any]], problem: Optional[Exception] = None) -> list[Condition]:
    """Ready / Progressing / Degraded for a reconcile problem, a missing, or an existing InferenceService."""
    if problem is not None:
        reason = getattr(problem, "reason", type(problem).__name__)
        return [
            Condition("Ready", "False", reason, str(problem)),
            Condition("Progressing", "False", reason, "fix the spec to continue"),
            Condition("Degraded", "True", reason, str(problem)),
        ]
    if isvc is None:
        return [
            Condition("Ready", "False", "InferenceServiceMissing", "the InferenceService does not exist yet"),
            Condition("Progressing", "True", "Creating", "creating the InferenceService"),
            Condition("Degraded", "False", "AsExpected"),
        ]
    ready = _ready_condition(isvc)
    model_status = isvc.get("status", {}).get("modelStatus") or {}
    transition = model_status.get("transitionStatus", "")
    if transition in KSERVE_FAILED_TRANSITIONS:
        failure = model_status.get("lastFailureInfo") or {}
        reason = failure.get("reason") or transition
        message = failure.get("message") or ready.get("message") or f"KServe reports {transition}"
        return [
            Condition("Ready", "False", reason, message),
            Condition("Progressing", "False", reason, "KServe gave up on this revision"),
            Condition("Degraded", "True", reason, message),
        ]
    if ready.get("status") == "True":
        # KServe has not looked at the new spec yet, or its rollout runs: the previous spec's pods still serve
        rolling = not rolled_out(isvc)
        return [
            Condition("Ready", "True", "InferenceServiceReady", "the endpoint serves requests"),
            Condition("Progressing", "True", "RollingOut", ROLLING_OUT_MESSAGE)
            if rolling
            else Condition("Progressing", "False", "Deployed"),
            Condition("Degraded", "False", "AsExpected"),
        ]
    reason = ready.get("reason") or "Deploying"
    message = ready.get("message") or "KServe is rolling out the InferenceService"
    return [
        Condition("Ready", "False", reason, message),
        Condition("Progressing", "True", reason, message),
        Condition("Degraded", "False", "AsExpected"),
    ]


def _as_dicts(
    conditions: Sequence[Condition], previous: Sequence[Mapping[str, Any]], generation: Optional[int], now: str
) -> list[dict[str, Any]]:
    before = {condition.get("type"): condition for condition in previous}
    rendered = []
    for condition in conditions:
        old = before.get(condition.type, {})
        unchanged = old.get("status") == condition.status and old.get("lastTransitionTime")
        rendered.append(
            {
                **dataclasses.asdict(condition),
                "observedGeneration": generation,
                "lastTransitionTime": old["lastTransitionTime"] if unchanged else now,
            }
        )
    return rendered


def render_status(
    isvc: Optional[Mapping[str, Any]],
    *,
    observed_generation: Optional[int],
    previous: Mapping[str, Any],
    now: str,
    model: Optional[str] = None,
    problem: Optional[Exception] = None,
) -> dict[str, Any]:
    """The WhisperEndpoint's whole ``status``; ``lastTransitionTime`` is kept for conditions that did not change."""
    isvc_status = (isvc or {}).get("status", {})
    copies = (isvc_status.get("modelStatus") or {}).get("copies") or {}
    status: dict[str, Any] = {
        "observedGeneration": observed_generation,
        "conditions": _as_dicts(assess(isvc, problem), previous.get("conditions") or [], observed_generation, now),
        "url": isvc_status.get("url"),
        "readyReplicas": copies.get("totalCopies", 0),
        "inferenceService": (isvc or {}).get("metadata", {}).get("name"),
        "model": model or previous.get("model"),
        # a refused spec changed nothing: the InferenceService still serves what it served
        "servingGeneration": previous.get("servingGeneration") if problem else serving_generation(
            isvc, observed_generation, previous),
    }
    return {key: value for key, value in status.items() if value is not None}


def transition_events(previous: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]]) -> list[Event]:
    """Events for what a user should notice: becoming ready, losing readiness, becoming degraded."""
    before = {condition.get("type"): condition for condition in previous}
    events = []
    for condition in current:
        old = before.get(condition["type"], {})
        changed = (old.get("status"), old.get("reason")) != (condition["status"], condition["reason"])
        if not changed:
            continue
        if condition["type"] == "Ready" and condition["status"] == "True":
            events.append(Event("Normal", "Ready", condition["message"]))
        elif condition["type"] == "Degraded" and condition["status"] == "True":
            events.append(Event("Warning", condition["reason"], condition["message"]))
        elif condition["type"] == "Ready" and old.get("status") == "True":
            events.append(Event("Warning", "NotReady", condition["message"]))
    return events


def rollout_events(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[Event]:
    """A Normal event when a changed spec has replaced the one that served (not for the first deployment)."""
    before, now = previous.get("servingGeneration"), current.get("servingGeneration")
    if before is None or now is None or now == before:
        return []
    return [Event("Normal", "RolledOut", f"generation {now} serves all traffic (was generation {before})")]
