"""The operator at scale on the local control plane: many WhisperEndpoints, timed from the client's side.

``measure`` creates N endpoints, one request after the other as ``kubectl apply`` of a list does, while two
watches in this process record when each InferenceService first appears and when each endpoint first reports
``Ready=True`` (KServe's real controller makes the predictor Deployment, kwok makes its pod Ready, the operator
copies KServe's Ready onto the endpoint). Times are this process's monotonic clock at send and at arrival,
so they are sub-second, unlike creationTimestamps and managedFields.

The operator's own API requests come from the API server's audit log (``LocalCluster(audited_users=...)``:
every finished request of the operator's ServiceAccount, with verb, resource and user agent); the whole
cluster's from ``apiserver_request_total`` on the API server's /metrics, diffed before and after. Memory and CPU
come from the operator process's /proc. Then the operator restarts with the N endpoints present and everything
it writes during the resync is counted: with nothing changed, it should write nothing.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import kubernetes
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .cluster import LocalCluster
from .demo import EXAMPLE, OperatorProcess, install_chart, uninstall_chart
from .kwok_nodes import GPU_MODELS, GPU_RESOURCE, GPU_TAINT, gpu_feature_discovery_labels, node_manifest
from .processes import log_tail

GROUP, VERSION = "whisper.kserve-contrib.io", "v1alpha1"
ENDPOINTS, ISVCS = "whisperendpoints", "inferenceservices"
KSERVE_GROUP, KSERVE_VERSION = "serving.kserve.io", "v1beta1"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
#: The same in apiserver_request_total, which names a server-side apply APPLY.
METRIC_WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"})
#: kopf's peering object: the operator's own presence record, not the state of any endpoint.
PEERING_RESOURCE = "clusterkopfpeerings"
#: kopf logs every successful run of the reconcile handler and of the resync timer so
#: (register.<locals>.reconcile_endpoint).
RECONCILED = "reconcile_endpoint' succeeded"
RESYNCED = "resync_endpoint' succeeded"
POOL_NODE_PREFIX = "scale-h100-"
PODS_PER_POOL_NODE = 100


# --- pure helpers -----------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 500 values is the 495th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def gpu_pool_nodes(gpus: int) -> list[dict]:
    """kwok H100 nodes (GPU Feature Discovery labels, the GPU taint) with ``gpus`` GPUs between them, at most
    ``PODS_PER_POOL_NODE`` each, with CPU and memory to spare: every endpoint's one-GPU pod finds a place."""
    nodes = []
    for index in range(math.ceil(gpus / PODS_PER_POOL_NODE)):
        count = min(PODS_PER_POOL_NODE, gpus - index * PODS_PER_POOL_NODE)
        gpu = GPU_MODELS["h100"]
        labels = {"node.kubernetes.io/instance-type": gpu.instance_type, **gpu_feature_discovery_labels(gpu, count)}
        resources = {"cpu": "1000", "memory": "8Ti", "pods": str(count + 10), GPU_RESOURCE: str(count)}
        nodes.append(node_manifest(f"{POOL_NODE_PREFIX}{index}", labels, resources, [GPU_TAINT]))
    return nodes


def endpoint_manifest(namespace: str, name: str) -> dict:
    """The repository's example endpoint (large-v3-turbo, every default) under another name."""
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"] = {"name": name, "namespace": namespace}
    return manifest


def is_ready(obj: dict) -> bool:
    return any(condition.get("type") == "Ready" and condition.get("status") == "True"
               for condition in (obj.get("status") or {}).get("conditions") or [])


def request_key(event: dict) -> str:
    """``verb resource[/subresource]`` of one audit event, e.g. ``patch whisperendpoints/status``."""
    ref = event.get("objectRef") or {}
    resource = "/".join(part for part in (ref.get("resource"), ref.get("subresource")) if part)
    return f"{event['verb']} {resource or event.get('requestURI', '?')}"


def _server_seconds(event: dict) -> float:
    received, finished = (datetime.datetime.fromisoformat(event[key].replace("Z", "+00:00"))
                          for key in ("requestReceivedTimestamp", "stageTimestamp"))
    return (finished - received).total_seconds()


