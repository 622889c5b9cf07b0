"""Fixtures for end-to-end tests against the real local control plane (``whisper_devkit.cluster``).

``cluster`` (session scope) is a started ``LocalCluster``; the Go-built binaries are built first when missing
(``devkit/build-binaries.sh``; cold that takes a while, then they are cached). What it offers:

- ``cluster.kubeconfig``: admin kubeconfig path (``system:masters``); ``cluster.env``: ``os.environ`` plus
  ``KUBECONFIG`` and the binaries on ``PATH``, for subprocesses such as the operator.
- ``cluster.kubectl(*args, input=None, check=True, kubeconfig=None)`` and ``cluster.helm(*args, check=True)``:
  ``subprocess.CompletedProcess[str]`` with stdout/stderr captured; ``check=False`` to inspect failures.
- ``cluster.apply(*manifests)``: server-side apply of manifest dicts.
- ``cluster.kubeconfig_for_service_account(namespace, name)``: a kubeconfig holding a TokenRequest token of that
  ServiceAccount, to run a program under exactly the RBAC it was granted.
- ``cluster.restart_apiserver()``: stop and start kube-apiserver; returns when it is ready again.
- ``cluster.log_dir``: one log per component (etcd, kube-apiserver, ..., kwok, kserve-controller-manager).
- ``cluster.audit_log``: the API server's audit log of the operator's requests (user ``demo.OPERATOR_USER``).
- Nodes (``whisper_devkit.kwok_nodes``): ``gpu-h100-0`` (9.0), ``gpu-l4-0`` (8.9), ``gpu-a10g-0`` (8.6),
  ``gpu-t4-0`` (7.5), each with GPU Feature Discovery labels, ``nvidia.com/gpu: 1`` and the taint
  ``nvidia.com/gpu=present:NoSchedule``; and ``cpu-node-0`` without taint. kwok makes bound pods Running + Ready.
- KServe: its CRDs, admission webhooks and controller manager in Standard mode (``whisper_devkit.kserve_manager``):
  InferenceServices become ``<name>-predictor`` Deployments/Services with KServe's Ready status and URL
  ``http://<name>-predictor.<namespace>.svc.cluster.local``.

Tests share one cluster: create your own namespace (``unique_namespace``) and clean up what is cluster-scoped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from whisper_devkit import binaries
from whisper_devkit.cluster import LocalCluster
from whisper_devkit.demo import OPERATOR_USER


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    binaries.ensure_built()
    with LocalCluster(work_dir=tmp_path_factory.mktemp("cluster"), audited_users=[OPERATOR_USER]) as running:
        yield running


@pytest.fixture
def unique_namespace(cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting for finalization)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")
