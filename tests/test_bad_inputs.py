"""The catalogue of bad inputs: each one, run through the real command line, ends in exit code 2
and one line on stderr that says what is wrong (the regex below).

To add a row: append a ``Case`` to ``CASES``. ``argv`` is what follows ``affect-rl``; ``{tmp}``
in it becomes the test's temporary folder. ``files`` are written there first (name -> text);
``setup`` (optional) prepares anything else, e.g. a finished run, given that folder.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml
from pipeline_fixtures import finish_on_disk, write_pipeline

from affect_rl.cli import main
from affect_rl.config import load_stage_config
from affect_rl.run_identity import resolved_config, write_identity

SFT = "recipes/demo/sft.yaml"
GRPO = "recipes/demo/grpo.yaml"


@dataclass
class Case:
    name: str
    argv: list[str]
    message: str  # a regex searched in the one stderr line
    files: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None


def pipeline_yaml(*stages: dict) -> str:
    return yaml.safe_dump({"name": "bad", "stages": list(stages)})


def finished_pipeline_with_new_learning_rate(tmp: Path) -> None:
    recipe = write_pipeline(tmp)
    finish_on_disk(recipe, tmp / "run")
    write_pipeline(tmp, sft={"learning_rate": 5e-4})


def finished_sft_folder(tmp: Path) -> None:
    """A standalone SFT output folder written with the demo recipe's learning rate."""
    cfg = load_stage_config("sft", SFT, ["--output_dir", str(tmp / "sft")])
    write_identity(tmp / "sft", resolved_config(cfg))


def pipeline_locked_by_live_process(tmp: Path) -> None:
    recipe = write_pipeline(tmp)
    finish_on_disk(recipe, tmp / "run")
    (tmp / "run" / ".affect_rl.lock").write_text(json.dumps({"pid": 1, "host": socket.gethostname(),
                                                             "since": "2024-01-01T00:00:00"}))


def pipeline_with_stages(*stages: dict) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        write_pipeline(tmp, stages=list(stages))
    return setup


SFT_STAGE = {"name": "sft", "stage": "sft", "config": "sft.yaml"}
PIPELINE = ["pipeline", "{tmp}/pipeline.yaml", "--output_dir", "{tmp}/run"]

