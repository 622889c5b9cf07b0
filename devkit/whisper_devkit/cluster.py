"""A real, local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and
KServe's controller manager.

No containers: the Go-built binaries of ``binaries`` run as child processes on loopback ports, with real TLS,
RBAC + Node authorization and ServiceAccount token issuance. kwok plays the kubelets of the simulated nodes of
``kwok_nodes`` (GPU nodes with GPU Feature Discovery labels and the GPU taint, and one plain CPU node). KServe runs
in Standard (plain Deployment) mode with its admission webhooks (``kserve_manager``).

    with LocalCluster() as cluster:
        cluster.kubectl("get", "nodes")
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import yaml

from . import binaries, kserve_manager, kwok_nodes
from .pki import API_SERVER_NAMES, CertificateAuthority, KeyPair, write_service_account_keys
from .processes import ClusterStartError, ManagedProcess, wait_until

LOOPBACK = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
START_TIMEOUT_SECONDS = 120

__all__ = ["ClusterStartError", "CommandError", "LocalCluster", "audit_policy", "free_port", "kubeconfig_document"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def kubeconfig_document(server: str, ca_cert: Path, user_name: str, user: dict[str, str]) -> dict:
    """A one-context kubeconfig; ``user`` holds either client-certificate/client-key paths or a token."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": str(ca_cert)}}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": user_name, "context": {"cluster": "local", "user": user_name}}],
        "current-context": user_name,
    }


def audit_policy(users: Sequence[str]) -> dict:
    """Metadata of the finished requests of ``users``, nothing of anyone else (an audit policy is first-match)."""
    return {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived", "ResponseStarted"],
            "rules": [{"level": "Metadata", "users": list(users)}, {"level": "None"}]}


