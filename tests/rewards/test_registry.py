"""Reward registry: names, options with defaults, ranges, and errors that list what is accepted."""

import pytest

import rewards
from rewards.errors import ConfigError


def test_available_lists_the_rule_rewards_sorted():
    names = rewards.available()
    assert names == sorted(names)
    assert {"format", "tag_count", "au_f1", "au_consistency", "length", "calibration"} <= set(names)


def test_options_are_the_factory_keywords_with_their_defaults():
    assert rewards.spec("format").options == {"template": "r1", "duplicate_penalty": 1.0}
    assert rewards.spec("length").options == {
        "max_length": 512, "buffer": None, "min_think_words": None, "max_answer_words": None,
        "think_tag": "think", "answer_tag": "answer",
    }  # fmt: skip
    assert rewards.spec("calibration").options["invalid_score"] == -5.0


@pytest.mark.parametrize("name", rewards.available())
def test_every_reward_has_a_summary_a_range_and_a_docstring(name):
    reward = rewards.spec(name)
    low, high = reward.value_range
    assert low < high and reward.summary
    assert reward.factory.__doc__, f"{name}'s factory has no docstring (formula, range, source)"


def test_build_names_the_function_for_trl_logging():
    reward_fn = rewards.build("tag_count", template="kardia")
    assert reward_fn.__name__ == "tag_count"
    assert reward_fn(prompts=[""], completions=["<|emotion_begin|>joy<|emotion_end|>"]) == [0.25]


def test_unknown_reward_suggests_the_closest_name_and_lists_all():
    with pytest.raises(ConfigError, match=r"Unknown reward 'au_f2'\. Did you mean 'au_f1'\?.*calibration"):
        rewards.build("au_f2")


def test_unknown_option_lists_the_accepted_options_with_defaults():
    with pytest.raises(ConfigError, match=r"no option 'templte'.*Did you mean 'template'.*template \(default 'r1'\)"):
        rewards.check_options("format", {"templte": "r1"})
