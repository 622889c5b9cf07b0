#!/usr/bin/env bash
# The GPU measurements of docs/benchmarks.md, in phases that each fit one device call (< 10 minutes).
#
#   bench/gpu_suite.sh engines   MODEL_DIR DATA_DIR   # Transformers baseline, vLLM offline, vLLM engine (defaults)
#   bench/gpu_suite.sh sweep     MODEL_DIR DATA_DIR   # vLLM engine: max_num_seqs x max_num_batched_tokens
#   bench/gpu_suite.sh ablation  MODEL_DIR DATA_DIR   # no fp8 KV, no torch.compile, no CUDA graphs
#   bench/gpu_suite.sh http      MODEL_DIR DATA_DIR   # whisper-runtime over HTTP: cold start (profiled), then warm
#   bench/gpu_suite.sh peer      MODEL_DIR DATA_DIR   # our server against `vllm serve` (PEER_SERVERS="ours peer")
#   bench/gpu_suite.sh realtime  MODEL_DIR DATA_DIR   # realtime WebSocket sessions at real-time pace (bench/realtime_bench.py)
#   bench/gpu_suite.sh stream    MODEL_DIR DATA_DIR   # time to the first streamed delta of the long file (bench/stream_latency.py)
#   bench/gpu_suite.sh shapes    MODEL_DIR DATA_DIR   # SHAPE (large-v3-turbo) with random weights, TOKENS (128) per window:
#                                                     # Transformers, vLLM as it comes, our engine, our server (v2, OpenAI)
#   bench/gpu_suite.sh l4        MODEL_DIR DATA_DIR   # SHAPE at our defaults in the memory of a 24 GB L4: KV-cache capacity
#   bench/gpu_suite.sh quant     MODEL_DIR DATA_DIR   # real weights, bf16 vs fp8 linear layers: RTFx and WER (engine in process)
#
# The shape phases take MODEL_DIR's tokenizer (use base: multilingual) and its runtime flags (e.g. --quantization fp8)
# after DATA_DIR; TAG names such a variant in the labels.
#
# Several phases in one call: PHASES="engines sweep" bench/gpu_suite.sh - MODEL_DIR DATA_DIR.
# A step starts only while the call has time left for it (CALL_BUDGET seconds in all), so a call is never cut
# off mid-step and loses nothing it measured. Results: one JSON line per configuration in $OUT/results.jsonl
# (or ./bench-results), full logs beside it, Markdown tables on stdout. Needs vLLM 0.24.0 and this project
# importable (docs/benchmarks.md says how).
set -uo pipefail
phase=$1 model=$2 data=$3
shift 3  # what follows goes to the runtime (http phase)
out=${OUT:-bench-results}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 VLLM_USE_FLASHINFER_SAMPLER=0
export VLLM_CACHE_ROOT=${VLLM_CACHE_ROOT:-/tmp/vllm-cache}
results="$out/results.jsonl"
budget=${CALL_BUDGET:-570}
# Enough audio per timed repeat that it lasts many seconds on an H100 (the workload is submitted this many times).
copies=${BENCH_COPIES:-8}
repeats=${BENCH_REPEATS:-3}

time_for() {  # seconds a step needs: true when the call still has them
  if (( budget - SECONDS < $1 )); then echo "skipped (needs $1 s, $(( budget - SECONDS )) s left): ${*:2}"; return 1; fi
}

kv_tokens() {  # label: vLLM's own report of its KV-cache capacity
  grep -ho 'GPU KV cache size: [0-9,]* tokens' "$out/$1.log" | head -1 | sed "s/^/$1: /"
}

measure() {  # script, label, then its flags (runtime flags included)
  local script=$1 label=$2; shift 2
  time_for 100 "$label" || return 0
  timeout $(( budget - SECONDS )) python3 "$here/$script" --model_dir "$model" --data "$data" \
    --label "$label" --repeats "$repeats" --copies "$copies" --results "$results" "$@" > "$out/$label.log" 2>&1
  grep -A2 '^| audio' "$out/$label.log" || tail -n 5 "$out/$label.log"
  kv_tokens "$label"
}