class CommandError(subprocess.CalledProcessError):
    """A kubectl/helm call failed; unlike its base class, the message includes what the tool printed."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}{self.stdout}"


def _run(argv: list[str], check: bool, **options: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, **options)
    if check and result.returncode != 0:
        raise CommandError(result.returncode, argv, result.stdout, result.stderr)
    return result


def _certificate_user(pair: KeyPair) -> dict[str, str]:
    return {"client-certificate": str(pair.cert), "client-key": str(pair.key)}


class LocalCluster:
    """Context manager owning the control plane's processes, PKI, kubeconfigs and logs under ``work_dir``."""

    def __init__(self, work_dir: Path | None = None, nodes: Sequence[dict] | None = None, kserve: bool = True,
                 audited_users: Sequence[str] = ()):
        """``nodes``: Node manifests for kwok (default: ``kwok_nodes.all_nodes()``); ``kserve``: install KServe
        and run its controller manager; ``audited_users``: the API server writes one JSON line per finished
        request of these users to ``audit_log`` (metadata only: user, user agent, verb, object, code, times)."""
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="whisper-cluster-"))
        self.nodes = list(kwok_nodes.all_nodes() if nodes is None else nodes)
        self.bin_dir = binaries.bin_dir()
        self.pki_dir = self.work_dir / "pki"
        self.log_dir = self.work_dir / "logs"
        self.kubeconfig = self.work_dir / "admin.kubeconfig"
        self.apiserver_port = free_port()
        self.server = f"https://{LOOPBACK}:{self.apiserver_port}"
        self._processes: dict[str, ManagedProcess] = {}
        self.kserve = kserve
        self.audited_users = list(audited_users)
        self.audit_log = self.log_dir / "audit.jsonl"

    # --- public helpers -------------------------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """Environment for child programs (an operator, kubectl, helm) pointed at this cluster as admin."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig),
                "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl (as admin unless ``kubeconfig`` is given); output is captured as text."""
        argv = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        return _run(argv, check, input=input)

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the built helm as admin, with its cache and config kept inside the work dir."""
        helm_home = self.work_dir / "helm"
        env = {**self.env, "HELM_CACHE_HOME": str(helm_home / "cache"),
               "HELM_CONFIG_HOME": str(helm_home / "config"), "HELM_DATA_HOME": str(helm_home / "data")}
        argv = [str(self.bin_dir / "helm"), "--kubeconfig", str(self.kubeconfig), *args]
        return _run(argv, check, env=env)

    def apply(self, *manifests: dict, field_manager: str = "whisper-devkit") -> None:
        """Server-side apply of manifest dicts as admin (conflicts forced: the caller owns these fields)."""
        document = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(manifests)})
        self.kubectl("apply", "--server-side", "--force-conflicts", f"--field-manager={field_manager}", "-f", "-",
                     input=document)

    def kubeconfig_for_service_account(self, namespace: str, name: str, duration: str = "24h") -> Path:
        """A kubeconfig authenticating as ServiceAccount ``namespace/name`` with a TokenRequest-issued token,
        so a program run with it gets exactly the RBAC that account was granted."""
        token = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}").stdout.strip()
        path = self.work_dir / f"sa-{namespace}-{name}.kubeconfig"
        user_name = f"system:serviceaccount:{namespace}:{name}"
        self._write_kubeconfig(path, user_name, {"token": token})
        return path

    def restart_apiserver(self) -> None:
        """Stop and start kube-apiserver with the same state; returns once it is ready again."""
        self._processes["kube-apiserver"].stop()
        self._processes["kube-apiserver"].start()
        self._wait_for_apiserver()

    # --- lifecycle -------------------------------------------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        for directory in (self.pki_dir, self.log_dir):
            directory.mkdir(parents=True, exist_ok=True)
        credentials = self._write_pki()
        self._launch("etcd", self._etcd_argv())
        self._launch("kube-apiserver", self._apiserver_argv(credentials))
        self._wait_for_apiserver()
        self._launch("kube-controller-manager", self._controller_manager_argv(credentials))
        self._launch("kube-scheduler", self._scheduler_argv())
        self._launch("kwok", self._kwok_argv())
        self._add_nodes()
        self._wait_for_default_service_account()
        if self.kserve:
            self._start_kserve(credentials["kserve-webhook"])

    def stop(self) -> None:
        """Stop every component, newest first; logs stay in the work dir, etcd's data goes."""
        for process in reversed(list(self._processes.values())):
            process.stop()
        self._processes.clear()
        shutil.rmtree(self.work_dir / "etcd", ignore_errors=True)

    # --- start-up steps --------------------------------------------------------------------------------------------

    def _write_pki(self) -> dict[str, KeyPair]:
        authority = CertificateAuthority(self.pki_dir)
        self.ca_cert, self._ca_key = authority.cert_path, authority.key_path
        credentials = {
            "serving": authority.issue("apiserver", "kube-apiserver", server_ips=(LOOPBACK, KUBERNETES_SERVICE_IP),
                                       server_names=API_SERVER_NAMES),
            "service-accounts": write_service_account_keys(self.pki_dir),
            "admin": authority.issue("admin", "kubernetes-admin", organization="system:masters"),
            "controller-manager": authority.issue("controller-manager", "system:kube-controller-manager"),
            "scheduler": authority.issue("scheduler", "system:kube-scheduler"),
            "kserve-webhook": authority.issue("kserve-webhook", "kserve-webhook-server", server_ips=(LOOPBACK,)),
        }
        self._admin_credentials = credentials["admin"]
        self._write_kubeconfig(self.kubeconfig, "admin", _certificate_user(credentials["admin"]))
        for component in ("controller-manager", "scheduler"):
            self._write_kubeconfig(self.work_dir / f"{component}.kubeconfig", f"system:kube-{component}",
                                   _certificate_user(credentials[component]))
        return credentials

    def _write_kubeconfig(self, path: Path, user_name: str, user: dict[str, str]) -> None:
        path.write_text(yaml.safe_dump(kubeconfig_document(self.server, self.ca_cert, user_name, user)))
        path.chmod(0o600)

    def _launch(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        process = ManagedProcess(name, [str(self.bin_dir / name), *argv], self.log_dir, env)
        self._processes[name] = process
        process.start()

    def _etcd_argv(self) -> list[str]:
        client, peer = (f"http://{LOOPBACK}:{free_port()}" for _ in range(2))
        self._etcd_url = client
        return ["--name=local", f"--data-dir={self.work_dir / 'etcd'}", f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}", f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}", f"--initial-cluster=local={peer}",
                "--unsafe-no-fsync", "--log-level=warn"]

    def _apiserver_argv(self, credentials: dict[str, KeyPair]) -> list[str]:
        return [f"--etcd-servers={self._etcd_url}", f"--bind-address={LOOPBACK}",
                f"--advertise-address={LOOPBACK}", f"--secure-port={self.apiserver_port}",
                f"--tls-cert-file={credentials['serving'].cert}",
                f"--tls-private-key-file={credentials['serving'].key}",
                f"--client-ca-file={self.ca_cert}", "--authorization-mode=Node,RBAC",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={credentials['service-accounts'].cert}",
                f"--service-account-signing-key-file={credentials['service-accounts'].key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}", "--allow-privileged=true", "--profiling=false",
                *self._audit_argv()]

    def _audit_argv(self) -> list[str]:
        if not self.audited_users:
            return []
        policy = self.pki_dir.parent / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(audit_policy(self.audited_users)))
        return [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}", "--audit-log-format=json"]

    def _controller_manager_argv(self, credentials: dict[str, KeyPair]) -> list[str]:
        return [f"--kubeconfig={self.work_dir / 'controller-manager.kubeconfig'}", "--leader-elect=false",
                "--secure-port=0", "--controllers=*", "--use-service-account-credentials=true",
                f"--service-account-private-key-file={credentials['service-accounts'].key}",
                f"--root-ca-file={self.ca_cert}", f"--cluster-signing-cert-file={self.ca_cert}",
                f"--cluster-signing-key-file={self._ca_key}", f"--service-cluster-ip-range={SERVICE_CIDR}"]

    def _scheduler_argv(self) -> list[str]:
        return [f"--kubeconfig={self.work_dir / 'scheduler.kubeconfig'}", "--leader-elect=false",
                "--secure-port=0"]

    def _kwok_argv(self) -> list[str]:
        selector = f"{kwok_nodes.KWOK_NODE_ANNOTATION}={kwok_nodes.KWOK_NODE_VALUE}"
        return [f"--kubeconfig={self.kubeconfig}", f"--config={self.bin_dir / 'kwok-stages.yaml'}",
                "--manage-all-nodes=false", f"--manage-nodes-with-annotation-selector={selector}",
                f"--node-ip={LOOPBACK}", "--cidr=10.244.0.0/16"]

    def _wait_for_apiserver(self) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        context.load_cert_chain(str(self._admin_credentials.cert), str(self._admin_credentials.key))
        self._wait_for_readyz("kube-apiserver", f"{self.server}/readyz", context)

    def _wait_for_readyz(self, component: str, url: str, context: ssl.SSLContext | None = None) -> None:
        def ready() -> bool:
            try:
                with urllib.request.urlopen(url, context=context, timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(ready, f"{component} {url}", START_TIMEOUT_SECONDS, list(self._processes.values()))

    def _add_nodes(self) -> None:
        if not self.nodes:
            return
        self.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                            "items": self.nodes}))
        self._wait_for_condition("Ready", [f"node/{node['metadata']['name']}" for node in self.nodes])

    def _start_kserve(self, webhook_credentials: KeyPair) -> None:
        """KServe's CRDs, RBAC and ConfigMap, then its manager (as the ServiceAccount config/rbac binds), then its
        webhooks, once the manager serves them (their failurePolicy is Fail)."""
        manifests = kserve_manager.KServeManifests(self.bin_dir / "kserve",
                                                   binaries.pinned_versions()["KSERVE_GO_MODULE_VERSION"])
        crds = manifests.crds()
        self.apply(*crds)
        self._wait_for_condition("Established", [f"crd/{crd['metadata']['name']}" for crd in crds])
        self.apply(*manifests.set_up())
        kubeconfig = self.kubeconfig_for_service_account(kserve_manager.NAMESPACE, kserve_manager.SERVICE_ACCOUNT)
        temp_dir = self.work_dir / "kserve-tmp"
        kserve_manager.install_webhook_certificate(webhook_credentials, temp_dir)
        probe_port, webhook_port = free_port(), free_port()
        self._launch("kserve-controller-manager",
                     kserve_manager.manager_argv(free_port(), probe_port, webhook_port, LOOPBACK),
                     {**os.environ, **kserve_manager.manager_env(kubeconfig, temp_dir)})
        self._wait_for_readyz("kserve-controller-manager", f"http://{LOOPBACK}:{probe_port}/readyz")
        self.apply(*manifests.webhooks(f"https://{LOOPBACK}:{webhook_port}", self.ca_cert.read_bytes()))

    def _wait_for_condition(self, condition: str, resources: list[str]) -> None:
        """``kubectl wait`` retried: it fails outright on objects whose status has no conditions yet."""
        wait_until(lambda: self.kubectl("wait", f"--for=condition={condition}", "--timeout=2s", *resources,
                                        check=False).returncode == 0,
                   f"{condition}: {' '.join(resources)}", START_TIMEOUT_SECONDS, list(self._processes.values()))

    def _wait_for_default_service_account(self) -> None:
        """Pods cannot be created in a namespace before its ServiceAccount controller made ``default``."""
        wait_until(lambda: self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
                   "the default ServiceAccount", START_TIMEOUT_SECONDS, list(self._processes.values()))
