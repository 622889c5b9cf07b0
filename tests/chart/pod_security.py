"""The Pod Security Standards' "restricted" profile, as the Kubernetes documentation states it, for pod specs.

https://kubernetes.io/docs/concepts/security/pod-security-standards/ (restricted includes baseline).
"""

from __future__ import annotations

RESTRICTED_VOLUME_SOURCES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                             "projected", "secret"}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}


def _containers(pod_spec: dict) -> list[dict]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def _effective(pod_spec: dict, container: dict, *path: str):
    """A container's security setting, falling back to the pod's (as the kubelet does)."""
    for context in (container.get("securityContext", {}), pod_spec.get("securityContext", {})):
        value = context
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            return value
    return None


def _container_violations(pod_spec: dict, container: dict) -> list[str]:
    name = container["name"]
    context = container.get("securityContext", {})
    capabilities = context.get("capabilities", {})
    checks = {
        "privileged": not context.get("privileged", False),
        "allowPrivilegeEscalation must be false": context.get("allowPrivilegeEscalation") is False,
        "capabilities must drop ALL": "ALL" in capabilities.get("drop", []),
        "capabilities may add only NET_BIND_SERVICE": set(capabilities.get("add", [])) <= {"NET_BIND_SERVICE"},
        "runAsNonRoot must be true": _effective(pod_spec, container, "runAsNonRoot") is True,
        "runAsUser must not be 0": _effective(pod_spec, container, "runAsUser") != 0,
        "seccompProfile must be RuntimeDefault or Localhost":
            _effective(pod_spec, container, "seccompProfile", "type") in ALLOWED_SECCOMP,
        "hostPort is not allowed": not any(port.get("hostPort") for port in container.get("ports", [])),
    }
    return [f"container {name}: {rule}" for rule, ok in checks.items() if not ok]


def restricted_violations(pod_spec: dict) -> list[str]:
    """Every rule of the restricted profile the pod spec breaks (empty when it complies)."""
    pod_checks = {
        f"{field} is not allowed": not pod_spec.get(field, False) for field in ("hostNetwork", "hostPID", "hostIPC")
    }
    violations = [rule for rule, ok in pod_checks.items() if not ok]
    for volume in pod_spec.get("volumes", []):
        sources = set(volume) - {"name"}
        if not sources <= RESTRICTED_VOLUME_SOURCES:
            violations.append(f"volume {volume['name']}: {', '.join(sorted(sources))} is not allowed")
    for container in _containers(pod_spec):
        violations += _container_violations(pod_spec, container)
    return violations
