"""Where the launchers' servers listen, and that API keys never reach a command line or a log.

Local launchers bind 127.0.0.1 unless told otherwise (with a warning when the opened server has
no API key); Slurm servers bind their node's name (the address the trainers use), not every
interface; keys come from the environment only. Parsed from the ``--dry-run`` output (the
machinery of test_dry_run.py), plus one real run of train.slurm with a stand-in ``srun`` that
records each step's arguments and environment.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from test_dry_run import GRPO_RECIPE, SLURM_ENV, dry_run, run_script, split_env, srun_options, stage_config, \
    accelerate_args, vllm_serve_args  # fmt: skip

SECRET = "sk-test-0123456789abcdef"
WARNING = "without an API key"


@pytest.fixture(autouse=True)
def no_keys_in_the_environment(monkeypatch):
    for name in ("AFFECT_RL_JUDGE_API_KEY", "VLLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    # serve_local.sh needs `transformers` on PATH: the one beside this Python.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


# ── launch/local.sh: trl vllm-serve ──


def test_local_rollout_server_binds_loopback_by_default():
    result = run_script("launch/local.sh", "--dry-run", "--gpus", "2", "grpo", "--config", GRPO_RECIPE)
    commands = dry_run("launch/local.sh", "--gpus", "2", "grpo", "--config", GRPO_RECIPE)
    assert vllm_serve_args(split_env(commands["vllm"])[1]).host == "127.0.0.1"
    assert WARNING not in result.stderr


def test_local_rollout_server_opened_with_a_warning_and_trainers_still_reach_it():
    args = ["--gpus", "2", "--vllm-host", "0.0.0.0", "grpo", "--config", GRPO_RECIPE]
    result = run_script("launch/local.sh", "--dry-run", *args)
    assert "the vLLM server listens on 0.0.0.0:8000 without an API key" in result.stderr
    commands = dry_run("launch/local.sh", *args)
    assert vllm_serve_args(split_env(commands["vllm"])[1]).host == "0.0.0.0"
    training = stage_config(accelerate_args(split_env(commands["train"])[1])).training
    assert training.vllm_server_host == "127.0.0.1" and commands["wait"] == ["http://127.0.0.1:8000/health"]


# ── launch/judge/serve_local.sh and serve_vllm.sh ──


@pytest.mark.parametrize("script", ["launch/judge/serve_local.sh", "launch/judge/serve_vllm.sh"])
def test_judges_bind_loopback_by_default_and_warn_when_opened_without_a_key(script):
    model = [] if script.endswith("serve_local.sh") else ["Qwen/Qwen2.5-7B-Instruct"]
    default = run_script(script, "--dry-run", *model)
    assert default.returncode == 0, default.stderr
    assert option(dry_run(script, *model)["judge"], "--host") == "127.0.0.1" and WARNING not in default.stderr
    opened = run_script(script, "--dry-run", "--host", "0.0.0.0", *model)
    assert option(dry_run(script, "--host", "0.0.0.0", *model)["judge"], "--host") == "0.0.0.0"
    assert f"the judge listens on 0.0.0.0:8000 {WARNING}" in opened.stderr


@pytest.mark.parametrize("variable", ["AFFECT_RL_JUDGE_API_KEY", "VLLM_API_KEY"])
def test_serve_vllm_takes_the_key_from_the_environment_and_never_prints_it(monkeypatch, variable):
    monkeypatch.setenv(variable, SECRET)
    result = run_script("launch/judge/serve_vllm.sh", "--dry-run", "--host", "0.0.0.0", "M")
    assert result.returncode == 0 and WARNING not in result.stderr
    assert "API key: required (from the environment, not shown)" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    assert "--api-key" not in dry_run("launch/judge/serve_vllm.sh", "M")["judge"]


@pytest.mark.parametrize(
    "args", [["--api-key", SECRET, "M"], ["M", "--", "--api-key", SECRET], ["--api-key=" + SECRET, "M"]]
)
def test_serve_vllm_refuses_a_key_on_the_command_line(args):
    result = run_script("launch/judge/serve_vllm.sh", "--dry-run", *args)
    assert result.returncode == 2 and "export AFFECT_RL_JUDGE_API_KEY" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_judge_slurm_binds_its_node_name(monkeypatch):
    monkeypatch.setenv("AFFECT_RL_JUDGE_API_KEY", SECRET)
    result = run_script("launch/judge/judge.slurm", "--dry-run", "M")
    commands = dry_run("launch/judge/judge.slurm", "M")
    host = os.uname().nodename
    assert option(commands["judge"], "--host") == host and commands["wait"][0] == f"http://{host}:8000/health,"
    assert SECRET not in result.stdout + result.stderr and WARNING not in result.stderr


# ── launch/slurm/train.slurm ──

JUDGE_ARGS = ["--judge-model", "Qwen/Qwen2.5-32B-Instruct",
              "grpo", "--config", GRPO_RECIPE, "--model_name_or_path", "m"]  # fmt: skip


def test_slurm_servers_bind_their_node_names_and_the_judge_key_is_never_shown(monkeypatch):
    monkeypatch.setenv("AFFECT_RL_JUDGE_API_KEY", SECRET)
    result = run_script("launch/slurm/train.slurm", "--dry-run", *JUDGE_ARGS, env=SLURM_ENV)
    commands = dry_run("launch/slurm/train.slurm", *JUDGE_ARGS, env=SLURM_ENV)
    _, rollout = srun_options(commands["srun vllm"])
    _, judge = srun_options(commands["srun judge"])
    assert vllm_serve_args(rollout).host == "gpu004" and option(judge, "--host") == "big7"
    assert commands["wait"] == ["http://gpu004:8000/health", "http://big7:8000/health"]
    assert "judge API key: required" in result.stdout and WARNING not in result.stderr
    assert SECRET not in result.stdout + result.stderr and "--api-key" not in judge


def test_slurm_warns_about_an_open_judge_and_an_all_interfaces_bind():
    no_key = run_script("launch/slurm/train.slurm", "--dry-run", *JUDGE_ARGS, env=SLURM_ENV)
    assert f"the judge listens on big7:8000 {WARNING}" in no_key.stderr
    everywhere = run_script("launch/slurm/train.slurm", "--dry-run", "--server-host", "0.0.0.0", *JUDGE_ARGS,
                            env=SLURM_ENV)  # fmt: skip
    assert "the vLLM rollout server listens on 0.0.0.0:8000" in everywhere.stderr
    commands = dry_run("launch/slurm/train.slurm", "--server-host", "0.0.0.0", *JUDGE_ARGS, env=SLURM_ENV)
    assert option(srun_options(commands["srun judge"])[1], "--host") == "0.0.0.0"
    assert commands["env"]["AFFECT_RL_JUDGE_URL"] == "http://big7:8000/v1"  # trainers still use the node's name


def test_slurm_refuses_a_judge_key_argument():
    result = run_script("launch/slurm/train.slurm", "--dry-run", "--judge-arg", "--api-key", "--judge-arg", SECRET,
                        *JUDGE_ARGS, env=SLURM_ENV)  # fmt: skip
    assert result.returncode == 2 and "do not pass --api-key" in result.stderr


def test_slurm_gives_the_key_to_the_judge_step_only_through_its_environment(tmp_path, monkeypatch):
    """A real (not dry) run with a stand-in srun that records each step, then the servers time out."""
    record = tmp_path / "steps"
    record.mkdir()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    srun = fake_bin / "srun"
    srun.write_text(
        "#!/usr/bin/env bash\n"
        "role=other\n"
        'for arg in "$@"; do case $arg in --output=*judge*) role=judge ;; --output=*vllm*) role=vllm ;; esac; done\n'
        '{ echo "ARGS $*"; echo "VLLM_API_KEY=${VLLM_API_KEY-unset}";'
        ' echo "AFFECT_RL_JUDGE_API_KEY=${AFFECT_RL_JUDGE_API_KEY-unset}"; } > "$RECORD/$role"\n'
        "exec sleep 30\n"
    )
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("AFFECT_RL_JUDGE_API_KEY", SECRET)
    monkeypatch.setenv("VLLM_API_KEY", "a-key-for-something-else")
    env = {**SLURM_ENV, "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}", "RECORD": str(record),
           "AFFECT_RL_HEALTH_POLL_S": "0.2"}  # fmt: skip
    result = run_script("launch/slurm/train.slurm", "--server-timeout", "1", "--log-dir", str(tmp_path / "logs"),
                        *JUDGE_ARGS, env=env)  # fmt: skip
    assert result.returncode == 1 and "did not answer" in result.stderr  # no real servers here
    judge, rollout = (record / "judge").read_text(), (record / "vllm").read_text()
    assert f"VLLM_API_KEY={SECRET}" in judge and "vllm serve" in judge
    # The rollout server's `vllm serve` must not require a key TRL's client never sends.
    assert "VLLM_API_KEY=unset" in rollout and "trl vllm-serve" in rollout
    assert SECRET not in judge.split("\n")[0] + rollout.split("\n")[0]  # never an argument
    assert SECRET not in result.stdout + result.stderr
