"""A recipe's rewards list parsed once into typed entries: names, weights, routing, options, the stage."""

import pytest

from rewards.base import StageContext
from rewards.entries import RewardEntry, build_entries, parse_entries
from rewards.errors import ConfigError

KARDIA = StageContext(template="kardia", max_completion_length=64, columns={"label_column": "emotion"})


def test_entries_are_typed_and_stage_options_filled():
    specs = [
        {"name": "accuracy", "weight": 2, "match": "exact"},
        {"name": "length", "weight": 0.5},
        {"name": "format", "applies_to": {"problem_type": "free-form"}},
    ]
    entries = parse_entries(specs, "kardia.yaml", KARDIA)
    assert entries[0] == RewardEntry("accuracy", 2.0, {"match": "exact", "template": "kardia", "label_column": "emotion"},
                                     None, 1)  # fmt: skip
    assert entries[1].options == {"template": "kardia", "max_length": 64} and entries[1].weight == 0.5
    assert entries[2].applies_to == {"problem_type": ("free-form",)} and entries[2].position == 3
    built = build_entries(entries)
    assert built[0].reward.span.name == "emotion" and built[1].reward.max_length == 64


@pytest.mark.parametrize(
    "specs, message",
    [
        ([], "r.yaml: a GRPO stage needs `rewards:`"),
        ({"name": "format"}, "r.yaml: a GRPO stage needs `rewards:`"),
        ([{"name": "format"}, "format"], "r.yaml: rewards[2] must be a mapping with a `name`"),
        ([{"weight": 1.0}], "r.yaml: rewards[1] must be a mapping with a `name`"),
        ([{"name": "emotion_whel"}], "r.yaml: rewards[1]: Unknown reward 'emotion_whel'. Did you mean 'emotion_wheel'?"),
        ([{"name": "format", "weight": float("nan")}], "r.yaml: rewards[1]: weight must be a finite number"),
        ([{"name": "format", "weight": float("inf")}], "r.yaml: rewards[1]: weight must be a finite number"),
        ([{"name": "format", "weight": "heavy"}], "r.yaml: rewards[1]: weight must be a finite number such as 1.0 or 0.1; got 'heavy'."),
        ([{"name": "format", "weight": True}], "r.yaml: rewards[1]: weight must be a finite number"),
        ([{"name": "format", "applies_to": ["free-form"]}], "r.yaml: rewards[1]: applies_to must map a dataset column"),
        ([{"name": "format", "applies_to": {"problem_type": []}}], "applies_to['problem_type'] must be a list of column values"),
        ([{"name": "format", "templat": "r1"}], "r.yaml: rewards[1]: Reward 'format' has no option 'templat'. Did you mean 'template'?"),
        ([{"name": "length", "max_length": 8, "buffer": 9}], "r.yaml: rewards[1]: Reward 'length': option buffer must be at most max_length (8); got 9."),
        ([{"name": "format"}, {"name": "format", "template": "r1"}],
         "r.yaml: rewards[2]: Reward 'format': option template is 'r1' but the stage renders template 'kardia'"),
        ([{"name": "length", "max_length": 512}], "r.yaml: rewards[1]: Reward 'length': option max_length is 512 but max_completion_length is 64"),
        ([{"name": "calibration"}], "r.yaml: rewards[1]: Reward 'calibration': option template must be a template with a confidence span"),
        ([{"name": "accuracy", "answer_span": "answer"}], "r.yaml: rewards[1]: Reward 'accuracy': option answer_span must be a span of template 'kardia'"),
    ],
)  # fmt: skip
def test_errors_name_the_recipe_and_the_entry(specs, message):
    with pytest.raises(ConfigError) as caught:
        parse_entries(specs, "r.yaml", KARDIA)
    assert message in str(caught.value)


def test_a_reward_named_twice_gets_a_numbered_trl_name():
    entries = parse_entries([{"name": "format"}, {"name": "tag_count"}, {"name": "format", "strip": False}], "r.yaml")
    assert [fn.__name__ for fn in build_entries(entries)] == ["format", "tag_count", "format_2"]
