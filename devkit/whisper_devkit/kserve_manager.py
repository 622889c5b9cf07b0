"""KServe in the local cluster: its real controller manager and manifests, adapted to a cluster without networking.

``devkit/build-binaries.sh`` builds ``github.com/kserve/kserve/cmd/manager`` and copies from the same module what a
KServe install applies (under ``<bin dir>/kserve/config/...``): the CRDs, the ``inferenceservice-config``
ConfigMap, the manager's RBAC and its admission webhooks. The pure functions here adapt them to this cluster:

- the ConfigMap selects Standard (plain Deployment) mode, creates no Ingress or Istio VirtualService (nothing would
  serve them), reports the predictor Service's cluster DNS name as the URL, and names the release's images instead
  of ``:latest``;
- the manager runs as a process on this machine, not behind a Service, so the webhooks call it at a loopback URL
  and trust the cluster CA that signed its serving certificate;
- the kustomize namespace (``kserve``) is filled in where KServe's own kustomization would put it.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
from pathlib import Path

import yaml

from .pki import KeyPair

NAMESPACE = "kserve"
SERVICE_ACCOUNT = "kserve-controller-manager"
STANDARD_MODE = "Standard"
CONFIG_MAP_FILE = "config/configmap/inferenceservice.yaml"
WEBHOOKS_FILE = "config/webhook/manifests.yaml"
RBAC_FILES = ("config/rbac/service_account.yaml", "config/rbac/role.yaml", "config/rbac/role_binding.yaml")
#: The URL KServe reports: the predictor Service's in-cluster name, e.g. http://asr-predictor.team.svc.cluster.local
PREDICTOR_SERVICE_URL = {"ingressDomain": "svc.cluster.local",
                         "domainTemplate": "{{ .Name }}-predictor.{{ .Namespace }}.{{ .IngressDomain }}"}


def load_documents(path: Path) -> list[dict]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the InferenceService CRD alone is 2 MB
    return [document for document in yaml.load_all(path.read_text(), Loader=loader) if document]


def namespace() -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}


def crds(manifests: Path) -> list[dict]:
    """Every CRD build-binaries.sh copied: the kinds the manager watches, ClusterStorageContainer, which its
    pod webhook reads, and KEDA's ScaledObject, which it creates for ``autoscalerClass: keda``."""
    return [crd for path in sorted(manifests.glob("config/crd/**/*.yaml")) for crd in load_documents(path)]


def _with_release_image(config: dict, release: str) -> dict:
    image = config.get("image", "")
    return {**config, "image": f"{image.removesuffix(':latest')}:{release}"} if image.endswith(":latest") else config


def inferenceservice_config(config_map: dict, release: str) -> dict:
    """KServe's ``inferenceservice-config`` set up for this cluster (see the module docstring)."""
    data = {key: json.loads(value) for key, value in config_map["data"].items() if key != "_example"}
    data = {key: _with_release_image(config, release) for key, config in data.items()}
    data["deploy"] = {**data["deploy"], "defaultDeploymentMode": STANDARD_MODE}
    data["ingress"] = {**data["ingress"], "disableIngressCreation": True, "disableIstioVirtualHost": True,
                       **PREDICTOR_SERVICE_URL}
    adapted = copy.deepcopy(config_map)
    adapted["data"] = {**config_map["data"], **{key: json.dumps(config, indent=2) for key, config in data.items()}}
    adapted["metadata"]["namespace"] = NAMESPACE
    return adapted


def manager_rbac(documents: list[dict]) -> list[dict]:
    """config/rbac's ServiceAccount, ClusterRole and ClusterRoleBinding with the namespace filled in."""
    adapted = copy.deepcopy(documents)
    for document in adapted:
        if document["kind"] == "ServiceAccount":
            document["metadata"]["namespace"] = NAMESPACE
        for subject in document.get("subjects", []):
            subject["namespace"] = NAMESPACE
    return adapted


def loopback_webhooks(documents: list[dict], base_url: str, ca_bundle: bytes) -> list[dict]:
    """KServe's webhook configurations calling ``base_url`` + each webhook's path instead of its Service."""
    adapted = copy.deepcopy(documents)
    for document in adapted:
        for webhook in document["webhooks"]:
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {"url": f"{base_url}{path}", "caBundle": base64.b64encode(ca_bundle).decode()}
    return adapted


class KServeManifests:
    """The manifests of one KServe release as build-binaries.sh copied them, adapted by the functions above."""

    def __init__(self, directory: Path, release: str):
        self.directory = directory
        self.release = release

    def crds(self) -> list[dict]:
        return crds(self.directory)

    def set_up(self) -> list[dict]:
        """What the manager needs before it starts: its namespace, RBAC and ConfigMap."""
        rbac = [document for name in RBAC_FILES for document in load_documents(self.directory / name)]
        [config_map] = load_documents(self.directory / CONFIG_MAP_FILE)
        return [namespace(), *manager_rbac(rbac), inferenceservice_config(config_map, self.release)]

    def webhooks(self, base_url: str, ca_bundle: bytes) -> list[dict]:
        return loopback_webhooks(load_documents(self.directory / WEBHOOKS_FILE), base_url, ca_bundle)


def manager_argv(metrics_port: int, probe_port: int, webhook_port: int, host: str) -> list[str]:
    """cmd/manager's flags: no leader election (one replica), metrics and probes on loopback only."""
    return [f"--metrics-addr={host}:{metrics_port}", f"--health-probe-addr={host}:{probe_port}",
            f"--webhook-port={webhook_port}", "--leader-elect=false"]


def manager_env(kubeconfig: Path, temp_dir: Path) -> dict[str, str]:
    """The manager's namespace, credentials and temp dir (where ``install_webhook_certificate`` put its cert)."""
    return {"POD_NAMESPACE": NAMESPACE, "KUBECONFIG": str(kubeconfig), "TMPDIR": str(temp_dir)}


def install_webhook_certificate(pair: KeyPair, temp_dir: Path) -> None:
    """Put the webhook server's certificate where controller-runtime looks by default,
    ``$TMPDIR/k8s-webhook-server/serving-certs/tls.{crt,key}``: cmd/manager has no flag to say otherwise."""
    cert_dir = temp_dir / "k8s-webhook-server" / "serving-certs"
    cert_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pair.cert, cert_dir / "tls.crt")
    shutil.copyfile(pair.key, cert_dir / "tls.key")
