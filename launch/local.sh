#!/usr/bin/env bash
# One node, N GPUs: train with accelerate, with GRPO rollouts from vLLM.
#
#   launch/local.sh [OPTIONS] STAGE --config RECIPE [--key value ...]
#
# Everything from STAGE on is passed to `affect-rl STAGE` unchanged (recipe overrides included).
# vLLM modes (GRPO):
#   server    `trl vllm-serve` on the last TP x DP GPUs, training on the others (default, >= 2 GPUs)
#   colocate  vLLM inside every training process, sharing its GPU (default on 1 GPU)
#   off       HF generate (slow; no vLLM needed)
#
# Examples:
#   launch/local.sh sft --config recipes/demo/sft.yaml                       # all GPUs, ZeRO-2
#   launch/local.sh --gpus 8 --vllm-tp 2 grpo --config recipes/demo/grpo.yaml  # 6 train + 2 vLLM
#   launch/local.sh --vllm colocate --accelerate zero3 grpo --config RECIPE --max_steps 100
#   launch/local.sh --dry-run --gpus 8 grpo --config RECIPE                    # print, run nothing
#
# Options:
#   --gpus N             GPUs to use (default: all that nvidia-smi lists)
#   --accelerate NAME    ddp | zero2 | zero3 | fsdp (launch/accelerate/NAME.yaml) or a YAML path (default zero2)
#   --vllm MODE          server | colocate | off (GRPO only; default server with >= 2 GPUs, else colocate)
#   --vllm-tp N          vLLM tensor-parallel size (default 1)
#   --vllm-dp N          vLLM data-parallel size, server mode (default 1; TRL: keep 1 for dense models)
#   --vllm-port P        vLLM server port (default 8000)
#   --vllm-host H        address the vLLM server binds (default 127.0.0.1: this machine only; it takes
#                        no API key, so another address prints a warning)
#   --vllm-mem F         GPU memory fraction for vLLM (server: its GPUs; colocate: shared, TRL default 0.3)
#   --vllm-model M       checkpoint the server loads (default: the recipe's model_name_or_path; a LoRA
#                        adapter folder is merged first into M-merged by `affect-rl export --merge`)
#   --server-timeout S   seconds to wait for the vLLM server to answer (default 900)
#   --log-dir DIR        where vllm.log and train.log go (default logs/local-DATE-TIME)
#   --dry-run            print the exact commands and exit
set -euo pipefail

LAUNCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$LAUNCH_DIR/lib.sh"

gpus="" accelerate=zero2 vllm_mode="" tp=1 dp=1 port=8000 vllm_host=127.0.0.1 mem="" vllm_model="" timeout=900
EXPORT_CMD=()
log_dir="logs/local-$(date +%Y%m%d-%H%M%S)" dry_run=0
while (($#)); do
    case $1 in
        --gpus) gpus=$2; shift 2 ;;
        --accelerate) accelerate=$2; shift 2 ;;
        --vllm) vllm_mode=$2; shift 2 ;;
        --vllm-tp) tp=$2; shift 2 ;;
        --vllm-dp) dp=$2; shift 2 ;;
        --vllm-port) port=$2; shift 2 ;;
        --vllm-host) vllm_host=$2; shift 2 ;;
        --vllm-mem) mem=$2; shift 2 ;;
        --vllm-model) vllm_model=$2; shift 2 ;;
        --server-timeout) timeout=$2; shift 2 ;;
        --log-dir) log_dir=$2; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h | --help) usage ;;
        sft | grpo) break ;;
        *) echo "error: unknown option '$1' (launcher options come before the stage)" >&2; usage 2 ;;
    esac
