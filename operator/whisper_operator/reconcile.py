"""One idempotent, level-triggered reconcile: read, render, apply when drifted, report.

kopf-free so that it runs the same from every trigger (create/update/resume, the resync timer, an event on
the owned InferenceService) and in tests against an in-memory cluster.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Protocol

from .drift import drifted_paths
from .errors import ApplyRejected, InvalidSpec, ReconcileError
from .render import render_inference_service, render_status
from .render.status import Event, recorded_spec_hash, rollout_events, transition_events
from .resources import predictor_deployment_name
from .settings import OperatorConfig
from .spec import Endpoint


class Cluster(Protocol):
    def get_inference_service(self, namespace: str, name: str) -> Optional[dict[str, Any]]: ...

    def apply_inference_service(self, manifest: Mapping[str, Any]) -> dict[str, Any]: ...

    def get_deployment(self, namespace: str, name: str) -> Optional[dict[str, Any]]: ...


class EndpointCluster(Cluster, Protocol):
    """What the handlers also need: reading an owner and patching its status from an InferenceService event."""

    def get_endpoint(self, namespace: str, name: str) -> Optional[dict[str, Any]]: ...

    def patch_endpoint_status(self, namespace: str, name: str, status_patch: Mapping[str, Any]) -> None: ...


class SeenInferenceService:
    """``cluster`` reading one InferenceService as a watch event just delivered it (None: the event was its
    deletion) instead of asking the API server again; every other call goes to ``cluster``."""

    def __init__(self, cluster: Cluster, seen: Mapping[str, Any], deleted: bool) -> None:
        self._cluster = cluster
        self._key = (seen["metadata"]["namespace"], seen["metadata"]["name"])
        self._seen = None if deleted else dict(seen)

    def get_inference_service(self, namespace: str, name: str) -> Optional[dict[str, Any]]:
        if (namespace, name) == self._key:
            return self._seen
        return self._cluster.get_inference_service(namespace, name)

    def apply_inference_service(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return self._cluster.apply_inference_service(manifest)

    def get_deployment(self, namespace: str, name: str) -> Optional[dict[str, Any]]:
        return self._cluster.get_deployment(namespace, name)


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: dict[str, Any]
    events: list[Event]
    #: A reconcile-time error the status already reports (None when all went well).
    problem: Optional[ReconcileError] = None

    def status_patch(self, previous: Mapping[str, Any]) -> dict[str, Any]:
        """A merge patch from ``previous`` to this status: keys that went away are set to None."""
        removed = {key: None for key in previous if key not in self.status}
        return {**removed, **self.status}


def _converge(endpoint: Endpoint, cluster: Cluster, config: OperatorConfig) -> tuple[dict[str, Any], list[Event]]:
    """Make the InferenceService match the desired one; returns the live object and what a user should hear."""
    desired = render_inference_service(endpoint, config)
    live = cluster.get_inference_service(endpoint.namespace, endpoint.name)
    if live is None:
        created = cluster.apply_inference_service(desired)
        return created, [Event("Normal", "Created", f"created InferenceService {endpoint.name}")]
    drifted = drifted_paths(desired, live)
    if not drifted:
        return live, []
    applied = cluster.apply_inference_service(desired)
    if recorded_spec_hash(live) != recorded_spec_hash(desired):
        return applied, [Event("Normal", "Updated", f"updated InferenceService {endpoint.name} to the new spec")]
    changed = ", ".join(drifted)
    message = f"put back hand-edited fields of the InferenceService: {changed}"
    return applied, [Event("Warning", "DriftRepaired", message)]


def _rollout_deployment(endpoint: Endpoint, cluster: Cluster, settled: bool) -> Optional[dict[str, Any]]:
    """Standard mode's predictor Deployment, which says whether the latest spec serves all traffic; read only
    until the endpoint's generation has been seen serving (``settled``: no reads then)."""
    if settled or endpoint.spec.deployment_mode != "Standard":
        return None
    return cluster.get_deployment(endpoint.namespace, predictor_deployment_name(endpoint.name))


def reconcile(body: Mapping[str, Any], cluster: Cluster, config: OperatorConfig, now: str) -> Outcome:
    """Bring one WhisperEndpoint's InferenceService in line and compute its status.

    InvalidSpec (NotAllowed by the endpoint policy among them) and ApplyRejected become a Degraded status
    (nothing is applied for an invalid or refused spec);
    ClusterUnavailable propagates so that the caller retries later.
    """
    previous = body.get("status") or {}
    generation = body.get("metadata", {}).get("generation")
    report = dict(observed_generation=generation, previous=previous, now=now)
    try:
        endpoint = Endpoint.from_body(body)
        if config.policy is not None:
            config.policy.enforce(endpoint.spec)
        live, events = _converge(endpoint, cluster, config)
        deployment = _rollout_deployment(endpoint, cluster, previous.get("servingGeneration") == generation)
    except (InvalidSpec, ApplyRejected) as problem:
        status = render_status(None, problem=problem, **report)
        return Outcome(status, transition_events(previous.get("conditions") or [], status["conditions"]), problem)
    status = render_status(live, model=endpoint.spec.model.display_name, deployment=deployment, **report)
    events += transition_events(previous.get("conditions") or [], status["conditions"])
    return Outcome(status, events + rollout_events(previous, status))
