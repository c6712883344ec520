# Shared by launch/local.sh, launch/slurm/train.slurm and launch/judge/*.sh (sourced, not run).
# Commands are built as bash arrays, printed exactly as they would run (--dry-run) and run as is.

# usage [STATUS]: print the running script's header comment (lines 2 up to `set -euo`) and exit.
usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit "${1:-0}"
}

die() {
    echo "error: $*" >&2
    exit 2
}

# quote_args ARG...: one shell-safe line; plain words stay unquoted so the line reads like a command.
quote_args() {
    local arg out=()
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
            out+=("$arg")
        else
            out+=("'${arg//\'/\'\\\'\'}'")
        fi
    done
    echo "${out[*]}"
}

# show TAG ARG...: print "[TAG] command" (the dry-run format the tests parse).
show() {
    local tag=$1
    shift
    echo "[$tag] $(quote_args "$@")"
}

require_int() {  # require_int NAME VALUE MIN
    [[ $2 =~ ^[0-9]+$ ]] && (($2 >= $3)) || die "$1 must be an integer >= $3, got '$2'"
}

# accelerate_config NAME_OR_PATH: ddp | zero2 | zero3 | fsdp -> launch/accelerate/NAME.yaml; a path stays.
accelerate_config() {
    local name=$1
    if [[ -f $name ]]; then
        echo "$name"
    elif [[ -f $LAUNCH_DIR/accelerate/$name.yaml ]]; then
        echo "${LAUNCH_DIR#"$PWD"/}/accelerate/$name.yaml"
    else
        die "unknown accelerate config '$name': use ddp, zero2, zero3, fsdp or a YAML file path"
    fi
}

