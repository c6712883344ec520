"""A GRPO recipe's rewards are checked against its stage when the config is built, before any model loads."""

import pickle

import pytest

from affect_rl.config import build_stage_config, load_stage_config, task_gold_columns, validate_rewards
from affect_rl.errors import ConfigError
from affect_rl.grpo import reward_functions_with_diagnostics


def grpo(values: dict, source: str = "grpo.yaml"):
    return build_stage_config("grpo", {"dataset": "demo:empathy", "template": "kardia", **values}, source)


def test_weights_come_from_the_entries_unless_the_recipe_sets_them():
    cfg = grpo({"rewards": [{"name": "accuracy", "weight": 2}, {"name": "format", "weight": 0.2}]})
    assert cfg.training.reward_weights == [2.0, 0.2]
    cfg = grpo({"rewards": [{"name": "accuracy"}], "reward_weights": [0.5]})
    assert cfg.training.reward_weights == [0.5]


def test_stage_options_are_filled_from_the_stage():
    cfg = grpo({"rewards": [{"name": "accuracy"}, {"name": "length"}], "max_completion_length": 64})
    accuracy, length = validate_rewards(cfg)
    assert accuracy.options == {"template": "kardia", "label_column": "emotion"}
    assert length.options == {"template": "kardia", "max_length": 64}


@pytest.mark.parametrize(
    "rewards, message",
    [
        ([{"name": "format", "template": "r1"}], "grpo.yaml: rewards[1]: Reward 'format': option template is 'r1' but the stage renders template 'kardia'"),
        ([{"name": "length", "max_length": 4096}], "grpo.yaml: rewards[1]: Reward 'length': option max_length is 4096 but max_completion_length is 512"),
        ([{"name": "calibration"}], "grpo.yaml: rewards[1]: Reward 'calibration': option template must be a template with a confidence span"),
        ([{"name": "format", "weight": float("nan")}], "grpo.yaml: rewards[1]: weight must be a finite number"),
        ([{"name": "format"}, {"name": "format", "weight": "1e400"}], "grpo.yaml: rewards[2]: weight must be a finite number"),
        ([{"name": "emotion_whel"}], "grpo.yaml: rewards[1]: Unknown reward 'emotion_whel'. Did you mean 'emotion_wheel'?"),
        ([{"name": "emotion_wheel", "levle": "level2"}], "no option 'levle'. Did you mean 'level'?"),
        ([], "grpo.yaml: a GRPO stage needs `rewards:`"),
    ],
)  # fmt: skip
def test_contradictions_and_bad_entries_fail_before_any_model_loads(rewards, message):
    with pytest.raises(ConfigError) as caught:
        grpo({"rewards": rewards, "model_name_or_path": "/no/such/model"})
    assert message in str(caught.value)


def test_the_shipped_grpo_recipes_validate():
    for recipe in ("recipes/demo/grpo.yaml", "recipes/kardia_r1/grpo.yaml"):
        cfg = load_stage_config("grpo", recipe)
        entries = validate_rewards(cfg)
        assert len(entries) == len(cfg.recipe.rewards) == len(cfg.training.reward_weights)


def test_the_stage_s_reward_functions_pickle_and_log_the_task_gold():
    cfg = grpo({"rewards": [{"name": "accuracy"}, {"name": "format", "weight": 0.2}]})
    functions = reward_functions_with_diagnostics(cfg)
    assert [fn.__name__ for fn in functions] == ["accuracy", "format"]
    clone = pickle.loads(pickle.dumps(functions[0]))
    logged, extra = {}, {}
    text = "<|understanding_begin|>u<|understanding_end|><|reasoning_begin|>r<|reasoning_end|>" \
           "<|emotion_begin|>sad<|emotion_end|><|response_begin|>ok<|response_end|>"  # fmt: skip
    scores = clone(["p", "p"], [text, "no spans"], emotion=["sad", "joy"], log_metric=logged.__setitem__,
                   log_extra=extra.__setitem__)  # fmt: skip
    assert scores == [1.0, 0.0]
    assert logged == {"hacking/format_failure_rate": 0.5, "hacking/answer_list_length": 0.5}
    assert extra == {"gold": ['"sad"', '"joy"']}
    assert task_gold_columns("choice") == ("options", "answer") and task_gold_columns("facial") == ("emotion", "aus")