CASES = [
    # ---- values (affect_rl/config.py) ----
    Case("nan learning rate", ["sft", "--config", SFT, "--learning_rate", "nan"],
         r"'learning_rate' must be a finite number, got nan"),
    Case("inf learning rate in yaml", ["sft", "--config", "{tmp}/r.yaml"],
         r"r\.yaml: 'learning_rate' must be a finite number, got inf", files={"r.yaml": "learning_rate: .inf\n"}),
    Case("zero batch size", ["sft", "--config", SFT, "--per_device_train_batch_size", "0"],
         r"'per_device_train_batch_size' must be positive, got 0"),
    Case("negative gradient accumulation", ["sft", "--config", SFT, "--gradient_accumulation_steps", "-1"],
         r"'gradient_accumulation_steps' must be positive, got -1"),
    Case("max_steps zero", ["sft", "--config", SFT, "--max_steps", "0"],
         r"'max_steps' must be -1 \(train for num_train_epochs\) or at least 1, got 0"),
    Case("max_steps 1.5 in yaml", ["sft", "--config", "{tmp}/r.yaml"],
         r"r\.yaml: 'max_steps' expects int, got 1\.5 \(float\)", files={"r.yaml": "max_steps: 1.5\n"}),
    Case("zero generations", ["grpo", "--config", GRPO, "--num_generations", "0"],
         r"'num_generations' must be positive, got 0"),
    Case("duplicated yaml key", ["sft", "--config", "{tmp}/r.yaml"],
         r"r\.yaml: duplicated key 'learning_rate' on line 3 \(first on line 1\): keep one",
         files={"r.yaml": "learning_rate: 1e-4\nmax_steps: 2\nlearning_rate: 1e-3\n"}),
    Case("recipe not utf-8", ["sft", "--config", "{tmp}/r.yaml"], r"r\.yaml is not UTF-8 text .*save it as UTF-8",
         files={"r.yaml": "task: \udce9motion\n"}),
    Case("4-bit without LoRA", ["sft", "--config", SFT, "--load_in_4bit", "true"],
         r"load_in_4bit needs use_peft: true"),
    Case("4-bit and 8-bit", ["sft", "--config", SFT, "--load_in_4bit", "true", "--load_in_8bit", "true"],
         r"load_in_4bit and load_in_8bit are exclusive"),
    Case("resume from a missing checkpoint", ["sft", "--config", SFT, "--output_dir", "{tmp}/out",
                                             "--resume_from_checkpoint", "{tmp}/out/checkpoint-9"],
         r"resume_from_checkpoint '.*checkpoint-9' cannot be resumed: it does not exist"),
    # ---- run identity (affect_rl/run_identity.py, affect_rl/stage.py) ----
    Case("standalone stage into a folder trained with another config",
         ["sft", "--config", SFT, "--output_dir", "{tmp}/sft", "--learning_rate", "3e-4"],
         r"sft holds a run with a different config \(training\.learning_rate: 0\.0001 -> 0\.0003\).*move that folder "
         r"aside \(or pass another --output_dir\)", setup=finished_sft_folder),
    Case("pipeline re-run with a changed stage recipe", PIPELINE,
         r"run/sft holds a run with a different config \(training\.learning_rate: 0\.001 -> 0\.0005\).*"
         r"pass --restart sft", setup=finished_pipeline_with_new_learning_rate),
    Case("second run on a locked folder", PIPELINE,
         r"run is in use by another affect-rl run \(pid 1 on .*delete .*\.affect_rl\.lock",
         setup=pipeline_locked_by_live_process),
    # ---- pipeline recipes (affect_rl/pipeline.py) ----
    Case("mistyped stage key", PIPELINE, r"stages\[1\] \(sft\): unknown keys \['overides'\] \(did you mean 'overrides'\?\)",
         setup=pipeline_with_stages({**SFT_STAGE, "overides": {"max_steps": 1}})),
    Case("unknown top-level key", PIPELINE, r"unknown top-level keys \['stage'\] \(did you mean 'stages'\?\)",
         files={"pipeline.yaml": yaml.safe_dump({"stage": [SFT_STAGE], "stages": [SFT_STAGE]})}),
    Case("duplicate stage names", PIPELINE, r"stages\[2\]: two stages are named 'sft'",
         setup=pipeline_with_stages(SFT_STAGE, SFT_STAGE)),
    Case("stage name climbing out of the run", PIPELINE, r"stage name '\.\./x' becomes a folder name",
         setup=pipeline_with_stages({**SFT_STAGE, "name": "../x"})),
    Case("stage name with a slash", PIPELINE, r"stage name 'a/b' becomes a folder name",
         setup=pipeline_with_stages({**SFT_STAGE, "name": "a/b"})),
    Case("eval of a skipped stage that never ran", [*PIPELINE, "--skip", "sft", "--skip", "grpo"],
         r"Stage 'eval' uses stage 'sft', which is skipped \(--skip sft\) but not done \(never run\)",
         setup=lambda tmp: write_pipeline(tmp)),
    Case("restart of an unknown stage", [*PIPELINE, "--restart", "sfft"], r"--restart \['sfft'\]: no such stage",
         setup=lambda tmp: write_pipeline(tmp)),
    Case("skip and restart the same stage", [*PIPELINE, "--skip", "sft", "--restart", "sft"],
         r"--skip and --restart both name \['sft'\]", setup=lambda tmp: write_pipeline(tmp)),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys):
    for name, text in case.files.items():
        (tmp_path / name).write_text(text, encoding="utf-8", errors="surrogateescape")
    if case.setup:
        case.setup(tmp_path)
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in case.argv]
    code = main(argv)
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert re.search(case.message, lines[0]), lines[0]
