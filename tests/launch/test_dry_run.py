"""``--dry-run`` of launch/local.sh and launch/slurm/train.slurm: the node / GPU split, the flags,
and the vLLM server address handed to the trainers. Every printed command is parsed back with the
parser of the program it calls (accelerate launch, trl vllm-serve, affect-rl's stage config)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GRPO_RECIPE = "recipes/demo/grpo.yaml"
SFT_RECIPE = "recipes/demo/sft.yaml"
SLURM_REQUEUE_TAGS = {"on USR1", "then requeue"}  # the save-and-requeue plan (tests/launch/test_requeue.py)


def run_script(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "NCCL"))}
    return subprocess.run(["bash", str(ROOT / script), *args], cwd=ROOT, capture_output=True, text=True,
                          env={**clean, **(env or {})}, timeout=120)


def dry_run(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Tag -> command (argv) of each ``[TAG] command`` line the dry run prints; ``[env] K=V``
    lines are gathered under ``"env"`` as a dict of the variables exported to every step and
    ``[wait] URL`` lines (servers polled before training starts) under ``"wait"`` as a list."""
    result = run_script(script, "--dry-run", *args, env=env)
    assert result.returncode == 0, result.stderr
    commands = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"\[([^\]]+)\] (.*)", line)
        if not match:
            continue
        tag, command = match.group(1), shlex.split(match.group(2))
        if tag == "env":
            commands.setdefault("env", {}).update([command[0].split("=", 1)])
        elif tag == "wait":
            commands.setdefault("wait", []).extend(command)
        else:
            assert tag not in commands, f"tag printed twice: {line}"
            commands[tag] = command
    return commands


def split_env(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """``env A=1 B=2 prog ...`` -> ({A: 1, B: 2}, [prog, ...])."""
    assert argv[0] == "env", argv
    variables = {}
    rest = argv[1:]
    while "=" in rest[0]:
        key, value = rest.pop(0).split("=", 1)
        variables[key] = value
    return variables, rest


def accelerate_args(argv: list[str]):
    """The namespace `accelerate launch` builds from ``argv`` (which starts with accelerate launch)."""
    from accelerate.commands.launch import launch_command_parser

    assert argv[:2] == ["accelerate", "launch"], argv
    return launch_command_parser().parse_args(argv[2:])


def validated(namespace):
    """The namespace after accelerate merged in its --config_file (what its launcher acts on)."""
    from accelerate.commands.launch import _validate_launch_command

    return _validate_launch_command(namespace)[0]


def stage_config(namespace):
    """The affect-rl stage config the trainers would build from an accelerate launch namespace."""
    from affect_rl.config import load_stage_config

    assert namespace.module and namespace.training_script == "affect_rl.cli"
    stage, config_flag, config, *overrides = namespace.training_script_args
    assert config_flag == "--config"
    return load_stage_config(stage, config, overrides)


def vllm_serve_args(argv: list[str]):
    """The ScriptArguments `trl vllm-serve` parses from ``argv``."""
    from trl.scripts.vllm_serve import make_parser

    assert argv[:2] == ["trl", "vllm-serve"], argv
    script_args, unparsed = make_parser().parse_args_and_config(argv[2:], return_remaining_strings=True)
    assert unparsed == []
    return script_args


def srun_options(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """``srun --a=1 --b=2 prog ...`` -> ({--a: 1, --b: 2}, [prog, ...])."""
    assert argv[0] == "srun"
    options = {}
    index = 1
    while argv[index].startswith("--"):
        key, _, value = argv[index].partition("=")
        options[key] = value
        index += 1
    return options, argv[index:]


# ── launch/local.sh ──


def test_local_server_mode_splits_gpus_and_points_trainers_at_the_server():
    commands = dry_run("launch/local.sh", "--gpus", "8", "--vllm-tp", "2", "--vllm-port", "8123",
                       "grpo", "--config", GRPO_RECIPE, "--learning_rate", "1e-6")
    assert set(commands) == {"vllm", "wait", "train"}
    assert commands["wait"] == ["http://127.0.0.1:8123/health"]
    server_env, server = split_env(commands["vllm"])
    train_env, train = split_env(commands["train"])
    assert server_env["CUDA_VISIBLE_DEVICES"] == "6,7"
    assert train_env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3,4,5"

    served = vllm_serve_args(server)
    assert (served.model, served.tensor_parallel_size, served.data_parallel_size, served.port) == (
        "runs/demo/sft", 2, 1, 8123)  # the recipe's model_name_or_path: the policy's starting point

    launch = accelerate_args(train)
    assert (launch.num_processes, launch.num_machines, launch.config_file) == (6, 1, "launch/accelerate/zero2.yaml")
    training = stage_config(launch).training
    assert (training.use_vllm, training.vllm_mode) == (True, "server")
    assert (training.vllm_server_host, training.vllm_server_port) == ("127.0.0.1", 8123)
    assert training.learning_rate == 1e-6  # the user's override survives


def test_local_one_gpu_defaults_to_colocated_vllm():
    commands = dry_run("launch/local.sh", "--gpus", "1", "--vllm-mem", "0.4", "grpo", "--config", GRPO_RECIPE)
    assert set(commands) == {"train"}
    train_env, train = split_env(commands["train"])
    assert train_env["CUDA_VISIBLE_DEVICES"] == "0"
    launch = accelerate_args(train)
    assert launch.num_processes == 1
    training = stage_config(launch).training
    assert (training.use_vllm, training.vllm_mode, training.vllm_gpu_memory_utilization) == (True, "colocate", 0.4)


def test_local_sft_uses_every_gpu_and_no_vllm():
    commands = dry_run("launch/local.sh", "--gpus", "4", "--accelerate", "ddp", "sft", "--config", SFT_RECIPE)
    train_env, train = split_env(commands["train"])
    assert set(commands) == {"train"} and train_env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"
    launch = accelerate_args(train)
    assert (launch.num_processes, launch.config_file) == (4, "launch/accelerate/ddp.yaml")
    assert launch.training_script_args == ["sft", "--config", SFT_RECIPE]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gpus", "1", "--vllm", "server", "grpo", "--config", GRPO_RECIPE], "use --vllm colocate"),
        (["--gpus", "2", "--vllm", "server", "--vllm-tp", "2", "grpo", "--config", GRPO_RECIPE], "more than 2 GPUs"),
        (["--gpus", "2", "--vllm", "colocate", "sft", "--config", SFT_RECIPE], "GRPO only"),
        (["--gpus", "2", "--accelerate", "zero4", "sft", "--config", SFT_RECIPE], "unknown accelerate config"),
        (["--gpus", "2", "grpo", "--learning_rate", "1"], "pass the recipe"),
        (["--gpu", "2", "grpo", "--config", GRPO_RECIPE], "unknown option '--gpu'"),
        (["--gpus", "2", "grpo", "--config", "missing.yaml"], "pass --vllm-model"),
    ],
)
def test_local_refuses_impossible_layouts(args, message):
    result = run_script("launch/local.sh", "--dry-run", *args)
    assert result.returncode == 2
    assert message in result.stderr


