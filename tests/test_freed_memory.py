import subprocess
import sys

import pytest
from tiny_recipes import tiny_grpo_trainer, tiny_recipe

# Allocate 64 MiB, then report glibc's mmapped bytes while it lives and the heap's free bytes after it is freed.
PROBE = """
import ctypes, sys
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
if sys.argv[1] == "on":
    from affect_rl.freed_memory import keep_freed_memory
    assert keep_freed_memory()
import torch
block = torch.ones(64 * 2**20, dtype=torch.uint8)
mapped = libc.mallinfo2().hblkhd
del block
print(mapped >> 20, libc.mallinfo2().fordblks >> 20)
"""


def allocation(setting: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, setting], capture_output=True, text=True, check=True).stdout
    return tuple(int(value) for value in out.split())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_large_blocks_come_from_the_heap_and_stay_there_once_freed():
    mapped, kept = allocation("off")
    assert mapped >= 64 and kept < 64  # glibc's default: fresh pages, unmapped on free
    mapped, kept = allocation("on")
    assert mapped < 64 and kept >= 64


def test_grpo_stage_keeps_freed_memory_on_cpu_when_asked(tiny_model_dir, emotion_file, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("affect_rl.freed_memory.keep_freed_memory", lambda: calls.append(True))
    tiny_grpo_trainer(tiny_model_dir, emotion_file, tmp_path, keep_freed_memory=False)
    assert calls == []
    tiny_grpo_trainer(tiny_model_dir, emotion_file, tmp_path)
    assert calls == [True]
    monkeypatch.setattr("affect_rl.hardware.cuda_available", lambda: True)  # a GPU run leaves the C library alone
    tiny_grpo_trainer(tiny_model_dir, emotion_file, tmp_path)
    assert calls == [True]


def test_sft_stage_keeps_freed_memory_on_cpu_when_asked(tiny_model_dir, emotion_file, tmp_path, monkeypatch):
    from affect_rl import sft

    calls = []
    monkeypatch.setattr("affect_rl.freed_memory.keep_freed_memory", lambda: calls.append(True))
    monkeypatch.setattr("affect_rl.sft.run_training", lambda trainer, cfg: None)
    monkeypatch.setattr("affect_rl.sft.finish_stage", lambda *args: None)
    sft.run(tiny_recipe(tiny_model_dir, emotion_file, tmp_path / "off", keep_freed_memory=False))
    assert calls == []
    sft.run(tiny_recipe(tiny_model_dir, emotion_file, tmp_path / "on"))
    assert calls == [True]