engine() { measure engine_bench.py "$@"; }   # through the runtime's own Transcriber, in process
offline() { measure offline_vllm.py "$@"; }  # vLLM's LLM.generate on the same windows: the ceiling

run_phase() {  # phase, then runtime flags
  local phase=$1; shift
  case "$phase" in
    engines)
      mkdir -p "$out/profiles"
      # The baseline decodes a quarter of the audio: it is that much slower, and RTFx does not depend on it.
      copies=2 repeats=2 engine transformers-bf16 --engine transformers --dtype bfloat16
      offline vllm-offline
      engine vllm-defaults --engine vllm --profile "$out/profiles"
      ;;
    sweep)  # the scheduler's two limits; each window's encoder takes 1500 of the token budget
      engine seqs-256-tokens-2048 --engine vllm --max_num_seqs 256 --max_num_batched_tokens 2048
      engine seqs-64-tokens-24000 --engine vllm --max_num_seqs 64 --max_num_batched_tokens 24000
      engine seqs-512-tokens-48000 --engine vllm --max_num_seqs 512 --max_num_batched_tokens 48000
      engine seqs-256-tokens-48000 --engine vllm --max_num_seqs 256 --max_num_batched_tokens 48000
      engine seqs-64-tokens-2048 --engine vllm --max_num_seqs 64 --max_num_batched_tokens 2048
      ;;
    ablation)
      engine no-fp8-kv --engine vllm --kv_cache_dtype auto
      engine no-compile --engine vllm --compilation_level 0
      engine no-cuda-graphs --engine vllm --no-cuda_graphs
      ;;
    http)
      mkdir -p "$out/profiles"
      for start in cold warm; do
        time_for 200 "http-$start" || continue
        profile=(); [ "$start" = cold ] && profile=(--profile "$out/profiles")
        timeout $(( budget - SECONDS )) python3 "$here/http_bench.py" --model_dir "$model" --data "$data" \
          --label "http-$start" --copies "$copies" --repeats 2 --clients "${BENCH_CLIENTS:-4}" \
          --log "$out/server-$start.log" --results "$results" "${profile[@]}" --engine vllm "$@" \
          > "$out/http-$start.log" 2>&1
        grep '^|' "$out/http-$start.log" || tail -n 5 "$out/http-$start.log"
      done
      kv_tokens server-cold
      ;;
    peer)  # same flags, client and audio for both servers (bench/peer_bench.py); WORKLOADS, ROUTES, LANGUAGES to choose
      # An entry of PEER_SERVERS may add runtime flags after commas (ours,--feature_device=cuda): a variant in the same call.
      local entry server name variant
      for entry in ${PEER_SERVERS:-ours peer}; do
        server=${entry%%,*} variant=(); [[ $entry == *,* ]] && IFS=, read -ra variant <<< "${entry#*,}"
        name=${entry//[^A-Za-z0-9_=.-]/_}
        time_for 150 "peer-$name" || continue
        timeout $(( budget - SECONDS )) python3 "$here/peer_bench.py" --server "$server" --model_dir "$model" \
          --data "$data" --workloads "${WORKLOADS:-long,c8,c32,clips,clip1}" --log "$out/server-$name.log" \
          ${ROUTES:+--routes "$ROUTES"} ${LANGUAGES:+--languages "$LANGUAGES"} \
          ${variant[@]:+--tag "${variant[*]} "} --results "$results" "$@" "${variant[@]}" > "$out/peer-$name.log" 2>&1
        grep '^|' "$out/peer-$name.log" || tail -n 5 "$out/peer-$name.log"
        kv_tokens "server-$name"
      done
      ;;
    shapes)  # STEPS chooses among: transformers offline engine server (all by default)
      local shape_model fixed steps=" ${STEPS:-transformers offline engine server} " label=${SHAPE:-large-v3-turbo}${TAG:+-$TAG}
      shape_model=$(python3 "$here/model_shapes.py" --tokenizer_from "$model" --out /tmp/shapes "${SHAPE:-large-v3-turbo}" | tail -1)
      fixed=(--benchmark_random_weights --benchmark_tokens_per_window "${TOKENS:-128}")
      # Transformers decodes 64 windows per generate call (its batch); the others schedule as they do when serving.
      [[ $steps == *" transformers "* ]] && model=$shape_model copies=1 repeats=2 engine "$label-transformers" \
        --engine transformers --max_num_seqs 64 --kinds long "${fixed[@]}"
      [[ $steps == *" offline "* ]] && model=$shape_model copies=1 repeats=2 offline "$label-vllm-as-it-comes" \
        --vllm_defaults --kinds long "${fixed[@]}" "$@"
      [[ $steps == *" engine "* ]] && model=$shape_model copies=1 repeats=2 engine "$label-our-engine" \
        --engine vllm --kinds long "${fixed[@]}" "$@"
      [[ $steps == *" server "* ]] || return 0
      time_for 150 "$label-our-server" || return 0
      timeout $(( budget - SECONDS )) python3 "$here/peer_bench.py" --server ours --model_dir "$shape_model" --data "$data" \
        --workloads long,c8 --routes "v2 JSON,OpenAI" --languages en --tag "$label " --log "$out/server-$label.log" --results "$results" \
        "${fixed[@]}" "$@" > "$out/$label-our-server.log" 2>&1
      grep '^|' "$out/$label-our-server.log" || tail -n 5 "$out/$label-our-server.log"
      kv_tokens "server-$label"
      python3 "$here/shapes_report.py" "$results"
      ;;
    l4)  # an L4 has 23034 MiB; our default --gpu_memory_utilization 0.9 of that, as a share of this GPU
      local shape_model util label=${SHAPE:-large-v3}-l4-memory
      shape_model=$(python3 "$here/model_shapes.py" --tokenizer_from "$model" --out /tmp/shapes "${SHAPE:-large-v3}" | tail -1)
      util=$(python3 -c "import torch; print(round(0.9 * 23034 * 2**20 / torch.cuda.mem_get_info()[1], 4))")
      echo "L4 memory on this GPU: --gpu_memory_utilization $util"
      model=$shape_model copies=1 repeats=1 offline "$label" --kinds long --benchmark_random_weights \
        --benchmark_tokens_per_window "${TOKENS:-128}" --gpu_memory_utilization "$util" "$@"
      grep -h 'Model loading took\|Available KV cache memory\|GPU KV cache size\|Maximum concurrency' "$out/$label.log" | head -4
      ;;
    quant)  # the accuracy cost of fp8 weights, measured where accuracy means something: the real checkpoint
      copies=1 repeats=2 engine weights-bf16 --engine vllm "$@"
      copies=1 repeats=2 engine weights-fp8 --engine vllm --quantization fp8 "$@"
      ;;
    stream)
      time_for 150 stream || return 0
      timeout $(( budget - SECONDS )) python3 "$here/stream_latency.py" --model_dir "$model" --audio "$data/long-0.flac" \
        --runs 3 -- --engine=vllm "$@" > "$out/stream.log" 2>&1
      grep '^run\|^|' "$out/stream.log" || tail -n 5 "$out/stream.log"
      ;;
    realtime)  # live sessions over /v1/realtime at real-time pace, more until the p95 final latency passes 2 s
      time_for 300 realtime || return 0
      timeout $(( budget - SECONDS )) python3 "$here/realtime_bench.py" --model_dir "$model" --data "$data" \
        --label realtime --sessions "${REALTIME_SESSIONS:-16,32,64,128,256,512}" --log "$out/server-realtime.log" \
        --results "$results" --engine vllm "$@" > "$out/realtime.log" 2>&1
      grep '^|' "$out/realtime.log" || tail -n 5 "$out/realtime.log"
      ;;
    *) echo "unknown phase $phase" >&2; exit 2 ;;
  esac
}

if [ "$phase" = - ]; then
  for each in ${PHASES:?PHASES names the phases when the phase is -}; do run_phase "$each" "$@"; done
else
  run_phase "$phase" "$@"
fi
