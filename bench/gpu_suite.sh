#!/usr/bin/env bash
# The GPU measurements of docs/benchmarks.md, in phases that each fit one device call (< 10 minutes).
#
#   bench/gpu_suite.sh engines   MODEL_DIR DATA_DIR   # vLLM offline, vLLM engine (all on), Transformers baseline
#   bench/gpu_suite.sh ablation  MODEL_DIR DATA_DIR   # no fp8 KV, no torch.compile, no CUDA graphs
#   bench/gpu_suite.sh compare   MODEL_DIR DATA_DIR   # Transformers baseline and vLLM at 64 and 256 sequences
#   bench/gpu_suite.sh http      MODEL_DIR DATA_DIR   # whisper-runtime over HTTP: cold start (profiled), then warm
#   bench/gpu_suite.sh profile   MODEL_DIR DATA_DIR   # py-spy profiles: vLLM engine in process, then the server
#
# Results: one JSON line per configuration in $OUT/results.jsonl (or ./bench-results), full logs beside it,
# Markdown tables on stdout. Needs vLLM 0.24.0 and this project importable (docs/benchmarks.md says how).
set -uo pipefail
phase=$1 model=$2 data=$3
shift 3  # what follows goes to the runtime (http phase)
out=${OUT:-bench-results}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 VLLM_USE_FLASHINFER_SAMPLER=0
export VLLM_CACHE_ROOT=${VLLM_CACHE_ROOT:-/tmp/vllm-cache}
results="$out/results.jsonl"
# Enough audio per timed repeat that it lasts many seconds on an H100 (the workload is submitted this many times).
copies=${BENCH_COPIES:-8}
repeats=${BENCH_REPEATS:-3}

kv_tokens() {  # label: vLLM's own report of its KV-cache capacity
  grep -ho 'GPU KV cache size: [0-9,]* tokens' "$out/$1.log" | head -1 | sed "s/^/$1: /"
}

engine() {  # label, then engine_bench flags (runtime flags included)
  local label=$1; shift
  timeout 240 python3 "$here/engine_bench.py" --model_dir "$model" --data "$data" --label "$label" \
    --repeats "$repeats" --copies "$copies" --results "$results" "$@" > "$out/$label.log" 2>&1
  grep -A2 '^| audio' "$out/$label.log" || tail -n 5 "$out/$label.log"
  kv_tokens "$label"
}

case "$phase" in
  engines)
    timeout 200 python3 "$here/offline_vllm.py" --model_dir "$model" --data "$data" --copies "$copies" \
      --repeats "$repeats" --results "$results" > "$out/offline.log" 2>&1
    grep -A2 '^| audio' "$out/offline.log" || tail -n 5 "$out/offline.log"
    kv_tokens offline
    engine vllm-all-on --engine vllm
    # The baseline decodes a quarter of the audio: it is that much slower, and RTFx does not depend on it.
    copies=2 engine transformers-bf16 --engine transformers --dtype bfloat16
    ;;
  compare)
    copies=2 engine transformers-bf16 --engine transformers --dtype bfloat16
    engine vllm-all-on --engine vllm
    engine vllm-max-seqs-256 --engine vllm --max_num_seqs 256
    ;;
  ablation)
    engine no-fp8-kv --engine vllm --kv_cache_dtype auto
    engine no-compile --engine vllm --compilation_level 0
    engine no-cuda-graphs --engine vllm --no-cuda_graphs
    ;;
  http)
    mkdir -p "$out/profiles"
    for start in cold warm; do
      profile=(); [ "$start" = cold ] && profile=(--profile "$out/profiles")
      timeout 280 python3 "$here/http_bench.py" --model_dir "$model" --data "$data" --label "http-$start" \
        --copies "$copies" --repeats 2 --clients "${BENCH_CLIENTS:-4}" --log "$out/server-$start.log" \
        --results "$results" "${profile[@]}" --engine vllm "$@" > "$out/http-$start.log" 2>&1
      grep '^|' "$out/http-$start.log" || tail -n 5 "$out/http-$start.log"
    done
    kv_tokens server-cold
    ;;
  profile)
    mkdir -p "$out/profiles"
    repeats=2 engine vllm-all-on --engine vllm --profile "$out/profiles"
    repeats=2 engine vllm-max-seqs-256 --engine vllm --max_num_seqs 256
    timeout 240 python3 "$here/http_bench.py" --model_dir "$model" --data "$data" --label http-profiled \
      --copies 4 --repeats 1 --clients "${BENCH_CLIENTS:-4}" --concurrency 1,16,64 --log "$out/server-profiled.log" \
      --results "$results" --profile "$out/profiles" --engine vllm "$@" > "$out/http-profiled.log" 2>&1
    grep '^|' "$out/http-profiled.log" || tail -n 5 "$out/http-profiled.log"
    ;;
  *) echo "unknown phase $phase" >&2; exit 2 ;;
esac
