"""Our user-facing status (Kubernetes-style conditions) from the InferenceService KServe reports on."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

from ..resources import SPEC_HASH_ANNOTATION

#: KServe's modelStatus.transitionStatus values that mean "this will not become ready by waiting".
KSERVE_FAILED_TRANSITIONS = ("BlockedByFailedLoad", "InvalidSpec")
#: The Deployment's Progressing reason once its newest ReplicaSet is fully available (the old pods are gone).
ROLLED_OUT_DEPLOYMENT_REASON = "NewReplicaSetAvailable"
KNATIVE_MODES = ("Knative", "Serverless")
ROLLING_OUT_MESSAGE = (
    "the new spec is rolling out; the previous one (status.servingGeneration) serves until the new pods are ready"
)


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


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((condition for condition in conditions if condition.get("type") == kind), {})


def _ready_condition(isvc: Mapping[str, Any]) -> Mapping[str, Any]:
    return _condition(isvc, "Ready")


def _kserve_caught_up(isvc: Mapping[str, Any]) -> bool:
    observed = isvc.get("status", {}).get("observedGeneration")
    return observed is not None and observed == isvc.get("metadata", {}).get("generation", observed)


def recorded_spec_hash(obj: Mapping[str, Any]) -> Optional[str]:
    """The spec hash an object (an InferenceService, a pod template) carries in its annotations, if any."""
    return (obj.get("metadata", {}).get("annotations") or {}).get(SPEC_HASH_ANNOTATION)


def _deployment_rolled_out(deployment: Mapping[str, Any], spec_hash: Optional[str]) -> bool:
    """Only pods of this spec run: KServe wrote it into the pod template (which carries the InferenceService's
    annotations), the Deployment controller saw that, and the newest ReplicaSet is fully available."""
    status = deployment.get("status") or {}
    return (
        recorded_spec_hash(deployment["spec"]["template"]) == spec_hash
        and status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and _condition(deployment, "Progressing").get("reason") == ROLLED_OUT_DEPLOYMENT_REASON
    )


def rolled_out(isvc: Mapping[str, Any], deployment: Optional[Mapping[str, Any]]) -> bool:
    """KServe serves all traffic with the InferenceService's current spec.

    Standard mode asks the predictor Deployment: KServe's own ``observedGeneration`` is the Deployment's, which an
    HPA or KEDA scale-up moves too, so the InferenceService's status cannot say whether KServe has acted on its
    latest spec (measured on the e2e cluster: generation 1, observedGeneration 2 after a scale from 1 to 2).
    Knative mode: the latest revision is ready and holds 100% of the traffic (no canary left).
    """
    if _ready_condition(isvc).get("status") != "True":
        return False
    status = isvc.get("status", {})
    if status.get("deploymentMode") in KNATIVE_MODES:
        predictor = (status.get("components") or {}).get("predictor") or {}
        latest = predictor.get("latestReadyRevision")
        return (
            _kserve_caught_up(isvc)
            and bool(latest)
            and latest == predictor.get("latestCreatedRevision") == predictor.get("latestRolledoutRevision")
        )
    return deployment is not None and _deployment_rolled_out(deployment, recorded_spec_hash(isvc))


def serving_generation(
    isvc: Optional[Mapping[str, Any]],
    deployment: Optional[Mapping[str, Any]],
    generation: Optional[int],
    previous: Mapping[str, Any],
) -> Optional[int]:
    """The newest endpoint generation whose spec serves all traffic: ``generation`` (the one the InferenceService
    was just made to match) once KServe rolled it out, else the one the previous status named; None without an
    InferenceService."""
    if isvc is None:
        return None
    if previous.get("servingGeneration") == generation or rolled_out(isvc, deployment):
        return generation
    return previous.get("servingGeneration")


def assess(
    isvc: Optional[Mapping[str, Any]], problem: Optional[Exception] = None, rolling_out: bool = False
) -> list[Condition]:
    """Ready / Progressing / Degraded for a reconcile problem, a missing, or an existing InferenceService;
    ``rolling_out``: its latest spec does not serve all traffic yet."""
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
        # while a changed spec rolls out (or KServe has not acted on it yet) the previous spec's pods serve
        return [
            Condition("Ready", "True", "InferenceServiceReady", "the endpoint serves requests"),
            Condition("Progressing", "True", "RollingOut", ROLLING_OUT_MESSAGE)
            if rolling_out
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
    deployment: Optional[Mapping[str, Any]] = None,
) -> dict[str, Any]:
    """The WhisperEndpoint's whole ``status``; ``lastTransitionTime`` is kept for conditions that did not change.

    ``deployment``: Standard mode's predictor Deployment, while a generation has not been seen serving yet.
    A refused spec (``problem``) changed nothing: the InferenceService still serves what it served.
    """
    isvc_status = (isvc or {}).get("status", {})
    copies = (isvc_status.get("modelStatus") or {}).get("copies") or {}
    serving = (
        previous.get("servingGeneration")
        if problem
        else serving_generation(isvc, deployment, observed_generation, previous)
    )
    conditions = assess(isvc, problem, rolling_out=serving != observed_generation)
    status: dict[str, Any] = {
        "observedGeneration": observed_generation,
        "conditions": _as_dicts(conditions, previous.get("conditions") or [], observed_generation, now),
        "url": isvc_status.get("url"),
        "readyReplicas": copies.get("totalCopies", 0),
        "inferenceService": (isvc or {}).get("metadata", {}).get("name"),
        "model": model or previous.get("model"),
        "servingGeneration": serving,
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
