"""Reward registry: classes registered by name, options with defaults, ranges, and errors that list what is accepted."""

import inspect
import pickle

import pytest

import rewards
from rewards.base import Reward
from rewards.errors import ConfigError
from rewards.registry import register


def test_available_lists_the_rewards_sorted():
    names = rewards.available()
    assert names == sorted(names)
    assert set(names) == {"accuracy", "au_consistency", "au_f1", "calibration", "emotion_wheel", "format", "length",
                          "rubric", "tag_count"}  # fmt: skip


def test_options_are_the_keyword_parameters_with_their_defaults():
    assert rewards.spec("format").options == {"template": "r1", "duplicate_penalty": 1.0, "anchor": "full", "strip": True}
    assert rewards.spec("length").options == {
        "template": "r1", "reasoning_span": None, "answer_span": None, "max_length": 512, "buffer": None,
        "min_think_words": None, "max_answer_words": None,
    }  # fmt: skip
    assert rewards.spec("calibration").options["invalid_score"] == -5.0
    accepted = rewards.spec("emotion_wheel").accepted()
    assert accepted["level"] == "one of 'level1', 'level2'"
    assert accepted["family_penalty"] == "a number in [0, 1]"
    assert accepted["max_words"] == "an integer >= 1 or null"
    assert accepted["wheels"] == "a list of integers in [1, 5]"


@pytest.mark.parametrize("name", rewards.available())
def test_every_reward_has_a_summary_a_range_a_source_and_a_docstring(name):
    spec = rewards.spec(name)
    low, high = spec.value_range
    assert low < high and spec.summary and spec.source
    assert inspect.getdoc(spec.cls), f"{name} has no docstring (formula, range, source)"
    parameters = list(inspect.signature(spec.cls.__init__).parameters.values())[1:]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY and p.annotation is not p.empty for p in parameters)


@pytest.mark.parametrize("name", rewards.available())
def test_every_reward_pickles_and_keeps_its_trl_name(name):
    reward = rewards.build(name)
    assert reward.__name__ == name
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == name and clone.options() == reward.options()


def test_build_returns_an_instance_that_scores():
    reward = rewards.build("tag_count", template="kardia")
    assert reward.__name__ == "tag_count"
    assert reward(prompts=[""], completions=["<|emotion_begin|>joy<|emotion_end|>"]) == [0.25]


def test_unknown_reward_suggests_the_closest_name_and_lists_all():
    with pytest.raises(ConfigError, match=r"Unknown reward 'au_f2'\. Did you mean 'au_f1'\?.*calibration.*path/to/file.py"):
        rewards.build("au_f2")


def test_unknown_option_lists_the_accepted_options_with_defaults():
    with pytest.raises(ConfigError, match=r"no option 'templte'.*Did you mean 'template'.*template \(default 'r1'\)"):
        rewards.check_options("format", {"templte": "r1"})


def test_check_options_checks_types_and_ranges_and_normalises():
    assert rewards.check_options("emotion_wheel", {"wheels": [2, 1], "family_penalty": 1}) == {
        "wheels": (2, 1), "family_penalty": 1.0}
    with pytest.raises(ConfigError, match=r"Reward 'format': option template must be one of 'r1'.*got 'json'"):
        rewards.check_options("format", {"template": "json"})


def test_register_is_a_bare_class_decorator_that_refuses_incomplete_classes():
    class Nameless(Reward):
        def __call__(self, prompts, completions, **columns):
            return []

    with pytest.raises(TypeError, match="name, summary, value_range, source"):
        register(Nameless)

    class Other(Reward):
        name, summary, value_range, source = "format", "clash", (0.0, 1.0), "test"

    with pytest.raises(RuntimeError, match="registered twice"):
        register(Other)