# ── launch/slurm/train.slurm ──

SLURM_ENV = {"SLURM_JOB_NODELIST": "gpu[001-004],big7", "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "affect-rl",
             "SLURM_GPUS_ON_NODE": "8"}


def test_slurm_splits_training_vllm_and_judge_nodes():
    commands = dry_run("launch/slurm/train.slurm", "--vllm-tp", "4", "--judge-model", "Qwen/Qwen2.5-32B-Instruct",
                       "--judge-arg", "--max-model-len", "--judge-arg", "8192",
                       "grpo", "--config", GRPO_RECIPE, "--model_name_or_path", "runs/x/sft", env=SLURM_ENV)
    train_nodes = ["gpu001", "gpu002", "gpu003"]
    assert set(commands) == {"env", "wait", "srun vllm", "srun judge", "srun train", *SLURM_REQUEUE_TAGS} | {
        f"{n} train" for n in train_nodes}
    assert commands["wait"] == ["http://gpu004:8000/health", "http://big7:8000/health"]

    vllm_options, vllm = srun_options(commands["srun vllm"])
    assert vllm_options["--nodelist"] == "gpu004" and vllm_options["--kill-on-bad-exit"] == "1"
    served = vllm_serve_args(vllm)
    assert (served.model, served.tensor_parallel_size, served.port) == ("runs/x/sft", 4, 8000)

    judge_options, judge = srun_options(commands["srun judge"])
    assert judge_options["--nodelist"] == "big7" and judge_options["--kill-on-bad-exit"] == "1"
    assert judge[:3] == ["vllm", "serve", "Qwen/Qwen2.5-32B-Instruct"]
    assert judge[judge.index("--tensor-parallel-size") + 1] == "8" and judge[-2:] == ["--max-model-len", "8192"]

    train_options, _ = srun_options(commands["srun train"])
    assert train_options["--nodelist"] == ",".join(train_nodes)
    assert (train_options["--nodes"], train_options["--ntasks"], train_options["--ntasks-per-node"]) == ("3", "3", "1")
    assert (train_options["--kill-on-bad-exit"], train_options["--wait"]) == ("1", "60")
    logs = {vllm_options["--output"], judge_options["--output"], train_options["--output"]}
    assert logs == {f"logs/affect-rl-4242/{role}-%N.log" for role in ("vllm", "judge", "train")}  # %N: one per node

    for rank, node in enumerate(train_nodes):
        launch = accelerate_args(commands[f"{node} train"])
        assert (launch.machine_rank, launch.num_machines, launch.num_processes) == (rank, 3, 24)
        assert (launch.main_process_ip, launch.main_process_port, launch.rdzv_backend) == ("gpu001", 29500, "static")
        assert launch.config_file == "launch/accelerate/zero3.yaml" and launch.max_restarts == 0
        merged = validated(launch)  # + the config file's settings, as accelerate merges them
        # torchrun on every node (srun starts them), not DeepSpeed's pdsh launcher with a hostfile
        assert (merged.use_deepspeed, merged.zero_stage, merged.deepspeed_multinode_launcher) == (True, 3, "standard")
        training = stage_config(launch).training
        assert (training.use_vllm, training.vllm_mode) == (True, "server")
        assert (training.vllm_server_host, training.vllm_server_port) == ("gpu004", 8000)

    assert commands["env"] == {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "1", "NCCL_ASYNC_ERROR_HANDLING": "1",
                               "NCCL_DEBUG": "WARN", "AFFECT_RL_JUDGE_URL": "http://big7:8000/v1",
                               "AFFECT_RL_STOP_FILE": commands["on USR1"][1]}


