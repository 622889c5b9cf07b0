"""The endpoint policy: allow-lists of runtime images, tolerations and env names, parsed from the chart's JSON and
enforced by the reconcile (refused: Degraded + Event, nothing created). The same rules as CEL: tests/e2e."""

from __future__ import annotations

import pytest

from operator_testkit import KEY, InMemoryCluster, endpoint
from whisper_operator.policy import EndpointPolicy
from whisper_operator.reconcile import reconcile
from whisper_operator.settings import OperatorConfig
from whisper_operator.spec import parse_spec

POLICY = EndpointPolicy.from_json(
    '{"runtimeImages": ["registry.example.com/whisper/*", "ghcr.io/acme/whisper:1.2"],'
    ' "tolerations": [{"key": "dedicated", "value": "speech", "effect": "NoSchedule"}, {"key": "spot"}],'
    ' "envNames": ["VLLM_*", "OMP_NUM_THREADS"]}')


def spec(**fields) -> dict:
    return {"model": {"preset": "large-v3-turbo"}, **fields}


@pytest.mark.parametrize("fields", [
    {},
    {"runtimeImage": "registry.example.com/whisper/runtime:0.2"},
    {"runtimeImage": "ghcr.io/acme/whisper:1.2"},
    {"tolerations": [{"key": "dedicated", "value": "speech", "effect": "NoSchedule"}]},
    {"tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]},
    {"env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}, {"name": "OMP_NUM_THREADS", "value": "4"}]},
], ids=["plain", "image-prefix", "image-exact", "toleration-exact", "toleration-key-only-pattern", "env"])
def test_allowed_specs_pass(fields):
    assert POLICY.violations(parse_spec(spec(**fields))) == []


@pytest.mark.parametrize(("fields", "message"), [
    ({"runtimeImage": "ghcr.io/acme/whisper:1.3"},
     'spec.runtimeImage "ghcr.io/acme/whisper:1.3" is not allowed by the cluster\'s endpoint policy (allowed: '
     '["registry.example.com/whisper/*","ghcr.io/acme/whisper:1.2"])'),
    ({"runtimeImage": "registry.example.com/whisperer"}, 'spec.runtimeImage "registry.example.com/whisperer"'),
    ({"tolerations": [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}]},
     'spec.tolerations: the toleration of key "dedicated" is not allowed by the cluster\'s endpoint policy (allowed: '
     '[{"effect":"NoSchedule","key":"dedicated","value":"speech"},{"key":"spot"}])'),
    ({"tolerations": [{"operator": "Exists"}]}, 'the toleration of key ""'),  # tolerates every taint
    ({"env": [{"name": "VLLM_X", "value": "1"}, {"name": "LD_PRELOAD", "value": "/x.so"}]},
     'spec.env: "LD_PRELOAD" is not allowed by the cluster\'s endpoint policy (allowed: '
     '["VLLM_*","OMP_NUM_THREADS"])'),
], ids=["image", "image-not-a-prefix-match", "toleration-value", "toleration-of-everything", "env"])
def test_refused_specs_name_the_field_and_the_allow_list(fields, message):
    [problem] = POLICY.violations(parse_spec(spec(**fields)))
    assert message in problem


def test_an_empty_policy_allows_no_overrides_and_star_allows_any():
    nothing = EndpointPolicy.from_json("{}")
    everything = EndpointPolicy.from_json('{"runtimeImages": ["*"], "tolerations": [{}], "envNames": ["*"]}')
    asks = parse_spec(spec(runtimeImage="x", tolerations=[{"operator": "Exists"}], env=[{"name": "A"}]))
    assert len(nothing.violations(asks)) == 3
    assert everything.violations(asks) == []


@pytest.mark.parametrize("text", ['{"runtimeImage": ["x"]}', '{"tolerations": [{"key": 1}]}', "not json"])
def test_an_unreadable_policy_stops_the_operator_with_a_message(text):
    with pytest.raises(ValueError, match="WHISPER_ENDPOINT_POLICY is not a valid endpoint policy"):
        OperatorConfig.from_env({"WHISPER_ENDPOINT_POLICY": text})


def test_no_policy_unless_the_chart_sets_one():
    assert OperatorConfig.from_env({}).policy is None
    assert OperatorConfig.from_env({"WHISPER_ENDPOINT_POLICY": '{"envNames": ["A"]}'}).policy.env_names == ("A",)


def test_refused_endpoint_is_degraded_with_an_event_and_creates_nothing():
    cluster = InMemoryCluster()
    outcome = reconcile(endpoint(spec(runtimeImage="evil.example.com/miner:1")), cluster,
                        OperatorConfig(policy=POLICY), "2026-01-01T00:00:00Z")
    assert KEY not in cluster.inference_services and cluster.applies == 0
    ready = next(c for c in outcome.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NotAllowedByPolicy")
    assert 'spec.runtimeImage "evil.example.com/miner:1" is not allowed' in ready["message"]
    [event] = outcome.events
    assert (event.type, event.reason) == ("Warning", "NotAllowedByPolicy")
    assert outcome.problem is not None
