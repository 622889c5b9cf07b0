"""values.schema.json refuses values of the wrong type or shape before anything is rendered."""

import pytest

from chart_render import HelmFailed

WRONG_VALUES = {
    "replicas as text": ({"replicaCount": "two"}, "replicaCount"),
    "zero replicas": ({"replicaCount": 0}, "replicaCount"),
    "tag as number": ({"image": {"tag": 1.2}}, "tag"),
    "unknown pull policy": ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    "pull secret as text": ({"imagePullSecrets": ["regcred"]}, "imagePullSecrets"),
    "log level": ({"logLevel": "verbose"}, "logLevel"),
    "namespaces as text": ({"watchNamespaces": "speech"}, "watchNamespaces"),
    "invalid namespace name": ({"watchNamespaces": ["Speech_Team"]}, "watchNamespaces"),
    "node selector as list": ({"nodeSelector": ["gpu"]}, "nodeSelector"),
    "tolerations as map": ({"tolerations": {"key": "x"}}, "tolerations"),
    "bad resource quantity": ({"resources": {"limits": {"memory": "lots"}}}, "memory"),
    "service monitor flag as text": ({"serviceMonitor": {"enabled": "yes"}}, "enabled"),
    "runtime args as text": ({"runtime": {"args": "--kv_cache_dtype=fp8"}}, "args"),
    "runtime arg without dashes": ({"runtime": {"args": ["kv_cache_dtype=fp8"]}}, "args"),
    "runtime image repository empty": ({"runtime": {"image": {"repository": ""}}}, "repository"),
    "unknown top-level key": ({"replicas": 2}, "replicas"),
    "policy image as a map": ({"endpointPolicy": {"runtimeImages": [{"name": "x"}]}}, "runtimeImages"),
    "policy toleration field": ({"endpointPolicy": {"tolerations": [{"key": "x", "seconds": 1}]}}, "tolerations"),
    "policy env name with a space": ({"endpointPolicy": {"envNames": ["A B"]}}, "envNames"),
    "network policy open to every source": ({"networkPolicy": {"from": []}}, "from"),
    "network policy peer misspelt": ({"networkPolicy": {"from": [{"namespaceSelectors": {}}]}}, "from"),
}


@pytest.mark.parametrize(("values", "field"), WRONG_VALUES.values(), ids=WRONG_VALUES.keys())
def test_schema_refuses_wrong_values(render, values, field):
    with pytest.raises(HelmFailed) as refused:
        render(values)
    message = str(refused.value)
    assert "values don't meet the specifications of the schema" in message
    assert field in message
