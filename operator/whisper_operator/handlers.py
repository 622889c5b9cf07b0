"""Thin kopf handlers: every trigger runs the same reconcile, then patches status and posts Events.

Error policy, in one place: ClusterUnavailable -> kopf.TemporaryError (retry after RETRY_DELAY seconds);
InvalidSpec / ApplyRejected are already a Degraded status and an Event -> kopf.PermanentError for spec
changes (no retry until the spec changes again), silence for the resync timer.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any, Callable, Mapping, Optional

import kopf

from .errors import ClusterUnavailable
from .reconcile import Cluster, EndpointCluster, Outcome, SeenInferenceService, reconcile
from .resources import ENDPOINT_LABEL, GROUP, INFERENCE_SERVICE, MANAGED_BY, WHISPER_ENDPOINT
from .settings import OperatorConfig

RETRY_DELAY = 15.0
#: Threads running the (synchronous) handlers. A reconcile mostly waits on the API server, so with kopf's default
#: pool a burst of creates queues behind InferenceService events: 500 endpoints created at 8/s waited 30 s
#: (p50) for their InferenceService with 4 threads (docs/benchmarks.md, "The operator at scale").
RECONCILE_THREADS = 32
ENDPOINT = (WHISPER_ENDPOINT.group, WHISPER_ENDPOINT.version, WHISPER_ENDPOINT.plural)
OWNED_INFERENCE_SERVICE = (INFERENCE_SERVICE.group, INFERENCE_SERVICE.version, INFERENCE_SERVICE.plural)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def configure(settings: kopf.OperatorSettings) -> None:
    """Keep kopf's plumbing out of the user-facing status: progress and diff-base go to annotations."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO  # Normal events reach the object, not only Warnings
    settings.execution.max_workers = RECONCILE_THREADS


#: Posts an Event on an object; kopf.event in the operator.
EventPoster = Callable[..., None]


def register(
    registry: kopf.OperatorRegistry,
    config: OperatorConfig,
    cluster: EndpointCluster,
    post_event: EventPoster = kopf.event,
) -> None:
    """Bind the handlers to ``registry`` with this configuration and API layer (no import-time state)."""
    common = dict(registry=registry, backoff=RETRY_DELAY)

    def _reconcile_or_retry(body: Mapping[str, Any], view: Cluster = cluster) -> Outcome:
        try:
            outcome = reconcile(body, view, config, _now())
        except ClusterUnavailable as error:
            raise kopf.TemporaryError(str(error), delay=RETRY_DELAY) from error
        for event in outcome.events:
            post_event(body, type=event.type, reason=event.reason, message=event.message)
        return outcome

    def _publish(patch: kopf.Patch, body: Mapping[str, Any], outcome: Outcome) -> None:
        previous = body.get("status") or {}
        if outcome.status != previous:
            patch.status.update(outcome.status_patch(previous))

    @kopf.on.resume(*ENDPOINT, **common)
    @kopf.on.create(*ENDPOINT, **common)
    @kopf.on.update(*ENDPOINT, **common)
    def reconcile_endpoint(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        outcome = _reconcile_or_retry(body)
        _publish(patch, body, outcome)
        if outcome.problem is not None:
            raise kopf.PermanentError(str(outcome.problem))

    @kopf.timer(*ENDPOINT, interval=config.resync_seconds, idle=config.resync_seconds / 2, **common)
    def resync_endpoint(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        _publish(patch, body, _reconcile_or_retry(body))

    @kopf.on.event(*OWNED_INFERENCE_SERVICE, labels={"app.kubernetes.io/managed-by": MANAGED_BY}, registry=registry)
    def inference_service_changed(type: Optional[str], body: kopf.Body, meta: kopf.Meta, **_: Any) -> None:
        """KServe moved its status, or someone edited or deleted it: reconcile the owner right away, with the
        InferenceService as the event brought it (KServe sends several events per rollout: no GET for each)."""
        owner_name = meta.get("labels", {}).get(ENDPOINT_LABEL)
        owner = cluster.get_endpoint(meta["namespace"], owner_name) if owner_name else None
        if owner is None or owner["metadata"].get("deletionTimestamp"):
            return
        outcome = _reconcile_or_retry(owner, SeenInferenceService(cluster, body, deleted=type == "DELETED"))
        previous = owner.get("status") or {}
        if outcome.status != previous:
            cluster.patch_endpoint_status(meta["namespace"], owner_name, outcome.status_patch(previous))


def build_registry(config: OperatorConfig, cluster: EndpointCluster) -> kopf.OperatorRegistry:
    """Our handlers, and login through the kubernetes client (kubeconfig, or the pod's ServiceAccount): only
    kopf's implicit default registry brings a login handler, a registry of our own has to declare one."""
    registry = kopf.OperatorRegistry()
    register(registry, config, cluster)
    kopf.on.login(registry=registry)(kopf.login_via_client)
    return registry
