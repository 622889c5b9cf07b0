"""The operator's typed errors. handlers.py maps each kind to kopf's retry policy in one place."""

from __future__ import annotations


class ReconcileError(Exception):
    """Base: something a user should see as a ``Degraded`` condition and an Event."""

    reason = "ReconcileError"


class InvalidSpec(ReconcileError):
    """The spec can never work as written (the API server's CEL rules should already refuse most of these)."""

    reason = "InvalidSpec"


class ApplyRejected(ReconcileError):
    """The API server or an admission webhook (e.g. KServe's) refused the rendered object: retrying will not help."""

    reason = "ApplyRejected"


class ClusterUnavailable(ReconcileError):
    """A transient API failure (timeouts, 5xx, 429, conflicts): retried with backoff."""

    reason = "ClusterUnavailable"


class NotAllowed(InvalidSpec):
    """The spec asks for an image, toleration or env the cluster's endpoint policy does not allow."""

    reason = "NotAllowedByPolicy"