def summarize_requests(events: list[dict]) -> dict:
    """Counts of audit events by ``verb resource``, with the writes apart and kopf's peering writes apart, and
    how long the API server took for each kind (p50, p99: admission webhooks included)."""
    by_request = collections.Counter(request_key(event) for event in events)
    durations = collections.defaultdict(list)
    for event in events:
        durations[request_key(event)].append(_server_seconds(event))
    writes = {key: count for key, count in by_request.items() if key.split()[0] in WRITE_VERBS}
    peering = sum(count for key, count in writes.items() if key.split()[1].startswith(PEERING_RESOURCE))
    return {"total": sum(by_request.values()), "writes": sum(writes.values()), "peering_writes": peering,
            "endpoint_writes": sum(writes.values()) - peering,
            "by_user_agent": dict(collections.Counter(event.get("userAgent", "?").split(" ")[0]
                                                      for event in events)),
            "by_request": dict(sorted(by_request.items())),
            "server_p50_p99_s": {key: [round(percentile(values, 0.5), 3), round(percentile(values, 0.99), 3)]
                                 for key, values in sorted(durations.items())}}


def apiserver_requests(metrics_text: str) -> collections.Counter:
    """``apiserver_request_total`` summed by (verb, resource)."""
    totals: collections.Counter = collections.Counter()
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "apiserver_request":
            for sample in family.samples:
                if sample.name == "apiserver_request_total":
                    totals[(sample.labels.get("verb", ""), sample.labels.get("resource", ""))] += sample.value
    return totals


def request_delta(before: collections.Counter, after: collections.Counter) -> dict:
    delta = {key: after[key] - before.get(key, 0) for key in after}
    writes = sum(count for (verb, _), count in delta.items() if verb in METRIC_WRITE_VERBS)
    return {"total": int(sum(delta.values())), "writes": int(writes)}


# --- what is read from the cluster and from /proc ---------------------------------------------------------------


class AuditCursor:
    """Reads the audit log's lines written since the last read."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def read(self, user: str, namespace: str) -> list[dict]:
        """``user``'s requests in ``namespace`` or to no namespace (cluster-scoped objects, lists of all)."""
        with self.path.open("rb") as log:
            log.seek(self.offset)
            chunk = log.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        events = (json.loads(line) for line in complete.splitlines() if line.strip())
        return [event for event in events if event.get("user", {}).get("username") == user
                and (event.get("objectRef") or {}).get("namespace") in (None, namespace)]


class ProcessMeter:
    """CPU seconds and resident memory of one process, from /proc."""

    def __init__(self, pid: int):
        self.pid = pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def memory_mib(self) -> dict[str, float]:
        """``rss``: now; ``peak``: the highest since the process started (VmHWM)."""
        status = dict(line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines()
                      if ":" in line)
        return {key: round(int(status[field].split()[0]) / 1024, 1) for key, field in
                (("rss", "VmRSS"), ("peak", "VmHWM"))}


class FirstSeen(threading.Thread):
    """Watches one namespaced resource and records, per object name, when ``wanted`` first held for it."""

    def __init__(self, kubeconfig: Path, group: str, version: str, plural: str, namespace: str,
                 wanted: Callable[[dict], bool]):
        super().__init__(daemon=True, name=f"watch-{plural}")
        self.api = kubernetes.client.CustomObjectsApi(
            kubernetes.config.new_client_from_config(config_file=str(kubeconfig)))
        self.coordinates = (group, version, namespace, plural)
        self.wanted = wanted
        self.times: dict[str, float] = {}
        self.started = threading.Event()
        self._stop = threading.Event()

    def run(self) -> None:
        listing = self.api.list_namespaced_custom_object(*self.coordinates)
        version = listing["metadata"]["resourceVersion"]
        self._record(listing["items"])
        self.started.set()
        while not self._stop.is_set():
            watch = kubernetes.watch.Watch()
            for event in watch.stream(self.api.list_namespaced_custom_object, *self.coordinates,
                                      resource_version=version, timeout_seconds=5, allow_watch_bookmarks=True):
                version = event["object"]["metadata"]["resourceVersion"]
                if event["type"] in ("ADDED", "MODIFIED"):
                    self._record([event["object"]])

    def _record(self, objects: list[dict]) -> None:
        arrived = time.monotonic()
        for obj in objects:
            name = obj["metadata"]["name"]
            if name not in self.times and self.wanted(obj):
                self.times[name] = arrived

    def stop(self) -> None:
        self._stop.set()


