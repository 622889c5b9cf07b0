"""`helm lint` accepts the chart with its defaults and with every option changed, also in strict mode."""

import pytest
import yaml
from whisper_devkit.binaries import pinned_versions

from chart_render import CHART, NON_DEFAULT_VALUES_FILE, helm


@pytest.mark.parametrize("strict", [[], ["--strict"]], ids=["lint", "strict"])
@pytest.mark.parametrize("values", [[], ["--values", str(NON_DEFAULT_VALUES_FILE)]], ids=["defaults", "non-default"])
def test_helm_lint_passes(helm_binary, strict, values):
    output = helm(helm_binary, "lint", str(CHART), "--namespace", "whisper-system", *strict, *values)
    assert "1 chart(s) linted, 0 chart(s) failed" in output


def test_helm_assumes_the_pinned_kubernetes_release(helm_binary, tmp_path):
    """helm's release build stamps its Kubernetes minor in with linker flags; without them a Go-built helm assumes
    v1.20 and refuses our chart's `kubeVersion: >=1.30` (devkit/build-binaries.sh sets them)."""
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "version.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\n"
        "data: {kube: {{ .Capabilities.KubeVersion.Version | quote }}}\n")
    pinned = pinned_versions()["KUBERNETES_VERSION"]

    assumed = yaml.safe_load(helm(helm_binary, "template", str(chart)))["data"]["kube"]

    assert assumed == f"v1.{pinned.split('.')[1]}.0"
    assert "kind: Deployment" in helm(helm_binary, "template", "whisper", str(CHART))  # kubeVersion: ">=1.30.0-0"
