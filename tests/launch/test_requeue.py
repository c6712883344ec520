"""launch/slurm/train.slurm under Slurm's time limit: SIGUSR1 -> the trainers save a checkpoint
through the stop file -> ``scontrol requeue``; the requeued job resumes from the last checkpoint.

The dry run shows the plan; the signal path itself runs for real, with stand-ins for ``srun``
(a trainer that waits for the stop file as ``affect_rl.health`` does) and ``scontrol``."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from test_dry_run import ROOT, SFT_RECIPE, accelerate_args, dry_run, stage_config

SCRIPT = "launch/slurm/train.slurm"


def test_the_batch_script_asks_slurm_for_the_warning_signal_and_requeue():
    directives = [line.split("#", 2)[1].split()[1] for line in (ROOT / SCRIPT).read_text().splitlines()
                  if line.startswith("#SBATCH")]
    assert {"--signal=B:USR1@300", "--requeue", "--open-mode=append"} <= set(directives)


def trainer_command(commands):
    """The accelerate launch namespace of the first training node."""
    return accelerate_args(next(argv for tag, argv in commands.items() if tag.endswith(" train")
                                and tag != "srun train"))


@pytest.mark.parametrize("restart_count, expected", [(None, None), ("0", None), ("1", "last")])
def test_a_requeued_job_resumes_from_the_last_checkpoint(restart_count, expected):
    env = {"SLURM_JOB_NODELIST": "gpu[01-02]", "SLURM_JOB_ID": "4242"}
    if restart_count is not None:
        env["SLURM_RESTART_COUNT"] = restart_count
    commands = dry_run(SCRIPT, "sft", "--config", SFT_RECIPE, env=env)
    stop_file = str(ROOT / "logs" / "affect-rl-4242" / "save-checkpoint-and-stop")
    assert commands["env"]["AFFECT_RL_STOP_FILE"] == stop_file
    assert commands["on USR1"] == ["touch", stop_file]
    assert commands["then requeue"] == ["scontrol", "requeue", "4242"]
    assert stage_config(trainer_command(commands)).training.resume_from_checkpoint == expected


def test_an_explicit_resume_choice_is_kept_on_requeue():
    env = {"SLURM_JOB_NODELIST": "gpu01", "SLURM_JOB_ID": "7", "SLURM_RESTART_COUNT": "2"}
    commands = dry_run(SCRIPT, "sft", "--config", SFT_RECIPE, "--resume_from_checkpoint",
                       "runs/x/checkpoint-4", env=env)
    launch = trainer_command(commands)
    assert launch.training_script_args.count("--resume_from_checkpoint") == 1
    assert launch.training_script_args[-1] == "runs/x/checkpoint-4"


FAKE_SRUN = """#!/bin/bash
# A training step: like affect_rl.health, save and stop once the stop file appears.
touch "$RECORD/started"
for _ in $(seq 600); do
    if [[ -e $AFFECT_RL_STOP_FILE ]]; then echo "saved checkpoint" >> "$RECORD/trainer"; exit 130; fi
    sleep 0.05
done
exit 0
"""
FAKE_SCONTROL = """#!/bin/bash
if [[ $1 == show ]]; then echo "${3//,/$'\\n'}"; exit 0; fi
echo "$*" >> "$RECORD/scontrol"
"""


@pytest.mark.parametrize("signal_name, requeued", [("SIGUSR1", True), ("SIGTERM", False)])
def test_the_signal_saves_through_the_stop_file_then_requeues_on_usr1_only(tmp_path, signal_name, requeued):
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "NCCL"))}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", RECORD=str(record), SLURM_JOB_NODELIST="node01",
               SLURM_JOB_ID="4242", SLURM_GPUS_ON_NODE="1")
    log_dir = tmp_path / "logs"
    job = subprocess.Popen(["bash", str(ROOT / SCRIPT), "--log-dir", str(log_dir), "sft",
                            "--config", SFT_RECIPE], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while not (record / "started").exists():
        assert job.poll() is None and time.time() < deadline, job.stdout.read() if job.poll() is not None else ""
        time.sleep(0.05)
    job.send_signal(getattr(signal, signal_name))
    output, _ = job.communicate(timeout=60)
    assert (record / "trainer").read_text() == "saved checkpoint\n", output
    assert (log_dir / "save-checkpoint-and-stop").exists()
    scontrol = (record / "scontrol").read_text() if (record / "scontrol").exists() else ""
    assert scontrol == ("requeue 4242\n" if requeued else ""), output
    assert job.returncode == 130, output  # the training step's status
