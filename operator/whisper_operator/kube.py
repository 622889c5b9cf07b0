"""The only module that talks to the API server: read, server-side apply, patch status.

API failures are translated here, once, into the operator's typed errors.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Callable, Iterator, Mapping, Optional

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from .errors import ApplyRejected, ClusterUnavailable
from .resources import FIELD_MANAGER, INFERENCE_SERVICE, WHISPER_ENDPOINT, ApiResource

#: Statuses that say "the request itself is wrong": retrying the same object cannot succeed.
REJECTED_STATUSES = frozenset({400, 403, 404, 405, 415, 422})


def _api_message(error: ApiException) -> str:
    try:
        return json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        return f"{error.status} {error.reason}"


@contextlib.contextmanager
def _translated_errors(action: str) -> Iterator[None]:
    try:
        yield
    except ApiException as error:
        kind = ApplyRejected if error.status in REJECTED_STATUSES else ClusterUnavailable
        raise kind(f"{action}: {_api_message(error)}") from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ClusterUnavailable(f"{action}: {error}") from error


def _none_if_missing(action: str, read: Callable[[], dict[str, Any]]) -> Optional[dict[str, Any]]:
    try:
        with _translated_errors(action):
            return read()
    except ApplyRejected as error:
        if isinstance(error.__cause__, ApiException) and error.__cause__.status == 404:
            return None
        raise


class KubeCluster:
    """Custom-object reads and writes through one shared API client."""

    def __init__(self, api_client: Optional[kubernetes.client.ApiClient] = None, connections: int = 10) -> None:
        """``connections``: kept-alive connections to the API server; one per thread that calls it, or each call
        beyond them opens (and TLS-handshakes) a connection of its own."""
        if api_client is None:
            kubernetes.config.load_config()
            configuration = kubernetes.client.Configuration.get_default_copy()
            configuration.connection_pool_maxsize = connections
            api_client = kubernetes.client.ApiClient(configuration)
        self._objects = kubernetes.client.CustomObjectsApi(api_client)
        self._apps = kubernetes.client.AppsV1Api(api_client)

    def _get(self, resource: ApiResource, namespace: str, name: str) -> Optional[dict[str, Any]]:
        return _none_if_missing(
            f"reading {resource.kind} {namespace}/{name}",
            lambda: self._objects.get_namespaced_custom_object(
                resource.group, resource.version, namespace, resource.plural, name
            ),
        )

    def get_deployment(self, namespace: str, name: str) -> Optional[dict[str, Any]]:
        """A Deployment as a plain dict (the API's JSON, camelCase keys like the custom objects)."""
        return _none_if_missing(
            f"reading Deployment {namespace}/{name}",
            lambda: json.loads(self._apps.read_namespaced_deployment(name, namespace, _preload_content=False).data),
        )

    def get_inference_service(self, namespace: str, name: str) -> Optional[dict[str, Any]]:
        return self._get(INFERENCE_SERVICE, namespace, name)

    def get_endpoint(self, namespace: str, name: str) -> Optional[dict[str, Any]]:
        return self._get(WHISPER_ENDPOINT, namespace, name)

    def apply_inference_service(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply as the operator's field manager, taking back fields someone else changed."""
        metadata = manifest["metadata"]
        with _translated_errors(f"applying {manifest['kind']} {metadata['namespace']}/{metadata['name']}"):
            return self._objects.patch_namespaced_custom_object(
                INFERENCE_SERVICE.group,
                INFERENCE_SERVICE.version,
                metadata["namespace"],
                INFERENCE_SERVICE.plural,
                metadata["name"],
                dict(manifest),
                field_manager=FIELD_MANAGER,
                field_validation="Strict",
                force=True,
                _content_type="application/apply-patch+yaml",
            )

    def patch_endpoint_status(self, namespace: str, name: str, status_patch: Mapping[str, Any]) -> None:
        with _translated_errors(f"updating the status of {WHISPER_ENDPOINT.kind} {namespace}/{name}"):
            self._objects.patch_namespaced_custom_object_status(
                WHISPER_ENDPOINT.group,
                WHISPER_ENDPOINT.version,
                namespace,
                WHISPER_ENDPOINT.plural,
                name,
                {"status": dict(status_patch)},
                _content_type="application/merge-patch+json",
            )