def _wait(condition: Callable[[], bool], timeout: float, what: str, operator: OperatorProcess) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        operator.assert_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def _latencies(sent: dict[str, float], seen: dict[str, float]) -> dict:
    values = [seen[name] - sent[name] for name in sent]
    return {"p50_s": round(percentile(values, 0.50), 3), "p99_s": round(percentile(values, 0.99), 3),
            "max_s": round(max(values), 3), "values_s": [round(value, 3) for value in values]}


# --- the measurement --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def scale_setup(cluster: LocalCluster, endpoints: int, resync_seconds: float,
                log_path: Path) -> Iterator[OperatorProcess]:
    """The chart, a GPU pool for ``endpoints`` one-GPU pods, and the operator as the chart's ServiceAccount;
    all removed afterwards."""
    install_chart(cluster)
    nodes = gpu_pool_nodes(endpoints)
    cluster.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}))
    operator = OperatorProcess(cluster, log_path, resync_seconds=resync_seconds)
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
        cluster.kubectl("delete", "node", *(node["metadata"]["name"] for node in nodes), "--wait=false")
        uninstall_chart(cluster)


def measure(cluster: LocalCluster, operator: OperatorProcess, user: str, namespace: str, endpoints: int,
            ready_timeout: float = 900) -> dict:
    """Create ``endpoints`` WhisperEndpoints in the (new, empty) ``namespace``, wait until all are Ready, then
    restart the operator and watch its resync: the resume of every endpoint and one run of its resync timer.
    ``user`` is the operator's audited user name. Returns the record the benchmark prints and saves."""
    if user not in cluster.audited_users:
        raise ValueError(f"the cluster does not audit {user}: start it with audited_users=[{user!r}]")
    names = [f"endpoint-{index:04d}" for index in range(endpoints)]
    isvcs = FirstSeen(cluster.kubeconfig, KSERVE_GROUP, KSERVE_VERSION, ISVCS, namespace, lambda _: True)
    ready = FirstSeen(cluster.kubeconfig, GROUP, VERSION, ENDPOINTS, namespace, is_ready)
    for watcher in (isvcs, ready):
        watcher.start()
        watcher.started.wait(30)
    client = kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(
        config_file=str(cluster.kubeconfig)))
    meter = ProcessMeter(operator.pid)
    audit = AuditCursor(cluster.audit_log)
    metrics_before = apiserver_requests(cluster.kubectl("get", "--raw", "/metrics").stdout)
    cpu_before = meter.cpu_seconds()

    sent: dict[str, float] = {}
    began = time.monotonic()
    for name in names:
        sent[name] = time.monotonic()
        client.create_namespaced_custom_object(GROUP, VERSION, namespace, ENDPOINTS, endpoint_manifest(namespace, name))
    applied = time.monotonic() - began
    _wait(lambda: len(isvcs.times) == endpoints, ready_timeout, "every InferenceService", operator)
    _wait(lambda: len(ready.times) == endpoints, ready_timeout, "every endpoint Ready", operator)
    all_ready = max(ready.times.values()) - began
    time.sleep(2)  # the status patches and events that follow the last Ready
    create_phase = {
        "apply_s": round(applied, 2),
        "to_inference_service": _latencies(sent, isvcs.times),
        "to_ready": _latencies(sent, ready.times),
        "all_ready_s": round(all_ready, 2),
        "operator_cpu_s": round(meter.cpu_seconds() - cpu_before, 2),
        "operator_memory_mib": meter.memory_mib(),
        "operator_requests": summarize_requests(audit.read(user, namespace)),
        "cluster_requests": request_delta(metrics_before,
                                          apiserver_requests(cluster.kubectl("get", "--raw", "/metrics").stdout)),
    }
    for watcher in (isvcs, ready):
        watcher.stop()

    operator.stop()
    audit = AuditCursor(cluster.audit_log)
    metrics_before = apiserver_requests(cluster.kubectl("get", "--raw", "/metrics").stdout)
    restarted = time.monotonic()
    operator.start()
    meter = ProcessMeter(operator.pid)
    _wait(lambda: operator.log_since_start().count(RECONCILED) >= endpoints, ready_timeout,
          "the resume of every endpoint", operator)
    resumed = time.monotonic() - restarted
    _wait(lambda: operator.log_since_start().count(RESYNCED) >= endpoints, ready_timeout,
          "a timer resync of every endpoint", operator)
    timers = time.monotonic() - restarted
    time.sleep(2)  # anything the last resync would still write
    resync = {
        "resumed_s": round(resumed, 2),
        "timer_resynced_s": round(timers, 2),
        "window_s": round(time.monotonic() - restarted, 2),
        "operator_cpu_s": round(meter.cpu_seconds(), 2),
        "operator_memory_mib": meter.memory_mib(),
        "operator_requests": summarize_requests(audit.read(user, namespace)),
        "cluster_requests": request_delta(metrics_before,
                                          apiserver_requests(cluster.kubectl("get", "--raw", "/metrics").stdout)),
    }
    return {"endpoints": endpoints, "create": create_phase, "resync": resync}


