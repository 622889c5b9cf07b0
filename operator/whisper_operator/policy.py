"""Who may run what: the cluster admin's allow-lists for what a WhisperEndpoint may ask the operator to run.

Without a policy, creating a WhisperEndpoint is as strong as creating a pod: any ``runtimeImage``, any ``env`` and
tolerations that reach any node, run with the operator's rights. The chart's ``endpointPolicy`` values give the
allow-lists to the operator as JSON (env ``WHISPER_ENDPOINT_POLICY``) and to the API server as the CEL rules of a
ValidatingAdmissionPolicy; both refuse with the messages built here.

Pure: no I/O. Image and env-name entries ending in ``*`` are prefixes (``*`` alone allows anything); a toleration
entry allows every toleration that equals it in the fields the entry sets. An empty list allows nothing.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Optional, Sequence

import pydantic
from pydantic.alias_generators import to_camel

from .errors import NotAllowed
from .spec import Toleration, WhisperEndpointSpec

POLICY_ENV = "WHISPER_ENDPOINT_POLICY"
_WHO = "is not allowed by the cluster's endpoint policy"


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class TolerationPattern(_Model):
    key: Optional[str] = None
    operator: Optional[Literal["Exists", "Equal"]] = None
    value: Optional[str] = None
    effect: Optional[Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]] = None

    def admits(self, toleration: Toleration) -> bool:
        return all(getattr(toleration, field) == wanted for field, wanted in self.model_dump().items()
                   if wanted is not None)


def _matches(value: str, patterns: Sequence[str]) -> bool:
    return any(value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern for pattern in patterns)


def _listed(allowed: Sequence[Any]) -> str:
    """The allow-list as Helm's toJson writes it into the admission policy's messages (compact, keys sorted)."""
    return json.dumps(allowed, separators=(",", ":"), sort_keys=True)


class EndpointPolicy(_Model):
    runtime_images: tuple[str, ...] = ()
    tolerations: tuple[TolerationPattern, ...] = ()
    env_names: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, text: str) -> "EndpointPolicy":
        """Raises ValueError naming what is wrong (the operator refuses to start with a policy it cannot read)."""
        try:
            return cls.model_validate_json(text)
        except pydantic.ValidationError as error:
            raise ValueError(f"{POLICY_ENV} is not a valid endpoint policy: {error}") from None

    def violations(self, spec: WhisperEndpointSpec) -> list[str]:
        """What the spec asks for beyond the allow-lists, one message per field (empty when allowed)."""
        problems = []
        if spec.runtime_image is not None and not _matches(spec.runtime_image, self.runtime_images):
            allowed = _listed(self.runtime_images)
            problems.append(f'spec.runtimeImage "{spec.runtime_image}" {_WHO} (allowed: {allowed})')
        refused = [t for t in spec.tolerations if not any(pattern.admits(t) for pattern in self.tolerations)]
        if refused:
            patterns = [pattern.model_dump(exclude_none=True) for pattern in self.tolerations]
            problems.append(f'spec.tolerations: the toleration of key "{refused[0].key or ""}" {_WHO} '
                            f"(allowed: {_listed(patterns)})")
        refused_env = [variable.name for variable in spec.env if not _matches(variable.name, self.env_names)]
        if refused_env:
            problems.append(f'spec.env: "{refused_env[0]}" {_WHO} (allowed: {_listed(self.env_names)})')
        return problems

    def enforce(self, spec: WhisperEndpointSpec) -> None:
        """Raises NotAllowed with every violation in one message."""
        problems = self.violations(spec)
        if problems:
            raise NotAllowed("; ".join(problems))
