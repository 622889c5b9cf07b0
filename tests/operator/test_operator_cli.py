"""The ``whisper-operator`` command: render previews, clear errors, RBAC rules that cover every API call."""

from __future__ import annotations

import pytest
import yaml

import operator_testkit as kit
from whisper_operator import cli
from whisper_operator.rbac import policy_rules


def test_render_prints_one_document_per_endpoint(capsys, tmp_path):
    both = tmp_path / "both.yaml"
    both.write_text((kit.REPO / "examples/large-v3.yaml").read_text() + "---\n"
                    + (kit.REPO / "examples/distil-large-v3.5.yaml").read_text())
    assert cli.main(["render", "-f", str(both), "-f", str(kit.REPO / "examples/whisper-endpoint.yaml")]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["metadata"]["name"] for d in documents] == ["whisper-large-v3", "whisper-distil", "whisper"]
    assert {d["kind"] for d in documents} == {"InferenceService"}


def test_render_refuses_an_invalid_spec_with_its_reason(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"apiVersion": "whisper.kserve-contrib.io/v1alpha1", "kind": "WhisperEndpoint",
                                   "metadata": {"name": "w"},
                                   "spec": {"model": {"preset": "large-v3"},
                                            "resources": {"minComputeCapability": "7.5"}}}))
    assert cli.main(["render", "-f", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "fp8 KV cache needs minComputeCapability >= 8.9" in captured.err


def test_render_reads_runtime_name_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("WHISPER_RUNTIME_NAME", "whisper-vllm-canary")
    cli.main(["render", "-f", str(kit.REPO / "examples/whisper-endpoint.yaml")])
    assert yaml.safe_load(capsys.readouterr().out)["spec"]["predictor"]["model"]["runtime"] == "whisper-vllm-canary"


def test_run_needs_a_scope():
    with pytest.raises(SystemExit):
        cli.main(["run"])


def test_peering_priorities_are_stable_and_distinct_per_pod():
    pods = [f"whisper-operator-7d9f8c6b5-{suffix}" for suffix in ("abcde", "fghij", "klmno")]
    priorities = [cli.peering_priority(pod) for pod in pods]
    assert len(set(priorities)) == len(pods)
    assert priorities == [cli.peering_priority(pod) for pod in pods]
    assert all(priority > 0 for priority in priorities)


def allowed(rules, group, resource, verb) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)


@pytest.mark.parametrize(
    ("group", "resource", "verb", "used_by"),
    [
        ("whisper.kserve-contrib.io", "whisperendpoints", "watch", "kopf watches endpoints"),
        ("whisper.kserve-contrib.io", "whisperendpoints", "list", "kopf lists endpoints"),
        ("whisper.kserve-contrib.io", "whisperendpoints", "get", "kube.get_endpoint"),
        ("whisper.kserve-contrib.io", "whisperendpoints", "patch", "kopf progress annotations"),
        ("whisper.kserve-contrib.io", "whisperendpoints/status", "patch", "status patches"),
        ("serving.kserve.io", "inferenceservices", "get", "kube.get_inference_service"),
        ("serving.kserve.io", "inferenceservices", "patch", "kube.apply_inference_service"),
        ("serving.kserve.io", "inferenceservices", "create", "server-side apply of a new object"),
        ("serving.kserve.io", "inferenceservices", "watch", "on.event of owned InferenceServices"),
        ("", "events", "create", "kopf.event"),
        ("kopf.dev", "clusterkopfpeerings", "patch", "peering"),
        ("kopf.dev", "kopfpeerings", "patch", "peering"),
    ],
)
def test_rbac_covers_every_call(group, resource, verb, used_by):
    assert allowed(policy_rules(), group, resource, verb), used_by


def test_rbac_grants_no_deletes_and_no_wildcards():
    rules = policy_rules()
    assert not any("delete" in r["verbs"] or "*" in r["verbs"] or "*" in r["resources"] for r in rules)
    assert not allowed(policy_rules(peering=False), "kopf.dev", "kopfpeerings", "patch")


def test_rbac_command_prints_policy_rules(capsys):
    assert cli.main(["rbac"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == policy_rules()
