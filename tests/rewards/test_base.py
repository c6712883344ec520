"""The reward base class: options checked from the signature, one message style, pickling, stage filling."""

import pickle
from typing import Literal

import pytest

from rewards.base import Above, Annotated, AtLeast, Between, Reward, StageContext, check_options, fill_from_stage
from rewards.errors import ConfigError


class Probe(Reward):
    name, summary, value_range, source = "probe", "test reward", (0.0, 1.0), "tests"

    def __init__(
        self,
        *,
        level: Literal["level1", "level2"] = "level1",
        cap: Annotated[int, AtLeast(1)] | None = None,
        penalty: Annotated[float, Between(0, 1)] = 0.0,
        eps: Annotated[float, Above(0)] = 1e-3,
        wheels: tuple[int, ...] = (1, 2),
        strict: bool = False,
        template: str = "r1",
        label_column: str = "label",
        max_length: int | None = 512,
    ):
        if cap is not None and cap > 10 and strict:
            raise self.option_error("cap", "at most 10 when strict is true", cap)
        self.level, self.cap, self.penalty, self.eps, self.wheels = level, cap, penalty, eps, wheels
        self.strict, self.template, self.label_column, self.max_length = strict, template, label_column, max_length

    def __call__(self, prompts, completions, **columns):
        return [self.penalty for _ in completions]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"levle": "level1"}, "Reward 'probe' has no option 'levle'. Did you mean 'level'? Accepted options: level "
                              "(default 'level1'), cap (default None)"),
        ({"level": "level3"}, "Reward 'probe': option level must be one of 'level1', 'level2'; got 'level3'."),
        ({"cap": 0}, "Reward 'probe': option cap must be an integer >= 1 or null; got 0."),
        ({"cap": 1.5}, "option cap must be an integer >= 1 or null; got 1.5."),
        ({"cap": True}, "option cap must be an integer >= 1 or null; got True."),
        ({"penalty": 1.5}, "option penalty must be a number in [0, 1]; got 1.5."),
        ({"penalty": float("nan")}, "option penalty must be a number in [0, 1]; got nan."),
        ({"eps": 0.0}, "option eps must be a number > 0; got 0.0."),
        ({"eps": float("inf")}, "option eps must be a number > 0; got inf."),
        ({"wheels": [1, "x"]}, "option wheels must be a list of integers; got [1, 'x']."),
        ({"wheels": 3}, "option wheels must be a list of integers; got 3."),
        ({"strict": "yes"}, "option strict must be true or false; got 'yes'."),
        ({"cap": 11, "strict": True}, "Reward 'probe': option cap must be at most 10 when strict is true; got 11."),
    ],
)
def test_bad_options_are_refused_in_one_style(options, message):
    with pytest.raises(ConfigError) as caught:
        Probe(**options)
    assert message in str(caught.value)


def test_values_are_normalised_and_kept():
    probe = Probe(penalty=1, wheels=[3, 1], cap=None)
    assert probe.penalty == 1.0 and isinstance(probe.penalty, float)
    assert probe.wheels == (3, 1)
    assert probe.options()["wheels"] == (3, 1)
    assert check_options(Probe, {"eps": 2}) == {"eps": 2.0}


def test_instances_pickle_and_keep_their_trl_name():
    probe = Probe(penalty=0.25)
    probe.__name__ = "probe_2"
    clone = pickle.loads(pickle.dumps(probe))
    assert clone.__name__ == "probe_2"
    assert clone(None, ["a", "b"]) == [0.25, 0.25]
    assert Probe().__name__ == "probe"


def test_stage_fills_unset_options_and_refuses_contradictions():
    stage = StageContext(template="kardia", max_completion_length=64, columns={"label_column": "emotion"})
    assert fill_from_stage(Probe, {}, stage) == {"template": "kardia", "max_length": 64, "label_column": "emotion"}
    # What the recipe sets wins where it does not contradict the stage.
    assert fill_from_stage(Probe, {"max_length": 32, "label_column": "gold"}, stage) == {
        "max_length": 32, "label_column": "gold", "template": "kardia"}
    assert fill_from_stage(Probe, {"max_length": None}, stage)["max_length"] is None
    with pytest.raises(ConfigError, match="option template is 'r1' but the stage renders template 'kardia'"):
        fill_from_stage(Probe, {"template": "r1"}, stage)
    with pytest.raises(ConfigError, match="option max_length is 128 but max_completion_length is 64"):
        fill_from_stage(Probe, {"max_length": 128}, stage)
