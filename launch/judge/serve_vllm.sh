#!/usr/bin/env bash
# The production judge on one node: `vllm serve MODEL`, an OpenAI-compatible server the rubric
# rewards call from the training job (same node on spare GPUs, or another host).
#
#   launch/judge/serve_vllm.sh [OPTIONS] MODEL [-- EXTRA VLLM ARGS]
#
# Training then points the reward at it: set `base_url: http://HOST:PORT/v1` and `model: MODEL`
# in the recipe, or export AFFECT_RL_JUDGE_URL=http://HOST:PORT/v1 (overrides base_url).
#
# Exposure: it binds 127.0.0.1 (this machine only) unless --host opens it (0.0.0.0, or this
# node's name or address for trainers on other nodes). The API key comes from the environment
# only: AFFECT_RL_JUDGE_API_KEY (the variable the rubric reward sends) or VLLM_API_KEY, passed to
# vLLM as VLLM_API_KEY; it never appears on the command line or in the printed command. An opened
# judge without a key prints a warning. (vLLM checks the key on /v1 only; /health stays open.)
#
# Examples:
#   launch/judge/serve_vllm.sh Qwen/Qwen2.5-7B-Instruct                          # all GPUs, 127.0.0.1:8000
#   AFFECT_RL_JUDGE_API_KEY=$(openssl rand -hex 16) launch/judge/serve_vllm.sh --host "$(hostname)" MODEL
#   CUDA_VISIBLE_DEVICES=6,7 launch/judge/serve_vllm.sh --tp 2 Qwen/Qwen2.5-32B-Instruct
#   launch/judge/serve_vllm.sh --port 8001 MODEL -- --max-num-seqs 256
#   launch/judge/serve_vllm.sh --dry-run Qwen/Qwen2.5-7B-Instruct                # print, run nothing
#
# Options:
#   --tp N           tensor-parallel size (default: the GPUs in CUDA_VISIBLE_DEVICES, else all)
#   --port P         port (default 8000)
#   --host H         bind address (default 127.0.0.1; this node's name or 0.0.0.0 for trainers elsewhere)
#   --mem F          GPU memory fraction for weights + KV cache (default 0.9)
#   --max-len N      max model length in tokens (default 8192: judge prompts are short)
#   --dry-run        print the command and exit
set -euo pipefail

LAUNCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$LAUNCH_DIR/lib.sh"

tp="" port=8000 host=127.0.0.1 mem=0.9 max_len=8192 dry_run=0 model="" extra=()
while (($#)); do
    case $1 in
        --tp) tp=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --host) host=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --max-len) max_len=$2; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        --api-key | --api-key=*) refuse_api_key_args "$1" ;;
        -h|--help) usage 0 ;;
        --) shift; extra=("$@"); break ;;
        -*) echo "error: unknown option '$1'" >&2; usage 2 ;;
        *) [[ -z $model ]] || die "one MODEL only (got '$model' and '$1'); extra vLLM arguments go after --"
           model=$1; shift ;;
    esac
done
[[ -n $model ]] || { echo "error: MODEL is missing" >&2; usage 2; }
refuse_api_key_args "${extra[@]}"
if [[ -z $tp ]]; then
    if [[ -n ${CUDA_VISIBLE_DEVICES:-} ]]; then
        IFS=, read -ra visible <<<"$CUDA_VISIBLE_DEVICES"
        tp=${#visible[@]}
    else
        tp=$({ nvidia-smi -L 2>/dev/null || true; } | grep -c '^GPU' || true)
        if ((tp == 0)); then
            ((dry_run)) || die "no GPU found (nvidia-smi lists none): vLLM needs CUDA GPUs; on a CPU use launch/judge/serve_local.sh"
            tp=1
        fi
    fi
fi
require_int --tp "$tp" 1
require_int --port "$port" 1
require_int --max-len "$max_len" 1

cmd=(vllm serve "$model" --host "$host" --port "$port" --tensor-parallel-size "$tp"
    --gpu-memory-utilization "$mem" --max-model-len "$max_len")
cmd+=("${extra[@]}")
api_key=$(judge_api_key)

show judge "${cmd[@]}"
warn_exposed "judge" "$host" "$port" "$([[ -n $api_key ]] && echo 1 || echo 0)"
[[ -z $api_key ]] || echo "# API key: required (from the environment, not shown); the trainers send AFFECT_RL_JUDGE_API_KEY"
url_host=$host
[[ $host != 0.0.0.0 ]] || url_host=$(hostname)
echo "# base_url: http://$url_host:$port/v1   model: $model"
((dry_run)) && exit 0
command -v vllm >/dev/null || die "\`vllm\` is not on PATH: pip install 'affect-rl[vllm]' (needs a CUDA GPU)"
[[ -z $api_key ]] || export VLLM_API_KEY=$api_key
exec "${cmd[@]}"
