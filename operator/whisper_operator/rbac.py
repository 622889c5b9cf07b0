"""Every API permission the operator uses, declared once: the Helm chart renders least-privilege RBAC from it.

``whisper-operator rbac`` prints these as Kubernetes PolicyRules.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .resources import INFERENCE_SERVICE, WHISPER_ENDPOINT


@dataclasses.dataclass(frozen=True)
class Permission:
    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str

    def as_policy_rule(self) -> dict[str, Any]:
        return {"apiGroups": [self.api_group], "resources": list(self.resources), "verbs": list(self.verbs)}


PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        WHISPER_ENDPOINT.group,
        (WHISPER_ENDPOINT.plural,),
        ("get", "list", "watch", "patch"),
        "watch endpoints; kopf keeps its progress in annotations",
    ),
    Permission(WHISPER_ENDPOINT.group, (f"{WHISPER_ENDPOINT.plural}/status",), ("get", "patch"), "publish status"),
    Permission(
        WHISPER_ENDPOINT.group,
        (f"{WHISPER_ENDPOINT.plural}/finalizers",),
        ("update",),
        "owner references with blockOwnerDeletion, where OwnerReferencesPermissionEnforcement is on (OpenShift)",
    ),
    Permission(
        INFERENCE_SERVICE.group,
        (INFERENCE_SERVICE.plural,),
        ("get", "list", "watch", "create", "patch"),
        "server-side apply (a create is an apply that needs create too) and watch for drift and status",
    ),
    Permission(
        "apps",
        ("deployments",),
        ("get",),
        "whether a spec change has rolled out: KServe's predictor Deployment in Standard mode (status.servingGeneration)",
    ),
    Permission("", ("events",), ("create",), "Events on WhisperEndpoints (kopf posts core v1 Events)"),
    Permission(
        "apiextensions.k8s.io", ("customresourcedefinitions",), ("list", "watch"), "kopf discovers its resources"
    ),
    Permission("", ("namespaces",), ("list", "watch"), "kopf follows namespaces when watching several"),
)

#: Only with peering on (more than one operator replica): kopf's peering objects.
PEERING_PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        "kopf.dev",
        ("clusterkopfpeerings", "kopfpeerings"),
        ("get", "list", "watch", "patch"),
        "peering: only the highest-priority replica handles resources",
    ),
)


def policy_rules(peering: bool = True) -> list[dict[str, Any]]:
    chosen = PERMISSIONS + (PEERING_PERMISSIONS if peering else ())
    return [permission.as_policy_rule() for permission in chosen]
