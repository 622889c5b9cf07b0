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
                    "--long-minutes", "0.75", "--concurrent", "2", "--concurrent-minutes", "0.25", "--clips", "4"],
                   check=True)
    return folder


def run_bench(script: str, *args: str) -> None:
    subprocess.run([sys.executable, str(BENCH / script), *args], check=True, cwd=BENCH, timeout=600)


def test_workload_manifest_lists_long_form_concurrent_files_and_clips(workload):
    items = json.loads((workload / "manifest.json").read_text())["items"]
    assert [item["kind"] for item in items] == ["long"] + ["concurrent"] * 2 + ["clip"] * 4
    assert items[0]["seconds"] >= 45 and all((workload / item["file"]).is_file() for item in items)
    assert items[1]["text"] != items[2]["text"] and all(item["seconds"] >= 15 for item in items[1:3])


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
    assert record["server_phases"]["first_round_s"] > 0  # the runtime's phase counters, read in process
    assert record["server_phases"]["resumed_windows"] >= 0 and record["server_phases"]["loop_retries"] >= 0
    assert record["server_phases"]["serial_tokens"] > 0  # tokens decoded in series, per recording


def test_http_bench_records_both_routes_and_latency(workload, tmp_path):
    results = tmp_path / "results.jsonl"
    run_bench("http_bench.py", "--model_dir", str(ensure_model("tiny.en")), "--data", str(workload),
              "--repeats", "1", "--clients", "2", "--concurrency", "1,2", "--latency_requests", "2",
              "--log", str(tmp_path / "server.log"), "--results", str(results),
              "--engine", "transformers", "--dtype", "float32")
    record = json.loads(results.read_text())
    for route in ("v2 REST", "OpenAI"):
        assert record[route]["rtfx"][0] > 0 and record[route]["wer_all"] < 40
        assert set(record[route]["hypotheses"]) == {path.name for path in workload.glob("*.flac")} - {
            "concurrent-0.flac", "concurrent-1.flac"}  # http_bench sends the long-form file and the clips
    assert record["latency_c1"]["p50"] <= record["latency_c1"]["p95"]
    assert record["ready_seconds"] > 0


def test_peer_bench_drives_every_route_of_our_server(workload, tmp_path):
    """The four protocol routes, and the OpenAI route asking for word timestamps (its parser refuses an answer
    without words, which would be a cell with an error)."""
    results = tmp_path / "results.jsonl"
    routes = ("OpenAI", "v2 JSON", "v2 binary", "v2 gRPC", "OpenAI words")
    run_bench("peer_bench.py", "--server", "ours", "--model_dir", str(ensure_model("tiny.en")), "--data", str(workload),
              "--workloads", "c8", "--routes", ",".join(routes), "--repeats", "1", "--log", str(tmp_path / "server.log"),
              "--results", str(results), "--engine", "transformers", "--dtype", "float32")
    records = [json.loads(line) for line in results.read_text().splitlines()]
    cells = {(r["route"], r["workload"], r["language"]) for r in records}
    assert cells == {(route, workload_name, language) for route in routes
                     for workload_name in ("c8",) for language in ("en", "detected")}
    for record in records:
        assert "error" not in record, record
        assert record["rtfx"][0] > 0 and record["p50_s"] <= record["p95_s"] and record["wer"] < 40
        phases = record["server_phases"]  # per request, from our server's /metrics
        assert phases["audio_decode_s"] > 0 and phases["first_round_s"] > 0 and phases["resumption_s"] >= 0
        assert phases["serial_tokens"] > 0


def test_peer_runs_with_the_engine_arguments_our_runtime_derives():
    sys.path.insert(0, str(BENCH))
    from peer_bench import peer_argv

    argv = peer_argv(Path("/models/base"), 8000, ["--max_num_seqs=64", "--kv_cache_dtype=fp8"])
    flags = dict(zip(argv[5::2], argv[6::2]))  # every flag here takes a value
    assert argv[2:5] == ["vllm.entrypoints.cli.main", "serve", "/models/base"]
    assert flags["--max-num-seqs"] == "64" and flags["--kv-cache-dtype"] == "fp8"
    assert json.loads(flags["--compilation-config"]) == {"mode": 3}
    assert "--logits-processors" not in argv and "--enforce-eager" not in argv


def test_a_route_set_asked_of_both_servers_gives_each_the_routes_it_has():
    sys.path.insert(0, str(BENCH))
    from peer_bench import SERVER_ROUTES, routes_for

    assert routes_for("peer", ["OpenAI", "v2 JSON", "OpenAI words"]) == ["OpenAI"]
    assert routes_for("ours", ["OpenAI", "v2 JSON", "OpenAI words"]) == ["OpenAI", "v2 JSON", "OpenAI words"]
    assert routes_for("ours", None) == SERVER_ROUTES["ours"]
