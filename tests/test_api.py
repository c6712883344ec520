"""The Python API, through the README's own example (run on the tiny model)."""

import re
from pathlib import Path

import pytest

from affect_rl import api
from affect_rl.errors import ConfigError, DataError

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_example_trains_sft_then_grpo_and_evaluates(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = readme_example().replace('"smollm2-135m-instruct"', repr(tiny_model_dir))
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    report = namespace["report"]
    assert list(report["checkpoints"]) == ["sft", "grpo"] and report["n_rows"] == 1
    assert "grpo-sft" in report["differences"]
    assert (tmp_path / "runs/api/sft/heldout.jsonl").read_text().count("\n") == 1  # held_out was held out
    trainer_state = (tmp_path / "runs/api/grpo/trainer_state.json").read_text()
    assert '"rewards/brevity/mean"' in trainer_state  # the plain function reached TRL beside the recipe's
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert float(printed) == report["summary"]["grpo-sft"]["ew_f_level1"]


def test_a_stage_config_comes_from_a_dict_a_path_or_itself(tmp_path):
    recipe = tmp_path / "sft.yaml"
    recipe.write_text("task: emotion\nlearning_rate: 2.0e-5\n")
    from_path = api.stage_config("sft", str(recipe), max_steps=3)
    from_dict = api.stage_config("sft", {"task": "emotion", "learning_rate": 2e-5}, max_steps=3)
    assert (from_path.training.learning_rate, from_path.training.max_steps) == (2e-5, 3)
    assert from_dict.training.learning_rate == from_path.training.learning_rate
    assert api.stage_config("sft", from_path) is from_path
    with pytest.raises(ConfigError, match="not both"):
        api.stage_config("sft", from_path, max_steps=4)
    with pytest.raises(ConfigError, match="unknown key 'learnin_rate'.*Did you mean 'learning_rate'"):
        api.stage_config("sft", {"task": "emotion", "learnin_rate": 1e-4})
    given = api.stage_config("sft", {"task": "emotion"}, rows_given=True)
    assert given.data.dataset == "python:rows"


def test_rows_from_python_are_checked_like_a_file(tiny_model_dir, tmp_path):
    from affect_rl import sft

    with pytest.raises(DataError, match=r"the train_dataset argument, row 2, field 'emotions'"):
        sft.run({"task": "emotion", "model_name_or_path": tiny_model_dir, "output_dir": str(tmp_path / "s")},
                train_dataset=[{"text": "a", "emotions": ["joy"]}, {"text": "b"}])
