#!/usr/bin/env bash
# The CPU judge: `transformers serve` on 127.0.0.1 with affect-rl's default model (SmolLM2-135M),
# the stand-in for `vllm serve` that the recipes' CPU overrides and the tests talk to.
#
#   launch/judge/serve_local.sh [OPTIONS]
#
# Then point the rubric reward at it: base_url: http://127.0.0.1:PORT/v1 (the default port 8000
# matches the reward's default base_url). It binds 127.0.0.1 (this machine only) unless --host
# opens it; `transformers serve` takes no API key, so an opened judge serves anyone who reaches it
# (a warning says so). It runs in the foreground; stop it with Ctrl-C.
#
# Examples:
#   launch/judge/serve_local.sh                          # port 8000, continuous batching, 1 thread
#   launch/judge/serve_local.sh --port 8123 --threads 2
#   launch/judge/serve_local.sh --model /path/to/checkpoint --no-batching
#   launch/judge/serve_local.sh --dry-run                # print the command, run nothing
#
# Options:
#   --model M        checkpoint folder, hub id or alias (default smollm2-135m-instruct, offline)
#   --port P         port (default 8000)
#   --host H         bind address (default 127.0.0.1; 0.0.0.0 or this host's address opens it to others)
#   --threads N      OMP_NUM_THREADS of the server (default 1: several times faster than torch's
#                    default on a CPU shared with a training job; raise it on an idle machine)
#   --no-batching    one request at a time (default: --continuous-batching, which scored 8 judge
#                    requests at concurrency 4 in 16 s against 32 s without it; bench/judge.py)
#   --dry-run        print the command and exit
set -euo pipefail

LAUNCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$LAUNCH_DIR/lib.sh"

model=smollm2-135m-instruct port=8000 host=127.0.0.1 threads=1 batching=--continuous-batching dry_run=0
while (($#)); do
    case $1 in
        --model) model=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --host) host=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --no-batching) batching=--no-continuous-batching; shift ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "error: unknown option '$1'" >&2; usage 2 ;;
    esac
done
require_int --port "$port" 1
require_int --threads "$threads" 1
command -v transformers >/dev/null || die "\`transformers\` is not on PATH: pip install 'affect-rl[serving]'"

# The default alias is materialised once into ~/.cache/affect-rl (offline) and served from there.
model_path=$(python -c 'import sys; from affect_rl.models import resolve_model_path; print(resolve_model_path(sys.argv[1]))' "$model") \
    || die "cannot resolve the model '$model'"
cmd=(transformers serve "$model_path" --host "$host" --port "$port" --device cpu "$batching" --log-level info)
# Bound the paged KV cache: on a CPU it is otherwise sized from the whole RAM (13.7 GB for the
# 135M model, measured). 64 blocks and 2048 tokens per pass hold several judge prompts at once.
[[ $batching == --no-continuous-batching ]] || cmd+=(--cb-num-blocks 64 --cb-max-batch-tokens 2048)

show judge "OMP_NUM_THREADS=$threads" "${cmd[@]}"
warn_exposed "judge" "$host" "$port" 0 "transformers serve takes no API key; use launch/judge/serve_vllm.sh for a shared judge"
[[ $host != 0.0.0.0 ]] || host=$(hostname)
echo "# base_url: http://$host:$port/v1   model: $model_path"
((dry_run)) && exit 0
OMP_NUM_THREADS=$threads exec "${cmd[@]}"
