"""The stand-in for KServe's controller manager in the local cluster (see ``kserve_raw`` for why and what).

A background thread reconciles every InferenceService once a second: applies its predictor Deployment and Service
(server-side apply, so hand edits are put back) and writes its status. Polling rather than watching keeps it
correct across API server restarts with no resume logic.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import threading
from typing import TYPE_CHECKING

from .kserve_raw import (ISVC_LABEL, RuntimeProblem, inference_service_status, predictor_manifests,
                         select_runtime)

if TYPE_CHECKING:
    from .cluster import LocalCluster

FIELD_MANAGER = "kserve-controller-standin"


class KServeStandIn:
    def __init__(self, cluster: LocalCluster, interval_seconds: float = 1.0):
        self.cluster = cluster
        self.interval_seconds = interval_seconds
        self.log_path = cluster.log_dir / "kserve-standin.log"
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kserve-standin", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_seconds):
            try:
                self.reconcile_all()
            except subprocess.CalledProcessError as error:  # the API server may be restarting: retry next tick
                with self.log_path.open("a") as log:
                    log.write(f"{datetime.datetime.now().isoformat()} {error.cmd[3:]}: {error.stderr}\n")

    def _items(self, *args: str) -> list[dict]:
        return json.loads(self.cluster.kubectl("get", *args, "-o", "json").stdout)["items"]

    def reconcile_all(self) -> None:
        isvcs = self._items("inferenceservices.serving.kserve.io", "-A")
        if not isvcs:
            return
        namespaced = self._items("servingruntimes.serving.kserve.io", "-A")
        cluster_wide = self._items("clusterservingruntimes.serving.kserve.io")
        deployments = {(d["metadata"]["namespace"], d["metadata"]["name"]): d
                       for d in self._items("deployments", "-A", "-l", ISVC_LABEL)}
        for isvc in isvcs:
            if "deletionTimestamp" not in isvc["metadata"]:
                self._reconcile(isvc, namespaced, cluster_wide, deployments)

    def _reconcile(self, isvc: dict, namespaced: list[dict], cluster_wide: list[dict],
                   deployments: dict[tuple[str, str], dict]) -> None:
        namespace, name = isvc["metadata"]["namespace"], isvc["metadata"]["name"]
        try:
            self.cluster.apply(*predictor_manifests(isvc, select_runtime(isvc, namespaced, cluster_wide)),
                               field_manager=FIELD_MANAGER)
            problem = None
        except RuntimeProblem as error:
            problem = error
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = inference_service_status(isvc, deployments.get((namespace, f"{name}-predictor")), problem, now)
        if status != isvc.get("status"):
            patch = json.dumps([{"op": "add", "path": "/status", "value": status}])
            self.cluster.kubectl("patch", "inferenceservices.serving.kserve.io", name, "-n", namespace,
                                 "--subresource=status", "--type=json", "-p", patch)