done
(($#)) || die "name the stage: launch/local.sh [OPTIONS] sft|grpo --config RECIPE [--key value ...]"
stage=$1
shift
stage_args=("$@")
[[ -n $(stage_arg config "$@") ]] || die "pass the recipe: launch/local.sh ... $stage --config RECIPE"

if [[ -z $gpus ]]; then
    command -v nvidia-smi >/dev/null || die "nvidia-smi not found: pass --gpus N"
    gpus=$(nvidia-smi -L | grep -c '^GPU')
fi
require_int --gpus "$gpus" 1
require_int --vllm-tp "$tp" 1
require_int --vllm-dp "$dp" 1
config_file=$(accelerate_config "$accelerate")

if [[ $stage == sft ]]; then
    [[ -z $vllm_mode ]] || die "--vllm applies to GRPO only (SFT generates nothing)"
    vllm_mode=none
elif [[ -z $vllm_mode ]]; then
    vllm_mode=$( ((gpus >= 2)) && echo server || echo colocate)
fi

server_gpus=0
case $vllm_mode in
    none) ;;
    off) stage_args+=(--use_vllm false) ;;
    colocate)
        stage_args+=(--use_vllm true --vllm_mode colocate --vllm_tensor_parallel_size "$tp")
        [[ -z $mem ]] || stage_args+=(--vllm_gpu_memory_utilization "$mem")
        ;;
    server)
        server_gpus=$((tp * dp))
        ((gpus > server_gpus)) || die "server mode needs more than $server_gpus GPUs ($tp x $dp for vLLM + training); use --vllm colocate"
        # The trainers run here: they reach a server on 0.0.0.0 through loopback.
        connect_host=$vllm_host
        [[ $vllm_host != 0.0.0.0 ]] || connect_host=127.0.0.1
        stage_args+=(--use_vllm true --vllm_mode server --vllm_server_host "$connect_host" --vllm_server_port "$port")
        ;;
    *) die "--vllm must be server, colocate or off, got '$vllm_mode'" ;;
esac

train_gpus=$((gpus - server_gpus))
train_ids=$(seq -s, 0 $((train_gpus - 1)))
train_cmd=(env "CUDA_VISIBLE_DEVICES=$train_ids" accelerate launch --config_file "$config_file"
    --num_machines 1 --num_processes "$train_gpus" -m affect_rl.cli "$stage" "${stage_args[@]}")

if [[ $vllm_mode == server ]]; then
    server_ids=$(seq -s, "$train_gpus" $((gpus - 1)))
    [[ -n $vllm_model ]] || vllm_model=$(rollout_model "${stage_args[@]}")
    merged_for_vllm "$vllm_model"
    vllm_rollout_server "$VLLM_MODEL" "$port" "$tp" "$dp" "$mem" "$vllm_host"
    warn_exposed "vLLM server" "$vllm_host" "$port" 0 "trl vllm-serve takes no API key"
    server_cmd=(env "CUDA_VISIBLE_DEVICES=$server_ids" "${SERVER_CMD[@]}")
fi

summary="$gpus GPUs: training on $train_ids ($train_gpus processes, $config_file)"
[[ $vllm_mode != server ]] || summary+=", vLLM server on $server_ids (tp=$tp, dp=$dp, port $port)"
[[ $vllm_mode != colocate ]] || summary+=", vLLM colocated in each training process (tp=$tp)"
echo "# affect-rl local launch: $summary"

if ((dry_run)); then
    ((${#EXPORT_CMD[@]} == 0)) || show export "${EXPORT_CMD[@]}"
    [[ $vllm_mode != server ]] || { show vllm "${server_cmd[@]}"; echo "[wait] http://$connect_host:$port/health"; }
    show train "${train_cmd[@]}"
    exit 0
fi

mkdir -p "$log_dir"
echo "logs: $log_dir"
if [[ $vllm_mode != server ]]; then
    "${train_cmd[@]}" 2>&1 | tee "$log_dir/train.log"
    exit "${PIPESTATUS[0]}"
fi
((${#EXPORT_CMD[@]} == 0)) || "${EXPORT_CMD[@]}" 2>&1 | tee "$log_dir/export.log"
# Without VLLM_API_KEY: the `vllm serve` inside trl vllm-serve would refuse TRL's client without a key.
(unset VLLM_API_KEY; exec "${server_cmd[@]}") >"$log_dir/vllm.log" 2>&1 &
server_pid=$!
trap 'stop_jobs "vllm=$server_pid"' INT TERM
wait_for_server "vLLM server" "http://$connect_host:$port" "$server_pid" "$timeout" || { stop_jobs "vllm=$server_pid"; exit 1; }
"${train_cmd[@]}" > >(tee "$log_dir/train.log") 2>&1 &
supervise $! "vLLM server=$server_pid"
