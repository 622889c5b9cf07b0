"""The API layer against a small HTTP server speaking the API server's error format: how failures are classified,
and what server-side apply sends."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kubernetes
import pytest

from whisper_operator.errors import ApplyRejected, ClusterUnavailable
from whisper_operator.handlers import RECONCILE_THREADS
from whisper_operator.kube import KubeCluster


class FakeApiServer(BaseHTTPRequestHandler):
    replies: list[tuple[int, dict]] = []
    requests: list[tuple[str, str, str, bytes]] = []

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        FakeApiServer.requests.append((self.command, self.path, self.headers.get("Content-Type"), body))
        status, body = FakeApiServer.replies.pop(0)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PATCH = _reply

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def cluster():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    configuration = kubernetes.client.Configuration(host=f"http://127.0.0.1:{server.server_port}")
    configuration.retries = False
    FakeApiServer.replies, FakeApiServer.requests = [], []
    yield KubeCluster(kubernetes.client.ApiClient(configuration))
    server.shutdown()


def status_body(code: int, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


MANIFEST = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "w", "namespace": "speech"}, "spec": {"predictor": {}}}


def test_missing_inference_service_reads_as_none(cluster):
    FakeApiServer.replies = [(404, status_body(404, 'inferenceservices "w" not found'))]
    assert cluster.get_inference_service("speech", "w") is None
    assert FakeApiServer.requests[0][1] == "/apis/serving.kserve.io/v1beta1/namespaces/speech/inferenceservices/w"


def test_deployment_reads_as_the_apis_json_or_none(cluster):
    deployment = {"kind": "Deployment", "metadata": {"name": "w-predictor", "generation": 2},
                  "spec": {"template": {"metadata": {"annotations": {"a": "b"}}}}, "status": {"observedGeneration": 2}}
    FakeApiServer.replies = [(200, deployment), (404, status_body(404, 'deployments.apps "w" not found'))]
    assert cluster.get_deployment("speech", "w-predictor") == deployment
    assert cluster.get_deployment("speech", "w") is None
    assert FakeApiServer.requests[0][1] == "/apis/apps/v1/namespaces/speech/deployments/w-predictor"


def test_apply_is_a_forced_server_side_apply(cluster):
    FakeApiServer.replies = [(200, MANIFEST)]
    assert cluster.apply_inference_service(MANIFEST) == MANIFEST
    method, path, content_type, body = FakeApiServer.requests[0]
    assert (method, content_type) == ("PATCH", "application/apply-patch+yaml")
    assert "fieldManager=whisper-operator" in path and "force=true" in path and "fieldValidation=Strict" in path
    assert json.loads(body) == MANIFEST


def test_webhook_refusal_is_rejected_with_the_servers_message(cluster):
    FakeApiServer.replies = [(422, status_body(422, "admission webhook denied: no runtime supports whisper"))]
    with pytest.raises(ApplyRejected, match="no runtime supports whisper"):
        cluster.apply_inference_service(MANIFEST)


@pytest.mark.parametrize("code", [409, 429, 500, 503])
def test_transient_failures_are_unavailable(cluster, code):
    FakeApiServer.replies = [(code, status_body(code, "try again"))]
    with pytest.raises(ClusterUnavailable):
        cluster.get_inference_service("speech", "w")


def test_unreachable_server_is_unavailable():
    configuration = kubernetes.client.Configuration(host="http://127.0.0.1:9")
    configuration.retries = False
    with pytest.raises(ClusterUnavailable):
        KubeCluster(kubernetes.client.ApiClient(configuration)).get_endpoint("speech", "w")


def test_status_is_a_merge_patch_on_the_status_subresource(cluster):
    FakeApiServer.replies = [(200, {})]
    cluster.patch_endpoint_status("speech", "w", {"url": None, "readyReplicas": 1})
    method, path, content_type, body = FakeApiServer.requests[0]
    assert path.startswith("/apis/whisper.kserve-contrib.io/v1alpha1/namespaces/speech/whisperendpoints/w/status")
    assert (method, content_type) == ("PATCH", "application/merge-patch+json")
    assert json.loads(body) == {"status": {"url": None, "readyReplicas": 1}}


def test_one_kept_alive_connection_per_handler_thread(tmp_path, monkeypatch):
    """The client's default pool (5 per CPU) made the extra threads open a TLS connection for every call."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    for module in (kubernetes.config, kubernetes.config.kube_config):  # both read $KUBECONFIG at import
        monkeypatch.setattr(module, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    api_client = KubeCluster(connections=RECONCILE_THREADS)._objects.api_client
    assert api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] == RECONCILE_THREADS
