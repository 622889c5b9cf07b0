"""The runtime's argument contract: the one place that names every flag the runtime accepts.

The operator renders these flags into the InferenceService; the runtime's CLI registers them on
KServe's argument parser. Both import this module, so the operator can never write a flag the
runtime does not know. It must stay light: standard library only (the operator image has no torch).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Optional, Sequence

ENGINES = ("vllm", "transformers")
DTYPES = ("bfloat16", "float16", "float32", "auto")
KV_CACHE_DTYPES = ("fp8", "auto")
#: Weight quantization of the linear layers; fp8 needs the same FP8 tensor cores as the fp8 KV cache.
QUANTIZATIONS = ("none", "fp8")
#: Where the vLLM engine computes each window's log-mel features: on the host in vLLM's renderer threads (as
#: vLLM's own server does), or with the same STFT on the GPU (Transformers' feature extractor either way).
FEATURE_DEVICES = ("cpu", "cuda")
TASKS = ("transcribe", "translate")

#: fp8 KV cache needs FP8 tensor cores: Ada Lovelace (8.9) and newer.
FP8_KV_MIN_COMPUTE_CAPABILITY = (8, 9)
#: Whisper's encoder sees 30 seconds of audio at a time.
WINDOW_SECONDS = 30.0
#: The shortest chunk allowed: windows are cut at a quiet point within a chunk's last 5 s, so a chunk must be well
#: longer than that search; shorter windows would mostly be padding for Whisper's 30-second encoder.
MIN_CHUNK_SECONDS = 10.0
SAMPLE_RATE = 16000
#: Encoder positions of one 30-second window (every Whisper size): what one new window costs the scheduler.
ENCODER_TOKENS_PER_WINDOW = 1500

#: The model format our ClusterServingRuntime declares and InferenceServices ask for.
MODEL_FORMAT = "whisper"
#: Environment variable the hub token Secret is mounted into.
HF_TOKEN_ENV = "HF_TOKEN"
#: Environment variable the runtime reads its API key from when ``--api_key_file`` is not given.
API_KEY_ENV = "WHISPER_API_KEY"

_CC_PATTERN = re.compile(r"^(\d+)\.(\d+)$")


def parse_compute_capability(value: str) -> tuple[int, int]:
    """Parse "MAJOR.MINOR" (the string form Kubernetes API conventions prefer over floats)."""
    match = _CC_PATTERN.match(value.strip())
    if not match:
        raise ValueError(f"compute capability must look like MAJOR.MINOR (for example 8.9), got {value!r}")
    return int(match.group(1)), int(match.group(2))


def fp8_kv_cache_supported(compute_capability: tuple[int, int]) -> bool:
    return compute_capability >= FP8_KV_MIN_COMPUTE_CAPABILITY


@dataclasses.dataclass(frozen=True)
class RuntimeArgs:
    """Everything the operator may tell the runtime, with the runtime's defaults.

    KServe's own model-server flags (``--model_name``, ``--model_dir``, ``--http_port``,
    ``--grpc_port``) are not repeated here: KServe's parser owns them.
    """

    engine: str = "vllm"
    dtype: str = "bfloat16"
    kv_cache_dtype: str = "fp8"
    quantization: str = "none"
    feature_device: str = "cpu"
    #: torch.compile level as vLLM names it (0 = off, 3 = full piecewise compile).
    compilation_level: int = 3
    cuda_graphs: bool = True
    #: Batch sizes CUDA graphs are captured for; empty lets the engine choose.
    cuda_graph_sizes: tuple[int, ...] = ()
    max_num_seqs: int = 256
    #: Scheduler token budget per engine step. Each new window's encoder takes ENCODER_TOKENS_PER_WINDOW of it,
    #: so this bounds how many windows start decoding per step (vLLM's own default, 2048, admits one).
    max_num_batched_tokens: int = 16 * ENCODER_TOKENS_PER_WINDOW
    gpu_memory_utilization: float = 0.9
    tensor_parallel_size: int = 1
    #: The longest window a recording is cut into (at its quietest point in the last 5 s), as Transformers'
    #: pipeline and faster-whisper call it. Whisper sees 30 s; a shorter cut leaves it padding after the last word.
    chunk_length_s: float = WINDOW_SECONDS
    max_audio_seconds: int = 4 * 3600
    max_upload_mb: int = 1024
    default_language: Optional[str] = None
    default_task: str = "transcribe"
    #: A file holding the API key every route but health and /metrics requires (a mounted Secret); none: open.
    api_key_file: Optional[str] = None

    def __post_init__(self) -> None:
        problems = validate(self)
        if problems:
            raise ValueError("; ".join(problems))

    def to_argv(self) -> list[str]:
        """The flags that reproduce these arguments; defaults are written too, so the manifest is explicit."""
        argv = [
            f"--engine={self.engine}",
            f"--dtype={self.dtype}",
            f"--kv_cache_dtype={self.kv_cache_dtype}",
            f"--compilation_level={self.compilation_level}",
            "--cuda_graphs" if self.cuda_graphs else "--no-cuda_graphs",
            f"--max_num_seqs={self.max_num_seqs}",
            f"--max_num_batched_tokens={self.max_num_batched_tokens}",
            f"--gpu_memory_utilization={self.gpu_memory_utilization}",
            f"--tensor_parallel_size={self.tensor_parallel_size}",
            f"--max_audio_seconds={self.max_audio_seconds}",
            f"--max_upload_mb={self.max_upload_mb}",
            f"--default_task={self.default_task}",
        ]
        if self.quantization != "none":  # written only when chosen: endpoints made before it existed keep their manifests
            argv.append(f"--quantization={self.quantization}")
        if self.chunk_length_s != WINDOW_SECONDS:
            argv.append(f"--chunk_length_s={self.chunk_length_s:g}")
        if self.feature_device != "cpu":
            argv.append(f"--feature_device={self.feature_device}")
        if self.cuda_graph_sizes:
            argv.append("--cuda_graph_sizes=" + ",".join(str(size) for size in self.cuda_graph_sizes))
        if self.default_language:
            argv.append(f"--default_language={self.default_language}")
        if self.api_key_file:
            argv.append(f"--api_key_file={self.api_key_file}")
        return argv

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace) -> "RuntimeArgs":
        values = {field.name: getattr(namespace, field.name) for field in dataclasses.fields(cls)}
        values["cuda_graph_sizes"] = tuple(values["cuda_graph_sizes"] or ())
        return cls(**values)


def validate(args: RuntimeArgs) -> list[str]:
    """Human-readable problems with a set of arguments (empty when they are fine)."""
    problems = []
    if args.engine not in ENGINES:
        problems.append(f"engine must be one of {', '.join(ENGINES)}, got {args.engine!r}")
    if args.dtype not in DTYPES:
        problems.append(f"dtype must be one of {', '.join(DTYPES)}, got {args.dtype!r}")
    if args.kv_cache_dtype not in KV_CACHE_DTYPES:
        problems.append(f"kv_cache_dtype must be one of {', '.join(KV_CACHE_DTYPES)}, got {args.kv_cache_dtype!r}")
    if args.quantization not in QUANTIZATIONS:
        problems.append(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {args.quantization!r}")
    if args.feature_device not in FEATURE_DEVICES:
        problems.append(f"feature_device must be one of {', '.join(FEATURE_DEVICES)}, got {args.feature_device!r}")
    if not 0 <= args.compilation_level <= 3:
        problems.append(f"compilation_level must be 0..3, got {args.compilation_level}")
    if any(size < 1 for size in args.cuda_graph_sizes):
        problems.append("cuda_graph_sizes must be positive batch sizes")
    if args.max_num_seqs < 1:
        problems.append("max_num_seqs must be at least 1")
    if args.max_num_batched_tokens < ENCODER_TOKENS_PER_WINDOW:
        problems.append(f"max_num_batched_tokens must be at least {ENCODER_TOKENS_PER_WINDOW} (one window's encoder)")
    if not 0.05 <= args.gpu_memory_utilization <= 1.0:
        problems.append("gpu_memory_utilization must be between 0.05 and 1.0")
    if args.tensor_parallel_size < 1:
        problems.append("tensor_parallel_size must be at least 1")
    if not MIN_CHUNK_SECONDS <= args.chunk_length_s <= WINDOW_SECONDS:
        problems.append(f"chunk_length_s must be between {MIN_CHUNK_SECONDS:g} and {WINDOW_SECONDS:g} (Whisper's window)")
    if args.max_audio_seconds < 1:
        problems.append("max_audio_seconds must be at least 1")
    if args.max_upload_mb < 1:
        problems.append("max_upload_mb must be at least 1")
    if args.default_task not in TASKS:
        problems.append(f"default_task must be one of {', '.join(TASKS)}, got {args.default_task!r}")
    return problems


def _sizes(value: str) -> tuple[int, ...]:
    return tuple(int(part) for part in value.split(",") if part.strip())


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the contract's flags (with the defaults above) on a parser, e.g. KServe's."""
    defaults = RuntimeArgs()
    group = parser.add_argument_group("whisper runtime")
    group.add_argument("--engine", choices=ENGINES, default=defaults.engine)
    group.add_argument("--dtype", choices=DTYPES, default=defaults.dtype)
    group.add_argument("--kv_cache_dtype", choices=KV_CACHE_DTYPES, default=defaults.kv_cache_dtype)
    group.add_argument("--quantization", choices=QUANTIZATIONS, default=defaults.quantization)
    group.add_argument("--feature_device", choices=FEATURE_DEVICES, default=defaults.feature_device)
    group.add_argument("--compilation_level", type=int, choices=range(4), default=defaults.compilation_level)
    group.add_argument("--cuda_graphs", action=argparse.BooleanOptionalAction, default=defaults.cuda_graphs)
    group.add_argument("--cuda_graph_sizes", type=_sizes, default=defaults.cuda_graph_sizes)
    group.add_argument("--max_num_seqs", type=int, default=defaults.max_num_seqs)
    group.add_argument("--max_num_batched_tokens", type=int, default=defaults.max_num_batched_tokens)
    group.add_argument("--gpu_memory_utilization", type=float, default=defaults.gpu_memory_utilization)
    group.add_argument("--tensor_parallel_size", type=int, default=defaults.tensor_parallel_size)
    group.add_argument("--chunk_length_s", type=float, default=defaults.chunk_length_s)
    group.add_argument("--max_audio_seconds", type=int, default=defaults.max_audio_seconds)
    group.add_argument("--max_upload_mb", type=int, default=defaults.max_upload_mb)
    group.add_argument("--default_language", default=defaults.default_language)
    group.add_argument("--default_task", choices=TASKS, default=defaults.default_task)
    group.add_argument(
        "--api_key_file",
        default=defaults.api_key_file,
        help=f"file holding the API key clients must send as 'Authorization: Bearer <key>' (else ${API_KEY_ENV}; neither: no key)",
    )
    return parser


def parse(argv: Sequence[str]) -> RuntimeArgs:
    """Parse only the contract's flags (unknown ones, e.g. KServe's, are left alone)."""
    namespace, _ = add_arguments(argparse.ArgumentParser(add_help=False)).parse_known_args(list(argv))
    return RuntimeArgs.from_namespace(namespace)
