"""The kopf wiring: which triggers run the reconcile, the error policy, status patches, Events, kopf settings."""

from __future__ import annotations

import copy

import kopf
import pytest

from operator_testkit import KEY, InMemoryCluster, endpoint
from whisper_operator.errors import ClusterUnavailable
from whisper_operator.handlers import RECONCILE_THREADS, RETRY_DELAY, configure, register
from whisper_operator.settings import OperatorConfig


class Harness:
    def __init__(self) -> None:
        self.cluster = InMemoryCluster()
        self.events: list[tuple[str, str, str]] = []
        self.registry = kopf.OperatorRegistry()
        register(self.registry, OperatorConfig(resync_seconds=30), self.cluster, post_event=self.record)

    def record(self, body, *, type, reason, message):
        self.events.append((body["metadata"]["name"], type, reason))

    def handler(self, registry_name, name):
        handlers = getattr(self.registry, registry_name).get_all_handlers()
        return next(handler for handler in handlers if handler.fn.__name__ == name)


@pytest.fixture
def harness():
    return Harness()


def test_one_reconcile_handles_create_update_and_resume(harness):
    changing = harness.registry._changing.get_all_handlers()
    assert {handler.fn.__name__ for handler in changing} == {"reconcile_endpoint"}
    assert {str(handler.reason) for handler in changing if handler.reason} >= {"create", "update"}
    assert any(handler.initial for handler in changing)  # on.resume
    assert all(handler.backoff == RETRY_DELAY for handler in changing)


def test_resync_timer_uses_the_configured_interval(harness):
    timer = harness.handler("_spawning", "resync_endpoint")
    assert timer.interval == 30


def test_reconcile_handler_patches_status_and_posts_events(harness):
    patch = kopf.Patch()
    harness.handler("_changing", "reconcile_endpoint").fn(body=endpoint(), patch=patch)
    assert KEY in harness.cluster.inference_services
    assert {c["type"] for c in patch["status"]["conditions"]} == {"Ready", "Progressing", "Degraded"}
    assert harness.events == [("whisper", "Normal", "Created")]


def test_invalid_spec_is_reported_then_permanent(harness):
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError, match="exactly one of preset or storageUri"):
        harness.handler("_changing", "reconcile_endpoint").fn(body=endpoint({"model": {}}), patch=patch)
    degraded = next(c for c in patch["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"
    assert harness.events == [("whisper", "Warning", "InvalidSpec")]


def test_timer_reports_an_invalid_spec_without_raising(harness):
    patch = kopf.Patch()
    harness.handler("_spawning", "resync_endpoint").fn(body=endpoint({"model": {}}), patch=patch)
    assert patch["status"]["conditions"]


def test_unavailable_cluster_is_a_temporary_error_with_delay(harness):
    harness.cluster.fail_with = ClusterUnavailable("connection refused")
    with pytest.raises(kopf.TemporaryError) as caught:
        harness.handler("_changing", "reconcile_endpoint").fn(body=endpoint(), patch=kopf.Patch())
    assert caught.value.delay == RETRY_DELAY


def test_unchanged_status_is_not_patched(harness):
    first = kopf.Patch()
    harness.handler("_changing", "reconcile_endpoint").fn(body=endpoint(), patch=first)
    again = kopf.Patch()
    harness.handler("_spawning", "resync_endpoint").fn(body=endpoint(status=first["status"]), patch=again)
    assert "status" not in again


def test_inference_service_event_repairs_drift_and_refreshes_the_owner(harness):
    harness.cluster.endpoints[KEY] = endpoint()
    harness.handler("_changing", "reconcile_endpoint").fn(body=endpoint(), patch=kopf.Patch())
    live = harness.cluster.inference_services[KEY]
    live["spec"]["predictor"]["minReplicas"] = 5
    harness.cluster.kserve_reports(*KEY, conditions=[{"type": "Ready", "status": "True"}], url="http://w")
    harness.handler("_watching", "inference_service_changed").fn(type="MODIFIED", body=live, meta=live["metadata"])
    assert harness.cluster.inference_services[KEY]["spec"]["predictor"]["minReplicas"] == 1
    assert harness.cluster.endpoints[KEY]["status"]["url"] == "http://w"
    assert ("whisper", "Warning", "DriftRepaired") in harness.events


def test_inference_service_event_without_owner_does_nothing(harness):
    harness.handler("_watching", "inference_service_changed").fn(
        type="MODIFIED", body={}, meta={"name": "whisper", "namespace": "speech", "labels": {"whisper.kserve-contrib.io/endpoint": "gone"}})
    assert harness.cluster.applies == 0


def test_inference_service_event_takes_the_inference_service_from_the_event_not_the_api_server(harness):
    """KServe sends several events per rollout; each used to cost a GET of the object it carries."""
    harness.cluster.endpoints[KEY] = endpoint()
    harness.handler("_changing", "reconcile_endpoint").fn(body=endpoint(), patch=kopf.Patch())
    harness.cluster.kserve_reports(*KEY, conditions=[{"type": "Ready", "status": "True"}], url="http://w")
    seen = copy.deepcopy(harness.cluster.inference_services[KEY])
    reads, applies = harness.cluster.inference_service_reads, harness.cluster.applies
    harness.handler("_watching", "inference_service_changed").fn(type="MODIFIED", body=seen, meta=seen["metadata"])
    assert (harness.cluster.inference_service_reads, harness.cluster.applies) == (reads, applies)
    assert harness.cluster.endpoints[KEY]["status"]["url"] == "http://w"


def test_deleted_inference_service_event_recreates_it(harness):
    harness.cluster.endpoints[KEY] = endpoint()
    harness.handler("_changing", "reconcile_endpoint").fn(body=endpoint(), patch=kopf.Patch())
    gone = harness.cluster.inference_services.pop(KEY)
    harness.handler("_watching", "inference_service_changed").fn(type="DELETED", body=gone, meta=gone["metadata"])
    assert KEY in harness.cluster.inference_services and harness.cluster.applies == 2


def test_kopf_keeps_its_plumbing_out_of_status():
    settings = kopf.OperatorSettings()
    configure(settings)
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)


def test_handlers_run_in_more_threads_than_kopfs_default():
    """A reconcile mostly waits on the API server: with kopf's 4 threads, 500 endpoints created at 8/s waited
    30 s for their InferenceService (p50; docs/benchmarks.md, "The operator at scale")."""
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.execution.max_workers == RECONCILE_THREADS >= 32
