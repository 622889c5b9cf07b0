"""The benchmark scripts, run the way docs/benchmarks.md runs them, on CPU with tiny.en and a small workload.

They are measurements, not tests of speed: what is asserted is that they produce complete, sane records.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from whisper_devkit.models import ensure_model

BENCH = Path(__file__).resolve().parents[2] / "bench"
pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench-data")
    subprocess.run([sys.executable, str(BENCH / "prepare_data.py"), "--out", str(folder),
                    "--long-minutes", "0.75", "--clips", "4"], check=True)
    return folder


def run_bench(script: str, *args: str) -> None:
    subprocess.run([sys.executable, str(BENCH / script), *args], check=True, cwd=BENCH, timeout=600)


def test_workload_manifest_lists_long_form_and_clips(workload):
    items = json.loads((workload / "manifest.json").read_text())["items"]
    assert [item["kind"] for item in items] == ["long"] + ["clip"] * 4
    assert items[0]["seconds"] >= 45 and all((workload / item["file"]).is_file() for item in items)


def test_engine_bench_records_rtfx_and_wer(workload, tmp_path):
    results = tmp_path / "results.jsonl"
    run_bench("engine_bench.py", "--engine", "transformers", "--dtype", "float32",
              "--model_dir", str(ensure_model("tiny.en")), "--data", str(workload), "--label", "cpu",
              "--repeats", "1", "--results", str(results))
    record = json.loads(results.read_text())
    assert record["engine"] == "transformers" and record["audio_seconds_per_repeat"] > 45
    assert len(record["rtfx"]) == 1 and record["rtfx"][0] > 0
    assert record["wer_long"] < 30 and record["wer_clips"] < 40
    assert all(text for text in record["hypotheses"].values())


def test_http_bench_records_both_routes_and_latency(workload, tmp_path):
    results = tmp_path / "results.jsonl"
    run_bench("http_bench.py", "--model_dir", str(ensure_model("tiny.en")), "--data", str(workload),
              "--repeats", "1", "--clients", "2", "--concurrency", "1,2", "--latency_requests", "2",
              "--log", str(tmp_path / "server.log"), "--results", str(results),
              "--engine", "transformers", "--dtype", "float32")
    record = json.loads(results.read_text())
    for route in ("v2 REST", "OpenAI"):
        assert record[route]["rtfx"][0] > 0 and record[route]["wer_all"] < 40
        assert set(record[route]["hypotheses"]) == {path.name for path in workload.glob("*.flac")}
    assert record["latency_c1"]["p50"] <= record["latency_c1"]["p95"]
    assert record["ready_seconds"] > 0
