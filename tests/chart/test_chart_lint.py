"""`helm lint` accepts the chart with its defaults and with every option changed, also in strict mode."""

import pytest

from chart_render import CHART, NON_DEFAULT_VALUES_FILE, helm


@pytest.mark.parametrize("strict", [[], ["--strict"]], ids=["lint", "strict"])
@pytest.mark.parametrize("values", [[], ["--values", str(NON_DEFAULT_VALUES_FILE)]], ids=["defaults", "non-default"])
def test_helm_lint_passes(helm_binary, strict, values):
    output = helm(helm_binary, "lint", str(CHART), "--namespace", "whisper-system", *strict, *values)
    assert "1 chart(s) linted, 0 chart(s) failed" in output
