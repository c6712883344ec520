"""The real (not dry-run) paths of launch/slurm/train.slurm and launch/local.sh, with stand-ins for
srun, accelerate, trl, vllm and curl on PATH: one log per node, servers stopped when training
ends, and the whole job failing fast when any training node or server exits."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FAKES = {
    # srun: run the step's command once per --nodelist node (SLURMD_NODENAME set, output to
    # --output with %N = node); non-zero if any task is; SIGTERM is passed on to the tasks.
    "srun": r"""
nodes="" output=/dev/stdout
while [[ $1 == --* ]]; do
    case $1 in --nodelist=*) nodes=${1#*=} ;; --output=*) output=${1#*=} ;; esac
    shift
done
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; exit 143' TERM
IFS=, read -ra list <<<"$nodes"
for node in "${list[@]}"; do
    SLURMD_NODENAME=$node "$@" >"${output//%N/$node}" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
""",
    # accelerate: log its arguments, run FAKE_TRAIN_SECONDS, fail on FAKE_FAIL_NODE.
    "accelerate": r"""
echo "accelerate on ${SLURMD_NODENAME:-local} (pid $$): $*"
echo $$ >>"$FAKE_PIDS"
trap 'kill $! 2>/dev/null; exit 143' TERM
sleep "${FAKE_TRAIN_SECONDS:-1}" & wait $!
[[ ${SLURMD_NODENAME:-local} != "${FAKE_FAIL_NODE:-none}" ]] || exit 7
echo "training finished"
""",
    # trl / vllm: a server that runs FAKE_SERVER_SECONDS, then exits with FAKE_SERVER_EXIT.
    "trl": r"""
echo "$(basename "$0") on ${SLURMD_NODENAME:-local} (pid $$): $*"
echo $$ >>"$FAKE_PIDS"
trap 'kill $! 2>/dev/null; exit 143' TERM
sleep "${FAKE_SERVER_SECONDS:-300}" & wait $!
exit "${FAKE_SERVER_EXIT:-0}"
""",
    "curl": "exit 0  # every server answers /health at once\n",
}


@pytest.fixture
def fake_path(tmp_path):
    """Environment with the stand-ins first on PATH and a file collecting their pids."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {**FAKES, "vllm": FAKES["trl"]}.items():
        (bin_dir / name).write_text("#!/usr/bin/env bash\n" + body)
        (bin_dir / name).chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "FAKE"))}
    return {**clean, "PATH": f"{bin_dir}:{clean['PATH']}", "FAKE_PIDS": str(tmp_path / "pids"),
            "AFFECT_RL_HEALTH_POLL_S": "1"}


def run(script: str, args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = subprocess.run(["bash", str(ROOT / script), *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    return result, time.monotonic() - start


def assert_all_stopped(env: dict[str, str]) -> None:
    """No stand-in (server or trainer) outlives the launcher."""
    pids = [int(p) for p in Path(env["FAKE_PIDS"]).read_text().split()]
    time.sleep(0.5)
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists() and "Z" not in status_of(pid)]
    for pid in alive:
        os.kill(pid, 9)
    assert not alive, f"left running: {alive}"


def status_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


def slurm(tmp_path, env, **fake) -> tuple[subprocess.CompletedProcess, float]:
    env = {**env, "SLURM_JOB_NODELIST": "gpu[1-4]", "SLURM_JOB_ID": "77", **{k: str(v) for k, v in fake.items()}}
    args = ["--log-dir", str(tmp_path / "logs"), "--judge-model", "judge-model", "--vllm-model", "policy",
            "grpo", "--config", "recipes/demo/grpo.yaml"]
    return run("launch/slurm/train.slurm", args, env)


def test_slurm_success_writes_a_log_per_node_and_stops_the_servers(tmp_path, fake_path):
    result, _ = slurm(tmp_path, fake_path, FAKE_TRAIN_SECONDS=1)
    assert result.returncode == 0, result.stdout + result.stderr
    logs = {p.name: p.read_text() for p in (tmp_path / "logs").iterdir()}
    assert set(logs) == {"train-gpu1.log", "train-gpu2.log", "vllm-gpu3.log", "judge-gpu4.log"}
    assert "--machine_rank 1 " in logs["train-gpu2.log"] and "training finished" in logs["train-gpu2.log"]
    assert "--vllm_server_host gpu3" in logs["train-gpu1.log"]
    assert logs["vllm-gpu3.log"].startswith("trl on gpu3") and logs["judge-gpu4.log"].startswith("vllm on gpu4")
    assert_all_stopped(fake_path)


def test_slurm_one_failing_training_node_fails_the_job(tmp_path, fake_path):
    result, seconds = slurm(tmp_path, fake_path, FAKE_TRAIN_SECONDS=1, FAKE_FAIL_NODE="gpu2")
    assert result.returncode == 7, result.stdout + result.stderr
    assert seconds < 30
    assert_all_stopped(fake_path)


def test_slurm_a_dying_server_stops_training_at_once(tmp_path, fake_path):
    result, seconds = slurm(tmp_path, fake_path, FAKE_TRAIN_SECONDS=300, FAKE_SERVER_SECONDS=2, FAKE_SERVER_EXIT=3)
    assert result.returncode == 1
    assert "exited while training was running" in result.stderr
    assert seconds < 30  # not the trainers' 300 s
    assert_all_stopped(fake_path)


def test_local_server_mode_fails_fast_and_keeps_logs(tmp_path, fake_path):
    env = {**fake_path, "FAKE_TRAIN_SECONDS": "300", "FAKE_SERVER_SECONDS": "2", "FAKE_SERVER_EXIT": "1"}
    args = ["--gpus", "4", "--vllm-model", "policy", "--log-dir", str(tmp_path / "logs"),
            "grpo", "--config", "recipes/demo/grpo.yaml"]
    result, seconds = run("launch/local.sh", args, env)
    assert result.returncode == 1 and seconds < 30
    assert "CUDA_VISIBLE_DEVICES" not in (tmp_path / "logs" / "vllm.log").read_text()  # env is not an argument
    assert "--num_processes 3" in (tmp_path / "logs" / "train.log").read_text()
    assert_all_stopped(fake_path)


def test_local_success(tmp_path, fake_path):
    args = ["--gpus", "2", "--vllm-model", "policy", "--log-dir", str(tmp_path / "logs"),
            "grpo", "--config", "recipes/demo/grpo.yaml"]
    result, _ = run("launch/local.sh", args, {**fake_path, "FAKE_TRAIN_SECONDS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "training finished" in (tmp_path / "logs" / "train.log").read_text()
    assert_all_stopped(fake_path)
