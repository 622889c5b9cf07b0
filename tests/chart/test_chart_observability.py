"""The Grafana dashboard and the PrometheusRule: toggled by values, querying only what the runtime exports."""

from __future__ import annotations

import json
import re

import promql_parser
from chart_render import one, select
from whisper_runtime import metrics

#: Series suffixes Prometheus' exposition adds per metric type.
SERIES_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
METRIC_NAME = re.compile(r"\bwhisper_[a-z_]+")
#: Grafana's variables as Prometheus would see them once Grafana has interpolated them.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$namespace": ".*"}


def exported_series() -> set[str]:
    families = [collector.describe()[0] for collector in
                (metrics.REQUESTS, metrics.LATENCY, metrics.AUDIO_SECONDS, metrics.RTFX, metrics.QUEUE_DEPTH)]
    return {family.name + suffix for family in families for suffix in SERIES_SUFFIXES[family.type]}


def dashboard(release: list[dict]) -> dict:
    config_map = one(release, "ConfigMap")
    return json.loads(config_map["data"]["whisper-runtime.json"])


def test_dashboard_and_rules_are_off_by_default(default_release):
    assert select(default_release, "ConfigMap") == []
    assert select(default_release, "PrometheusRule") == []


def test_dashboard_shows_what_users_expect_from_the_runtimes_metrics(custom_release):
    config_map = one(custom_release, "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = {panel["title"]: [target["expr"] for target in panel["targets"]]
              for panel in dashboard(custom_release)["panels"]}
    assert set(panels) == {"RTFx (audio seconds per wall second)", "Audio transcribed (seconds of audio per second)",
                           "Queue depth (windows waiting for the engine)", "Request latency by route",
                           "Requests by route", "Errors by status code"}
    assert all("by (le, route)" in expr for expr in panels["Request latency by route"])
    assert all('status!~"2.."' in expr and "by (status" in expr for expr in panels["Errors by status code"])
    queried = {name for exprs in panels.values() for expr in exprs for name in METRIC_NAME.findall(expr)}
    assert queried == exported_series() - {"whisper_rtfx_sum", "whisper_rtfx_count",
                                           "whisper_request_latency_seconds_sum",
                                           "whisper_request_latency_seconds_count"}


def grafana_interpolated(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_dashboard_queries_are_promql_filtered_by_the_namespace_variable(custom_release):
    board = dashboard(custom_release)
    assert [variable["name"] for variable in board["templating"]["list"]] == ["datasource", "namespace"]
    exprs = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    assert all('namespace=~"$namespace"' in expr for expr in exprs)
    for expr in exprs:
        promql_parser.parse(grafana_interpolated(expr))  # raises ValueError on a syntax error


def test_alerts_query_exported_metrics_with_thresholds_from_values(render):
    values = {"prometheusRules": {"enabled": True, "labels": {"release": "prometheus"}, "for": "15m",
                                  "errorRatePercent": 2.5, "queueDepthThreshold": 99, "minRTFx": 3,
                                  "p95LatencySeconds": 42}}
    rule = one(render(values), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    [group] = rule["spec"]["groups"]
    alerts = {alert["alert"]: alert for alert in group["rules"]}
    assert set(alerts) == {"WhisperHighErrorRate", "WhisperQueueBacklog", "WhisperSlowerThanRealTime",
                           "WhisperSlowRequests"}
    thresholds = {"WhisperHighErrorRate": "> 2.5", "WhisperQueueBacklog": "> 99",
                  "WhisperSlowerThanRealTime": "< 3", "WhisperSlowRequests": "> 42"}
    for name, alert in alerts.items():
        assert alert["expr"].strip().endswith(thresholds[name]), alert["expr"]
        assert set(METRIC_NAME.findall(alert["expr"])) <= exported_series()
        promql_parser.parse(alert["expr"])
        assert alert["for"] == "15m"
        assert alert["labels"]["severity"] in {"warning", "critical"}
        assert "{{ $labels." in alert["annotations"]["summary"]  # Prometheus' template, not Helm's, survived