def test_slurm_sft_trains_on_every_node_without_servers():
    env = {**SLURM_ENV, "SLURM_JOB_NODELIST": "node[1-2]", "SLURM_GPUS_ON_NODE": "4"}
    commands = dry_run("launch/slurm/train.slurm", "--accelerate", "zero2", "sft", "--config", SFT_RECIPE, env=env)
    assert set(commands) == {"env", "srun train", "node1 train", "node2 train", *SLURM_REQUEUE_TAGS}
    for rank, node in enumerate(["node1", "node2"]):
        launch = accelerate_args(commands[f"{node} train"])
        assert (launch.machine_rank, launch.num_machines, launch.num_processes) == (rank, 2, 8)
        assert launch.config_file == "launch/accelerate/zero2.yaml"
        assert launch.training_script_args == ["sft", "--config", SFT_RECIPE]


def test_slurm_colocate_trains_on_every_node():
    env = {**SLURM_ENV, "SLURM_JOB_NODELIST": "a,b"}
    commands = dry_run("launch/slurm/train.slurm", "--vllm", "colocate", "--vllm-tp", "2", "grpo",
                       "--config", GRPO_RECIPE, env=env)
    assert set(commands) == {"env", "srun train", "a train", "b train", *SLURM_REQUEUE_TAGS}
    training = stage_config(accelerate_args(commands["b train"])).training
    assert (training.vllm_mode, training.vllm_tensor_parallel_size) == ("colocate", 2)


@pytest.mark.parametrize(
    "nodelist, args, message",
    [
        ("gpu[1-2]", ["--judge-model", "J"], "none for training"),
        ("gpu[1-3]", ["--vllm-tp", "4", "--vllm-dp", "4"], "exceeds the 8 GPUs"),
        ("gpu[1-3]", ["--judge-tp", "16", "--judge-model", "J"], "exceeds the 8 GPUs"),
    ],
)
def test_slurm_refuses_impossible_layouts(nodelist, args, message):
    env = {**SLURM_ENV, "SLURM_JOB_NODELIST": nodelist}
    result = run_script("launch/slurm/train.slurm", "--dry-run", *args, "grpo", "--config", GRPO_RECIPE,
                        "--model_name_or_path", "m", env=env)
    assert result.returncode == 2
    assert message in result.stderr


def test_slurm_outside_a_job_needs_dry_run():
    result = run_script("launch/slurm/train.slurm", "sft", "--config", SFT_RECIPE)
    assert result.returncode == 2 and "submit with sbatch" in result.stderr


def test_train_node_takes_its_rank_from_its_name():
    def rank_on(node: str) -> subprocess.CompletedProcess:
        return run_script("launch/slurm/train_node.sh", "--dry-run", "n1,n2,n3", "--num_machines", "3", "x.py",
                          env={"SLURMD_NODENAME": node})

    assert rank_on("n3").stdout.split() == ["[n3", "train]", "accelerate", "launch", "--machine_rank", "2",
                                            "--num_machines", "3", "x.py"]
    refused = rank_on("n9")
    assert refused.returncode == 2 and "not one of the training nodes" in refused.stderr


@pytest.mark.parametrize(
    "nodelist, hosts",
    [
        ("gpu[001-003]", ["gpu001", "gpu002", "gpu003"]),
        ("gpu[01-02,07],cpu1", ["gpu01", "gpu02", "gpu07", "cpu1"]),
        ("a,b[9-10]", ["a", "b9", "b10"]),
        ("node7", ["node7"]),
    ],
)
def test_expand_nodelist(nodelist, hosts):
    script = f"source launch/lib.sh; expand_nodelist {shlex.quote(nodelist)}"
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.stdout.split() == hosts
