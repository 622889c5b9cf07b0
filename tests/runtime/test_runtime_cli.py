"""The container and the chart call the runtime with flags its parser must know."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from whisper_runtime import contract
from whisper_runtime.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_FLAG = re.compile(r"^\s*-\s+(--[A-Za-z_-]+(?:=\S+)?)\s*$")


def servingruntime_argv() -> list[str]:
    """Flags the ClusterServingRuntime template writes, plus the chart's default runtime.args."""
    templates = (ROOT / "charts/whisper-operator/templates").glob("*servingruntime*")
    argv = [match.group(1) for path in templates for line in path.read_text().splitlines() if (match := TEMPLATE_FLAG.match(line))]
    values = yaml.safe_load((ROOT / "charts/whisper-operator/values.yaml").read_text())
    argv += values["runtime"]["args"]
    return [re.sub(r"\{\{.*?\}\}", "whisper", flag) for flag in argv]


def test_every_flag_of_the_chart_parses():
    argv = servingruntime_argv()
    assert any(flag.startswith("--model_dir") for flag in argv)
    namespace = build_parser().parse_args(argv)
    assert namespace.model_dir == Path("/mnt/models")
    assert namespace.http_port == 8080 and namespace.grpc_port == 8081
    assert contract.RuntimeArgs.from_namespace(namespace).engine == "vllm"


def test_unknown_flags_are_refused():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model_dir=/m", "--no_such_flag=1"])


def test_operator_argv_round_trips_through_the_runtime_parser():
    written = contract.RuntimeArgs(
        engine="transformers", kv_cache_dtype="auto", compilation_level=0, cuda_graphs=False,
        cuda_graph_sizes=(1, 2, 4), max_num_seqs=8, default_language="de", api_key_file="/etc/whisper/api-key/key",
        feature_device="cuda", chunk_length_s=25.0,
    )  # fmt: skip
    namespace = build_parser().parse_args(["--model_dir=/m", *written.to_argv()])
    assert contract.RuntimeArgs.from_namespace(namespace) == written


def test_console_script_and_container_entrypoint():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["whisper-runtime"] == "whisper_runtime.cli:main"
    dockerfile = (ROOT / "runtime/Dockerfile").read_text()
    assert re.search(r"^FROM vllm/vllm-openai:v0\.24\.0$", dockerfile, re.M)
    assert re.search(r'^ENTRYPOINT \["whisper-runtime"\]$', dockerfile, re.M)
    user = re.search(r"^USER (\S+)$", dockerfile, re.M)
    assert user and user.group(1) not in ("root", "0")