# stage_arg KEY STAGE_ARGS...: the value of --KEY VALUE or --KEY=VALUE in the stage's arguments.
stage_arg() {
    local key=$1 found=""
    shift
    while (($#)); do
        case $1 in
            "--$key") found=${2:-}; (($# < 2)) || shift ;;
            "--$key="*) found=${1#*=} ;;
        esac
        shift
    done
    echo "$found"
}

# rollout_model STAGE_ARGS...: the checkpoint the vLLM server must load = the policy's starting
# point: --model_name_or_path if given, else the recipe's model_name_or_path (affect-rl's default
# model when the recipe has none), with built-in aliases resolved to their local folder.
rollout_model() {
    local config model
    config=$(stage_arg config "$@")
    model=$(stage_arg model_name_or_path "$@")
    python - "$config" "$model" <<'PY' || die "cannot find the model to serve: pass --vllm-model MODEL"
import sys

try:
    import yaml
    from affect_rl.models import DEFAULT_MODEL, resolve_model_path

    config, model = sys.argv[1], sys.argv[2]
    if not model and config:
        with open(config) as recipe:
            model = (yaml.safe_load(recipe) or {}).get("model_name_or_path")
    print(resolve_model_path(model or DEFAULT_MODEL))
except Exception as error:  # one line; the caller says how to get around it
    sys.exit(f"{type(error).__name__}: {error}")
PY
}

# merged_for_vllm MODEL: vLLM cannot load a LoRA adapter folder (one with adapter_config.json, e.g.
# an SFT stage run with use_peft), so its server gets the merged weights. Sets VLLM_MODEL (MODEL, or
# MODEL-merged for an adapter) and EXPORT_CMD (the `affect-rl export --merge` that writes
# MODEL-merged, run before the server starts; empty for a full model).
merged_for_vllm() {
    local model=$1
    VLLM_MODEL=$model EXPORT_CMD=()
    if [[ -f $model/adapter_config.json ]]; then
        VLLM_MODEL=${model%/}-merged
        EXPORT_CMD=(python -m affect_rl.cli export --model "$model" --merge --output "$VLLM_MODEL" --overwrite)
    fi
}

# vllm_rollout_server MODEL PORT TP DP MEM HOST: the `trl vllm-serve` command (TRL 1.16 flags),
# listening on HOST only. trl vllm-serve adds the flags TRL's trainers need (weight-transfer
# engine, processed logprobs, VLLM_SERVER_DEV_MODE=1) for the installed vLLM version, so it is
# preferred over plain `vllm serve`. It takes no API key: keep it on an address only the trainers use.
vllm_rollout_server() {
    local model=$1 port=$2 tp=$3 dp=$4 mem=$5 host=$6
    SERVER_CMD=(trl vllm-serve --model "$model" --tensor_parallel_size "$tp" --data_parallel_size "$dp"
        --host "$host" --port "$port")
    [[ -z $mem ]] || SERVER_CMD+=(--gpu_memory_utilization "$mem")
}

# ── Server exposure and API keys ──
# Servers bind an address, never 0.0.0.0 unless asked. API keys come from the environment only:
# they never appear on a command line (visible in `ps`) nor in a printed command or log.

is_loopback() {  # is_loopback HOST: true for addresses only this machine can reach
    [[ $1 == 127.* || $1 == localhost || $1 == ::1 ]]
}

# judge_api_key: the judge's API key from the environment (AFFECT_RL_JUDGE_API_KEY, else
# VLLM_API_KEY), or nothing. The caller exports it; nothing prints it.
judge_api_key() {
    echo "${AFFECT_RL_JUDGE_API_KEY:-${VLLM_API_KEY:-}}"
}

# warn_exposed NAME HOST PORT HAS_KEY [WHY]: a warning on stderr when NAME listens beyond loopback
# without an API key (WHY says why there is none, e.g. the server takes no key).
warn_exposed() {
    local name=$1 host=$2 port=$3 has_key=$4 why=${5:-"export AFFECT_RL_JUDGE_API_KEY (or VLLM_API_KEY) to require one"}
    is_loopback "$host" || ((has_key)) || \
        echo "warning: the $name listens on $host:$port without an API key: anyone who can reach that address can use it ($why)" >&2
}

# refuse_api_key_args ARG...: die if an API key is passed as an argument (it would show in `ps` and logs).
refuse_api_key_args() {
    local arg
    for arg in "$@"; do
        [[ $arg != --api-key && $arg != --api-key=* ]] || \
            die "do not pass --api-key: a key on a command line shows in \`ps\` and in logs; export AFFECT_RL_JUDGE_API_KEY (or VLLM_API_KEY) instead"
    done
}

# wait_for_server NAME URL PID TIMEOUT_S: poll URL/health until it answers; return 1 if PID exits
# first or TIMEOUT_S passes (the caller stops the other jobs).
wait_for_server() {
    local name=$1 url=$2 pid=$3 timeout=$4 start=$SECONDS poll=${AFFECT_RL_HEALTH_POLL_S:-10}
    echo "waiting for the $name at $url/health (up to ${timeout}s)"
    until curl -sf -o /dev/null "$url/health"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: the $name exited before answering at $url; see its log" >&2
            return 1
        fi
        if ((SECONDS - start >= timeout)); then
            echo "error: the $name did not answer at $url within ${timeout}s; see its log" >&2
            return 1
        fi
        sleep "$poll"
    done
    echo "the $name is up after $((SECONDS - start))s"
}

# supervise MAIN_PID NAME=PID...: wait for the first background job to end. If training (MAIN_PID)
# ends, stop the servers and return its status; if a server ends first, stop everything and fail,
# so a dead vLLM or judge node never leaves the trainers hanging until the job's time limit.
supervise() {
    local main=$1 entry pid status
    shift
    while true; do
        wait -n || true
        if ! kill -0 "$main" 2>/dev/null; then
            wait "$main" && status=0 || status=$?
            stop_jobs "$@"
            return "$status"
        fi
        for entry in "$@"; do
            pid=${entry#*=}
            if ! kill -0 "$pid" 2>/dev/null; then
                echo "error: the ${entry%=*} (pid $pid) exited while training was running; stopping the job" >&2
                stop_jobs "main=$main" "$@"
                return 1
            fi
        done
    done
}

stop_jobs() {  # stop_jobs NAME=PID...: SIGTERM (srun forwards it to its tasks), then reap
    local entry
    for entry in "$@"; do kill -TERM "${entry#*=}" 2>/dev/null || true; done
    for entry in "$@"; do wait "${entry#*=}" 2>/dev/null || true; done
}

# expand_nodelist LIST: one host per line, e.g. "gpu[01-03,07],cpu1" -> gpu01 gpu02 gpu03 gpu07 cpu1.
# Uses scontrol where Slurm is installed; the fallback covers prefix[ranges] forms for --dry-run.
expand_nodelist() {
    local list=$1 prefix range lo hi i
    if command -v scontrol >/dev/null 2>&1; then
        scontrol show hostnames "$list"
        return
    fi
    while [[ -n $list ]]; do
        if [[ $list =~ ^([^,\[]+)\[([^]]+)\],? ]]; then
            prefix=${BASH_REMATCH[1]}
            IFS=, read -ra ranges <<<"${BASH_REMATCH[2]}"
            for range in "${ranges[@]}"; do
                if [[ $range == *-* ]]; then
                    lo=${range%-*} hi=${range#*-}
                    for ((i = 10#$lo; i <= 10#$hi; i++)); do printf '%s%0*d\n' "$prefix" "${#lo}" "$i"; done
                else
                    echo "$prefix$range"
                fi
            done
        elif [[ $list =~ ^([^,]+),? ]]; then
            echo "${BASH_REMATCH[1]}"
        else
            die "cannot parse the node list '$1'"
        fi
        list=${list:${#BASH_REMATCH[0]}}
    done
}
