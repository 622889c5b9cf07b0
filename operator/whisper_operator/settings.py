"""Operator configuration, read once from the environment in ``main()`` and passed in (no globals)."""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional

from .policy import POLICY_ENV, EndpointPolicy


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    #: The ClusterServingRuntime the chart installs; InferenceServices name it in predictor.model.runtime.
    runtime_name: str = "whisper-vllm"
    #: Seconds between level-triggered resyncs (status refresh and drift repair).
    resync_seconds: float = 60.0
    #: The cluster admin's allow-lists; None lets an endpoint ask for any image, toleration and env.
    policy: Optional[EndpointPolicy] = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "OperatorConfig":
        defaults = cls()
        return cls(
            runtime_name=environ.get("WHISPER_RUNTIME_NAME", defaults.runtime_name),
            resync_seconds=float(environ.get("WHISPER_RESYNC_SECONDS", defaults.resync_seconds)),
            policy=EndpointPolicy.from_json(environ[POLICY_ENV]) if environ.get(POLICY_ENV) else None,
        )