def table(record: dict) -> str:
    """The record as the Markdown table docs/benchmarks.md shows."""
    n = record["endpoints"]
    apply_server = record["create"]["operator_requests"]["server_p50_p99_s"]["patch inferenceservices"]
    create, resync = record["create"], record["resync"]
    to_isvc, to_ready = create["to_inference_service"], create["to_ready"]
    create_requests, resync_requests = create["operator_requests"], resync["operator_requests"]
    rows = [
        ("endpoints created (one client, one request after the other)", f"{n} in {create['apply_s']} s"),
        ("create -> InferenceService p50 / p99 / max", f"{to_isvc['p50_s']} / {to_isvc['p99_s']} / {to_isvc['max_s']} s"),
        ("create -> endpoint Ready p50 / p99 / max", f"{to_ready['p50_s']} / {to_ready['p99_s']} / {to_ready['max_s']} s"),
        ("the operator's apply of an InferenceService in the API server (KServe's webhooks included) p50 / p99",
         f"{apply_server[0]} / {apply_server[1]} s"),
        ("first create -> all Ready", f"{create['all_ready_s']} s"),
        ("operator CPU while creating", f"{create['operator_cpu_s']} s"),
        ("operator RSS after creating (peak)",
         f"{create['operator_memory_mib']['rss']} MiB ({create['operator_memory_mib']['peak']} MiB)"),
        ("operator API requests per endpoint (writes)",
         f"{create_requests['total'] / n:.2f} ({create_requests['writes'] / n:.2f})"),
        ("all clients' API requests per endpoint (writes)",
         f"{create['cluster_requests']['total'] / n:.1f} ({create['cluster_requests']['writes'] / n:.1f})"),
        ("restart: every endpoint resumed / timer-resynced after",
         f"{resync['resumed_s']} s / {resync['timer_resynced_s']} s"),
        (f"restart: operator requests in {resync['window_s']} s (writes to endpoints, ISVCs, events / peering)",
         f"{resync_requests['total']} ({resync_requests['endpoint_writes']} / {resync_requests['peering_writes']})"),
        ("restart: operator CPU / RSS (peak)",
         f"{resync['operator_cpu_s']} s / {resync['operator_memory_mib']['rss']} MiB "
         f"({resync['operator_memory_mib']['peak']} MiB)"),
    ]
    return "\n".join(["| measure | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])


def failure_context(operator: OperatorProcess, cluster: LocalCluster) -> str:
    """What to print when a measurement fails: the operator's and KServe's log tails."""
    return (f"operator:\n{operator.log_tail()}\n\nkserve-controller-manager:\n"
            f"{log_tail(cluster.log_dir / 'kserve-controller-manager.log')}")
