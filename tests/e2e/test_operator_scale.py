"""The operator-at-scale benchmark (bench/operator_scale.py) on 5 endpoints: its record is complete and sane, and a
restart of the operator with nothing changed writes nothing (about 30 s once the session's cluster is up)."""

from __future__ import annotations

import pytest

from whisper_devkit.demo import OPERATOR_USER
from whisper_devkit.operator_scale import measure, scale_setup, table

pytestmark = pytest.mark.e2e

ENDPOINTS = 5


@pytest.fixture(scope="module")
def record(cluster, tmp_path_factory):
    """One measurement, with a resync interval of 4 s: the timer resync after the restart comes soon."""
    namespace = "scale-smoke"
    cluster.kubectl("create", "namespace", namespace)
    try:
        with scale_setup(cluster, ENDPOINTS, 4.0, tmp_path_factory.mktemp("scale") / "operator.log") as operator:
            yield measure(cluster, operator, OPERATOR_USER, namespace, ENDPOINTS, ready_timeout=120)
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def test_every_endpoint_is_timed_to_its_inference_service_and_to_ready(record):
    create = record["create"]
    to_isvc, to_ready = create["to_inference_service"]["values_s"], create["to_ready"]["values_s"]
    assert record["endpoints"] == len(to_isvc) == len(to_ready) == ENDPOINTS
    assert all(0 < isvc < ready for isvc, ready in zip(to_isvc, to_ready))  # Ready comes from KServe, after it
    for latencies in (create["to_inference_service"], create["to_ready"]):
        assert 0 < latencies["p50_s"] <= latencies["p99_s"] <= latencies["max_s"] == max(latencies["values_s"])
    assert create["all_ready_s"] >= create["to_ready"]["max_s"]


def test_the_operators_requests_memory_and_cpu_are_measured(record):
    create = record["create"]
    requests = create["operator_requests"]["by_request"]
    assert requests["patch inferenceservices"] == ENDPOINTS  # one server-side apply each: no drift loop with KServe
    assert requests["create events"] >= 2 * ENDPOINTS  # Created and Ready for each
    assert create["operator_requests"]["total"] < create["cluster_requests"]["total"]
    assert create["cluster_requests"]["writes"] > create["operator_requests"]["writes"]  # KServe, kube, kwok write too
    for phase in (create, record["resync"]):
        memory = phase["operator_memory_mib"]
        assert 30 < memory["rss"] <= memory["peak"] < 500
        assert phase["operator_cpu_s"] > 0


def test_a_restart_with_nothing_changed_reads_every_endpoint_and_writes_nothing(record):
    resync = record["resync"]
    requests = resync["operator_requests"]
    assert requests["by_request"]["list whisperendpoints"] >= 1
    assert requests["by_request"]["get inferenceservices"] >= 2 * ENDPOINTS  # the resume and a timer run of each
    assert requests["by_request"]["get whisperendpoints"] >= ENDPOINTS  # its InferenceService's event: the owner
    assert requests["endpoint_writes"] == 0, requests["by_request"]
    assert requests["writes"] == requests["peering_writes"]  # only kopf's own presence in its peering object
    assert 0 < resync["resumed_s"] <= resync["timer_resynced_s"] < resync["window_s"]


def test_the_table_shows_every_measure(record):
    rows = table(record).splitlines()
    assert len(rows) == 2 + 12
    assert f"| endpoints created (one client, one request after the other) | {ENDPOINTS} in " in rows[2]
