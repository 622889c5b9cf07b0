"""Pure renderers: a parsed WhisperEndpoint in, Kubernetes objects (plain dicts) out. No I/O here."""

from .inference_service import render_inference_service, runtime_args
from .scheduling import gpu_tolerations, render_node_affinity
from .status import render_status

__all__ = ["render_inference_service", "runtime_args", "render_node_affinity", "gpu_tolerations", "render_status"]
