"""EmoCaliber calibration reward: the log-score, clipping, invalid formats, Brier logging, the exact variant."""

import math

import pytest

import rewards
from rewards.errors import ConfigError, DataError


def calibrated(answer: str, confidence: str) -> str:
    return f"<think>brows lowered, lips pressed</think>\n<answer>{answer}</answer>\n<confidence>{confidence}</confidence>"


@pytest.mark.parametrize(
    "answer, confidence, expected",
    [
        ("anger", "0.9", 2 + 2 * math.log(0.9)),
        ("anger", "0.5", 2 + 2 * math.log(0.5)),
        ("Angry.", "0.8", 2 + 2 * math.log(0.8)),  # matched as the accuracy reward matches
        ("fear", "0.9", 1 + 2 * math.log(0.1)),
        ("fear", "0.1", 1 + 2 * math.log(0.9)),
        ("anger", "0.0000001", 2 + 2 * math.log(1e-3)),  # clipped to eps
        ("fear", "0.99999999", 1 + 2 * math.log(1e-3)),
    ],
)
def test_emocaliber_score(answer, confidence, expected):
    fn = rewards.build("calibration")
    assert fn(prompts=[""], completions=[calibrated(answer, confidence)], label=["anger"]) == [pytest.approx(expected)]


def test_confident_wrong_answers_cost_more_than_hedged_ones():
    fn = rewards.build("calibration")
    scores = fn(prompts=[""] * 3, completions=[calibrated("joy", c) for c in ("0.9", "0.5", "0.1")], label=["anger"] * 3)
    assert scores[0] < scores[1] < scores[2]


@pytest.mark.parametrize(
    "completion",
    [
        "anger",
        calibrated("anger", "1"),
        calibrated("anger", "0"),
        calibrated("anger", "nan"),
        calibrated("anger", "inf"),
        calibrated("anger", "very sure"),
        "<think>t</think><answer>anger</answer>",  # no confidence
        calibrated("anger", "0.9") + "<answer>fear</answer>",  # trailing duplicate
        "<think>t</think><answer>anger</answer><answer>fear</answer><confidence>0.9</confidence>",  # hedged
    ],
)
def test_invalid_format_scores_invalid_score(completion):
    assert rewards.build("calibration")(prompts=[""], completions=[completion], label=["anger"]) == [-5.0]
    assert rewards.build("calibration", invalid_score=-2)(prompts=[""], completions=[completion], label=["anger"]) == [-2.0]


def test_options_eps_match_and_label_column():
    fn = rewards.build("calibration", eps=0.1, match="exact", label_column="emotion")
    completions = [calibrated("anger", "0.99"), calibrated("Angry", "0.5")]
    assert fn(prompts=[""] * 2, completions=completions, emotion=["anger"] * 2) == pytest.approx(
        [2 + 2 * math.log(0.9), 1 + 2 * math.log(0.5)]
    )


def test_brier_accuracy_and_valid_share_are_logged_over_rows_with_a_label():
    logged = {}
    fn = rewards.build("calibration")
    completions = [calibrated("anger", "0.8"), calibrated("joy", "0.6"), "garbage", calibrated("anger", "0.8")]
    scores = fn(prompts=[""] * 4, completions=completions, label=["anger", "anger", "anger", None],
                log_metric=lambda k, v: logged.update({k: v}))  # fmt: skip
    assert scores[3] is None
    assert logged == pytest.approx(
        {"calibration/brier": -((0.8 - 1) ** 2 + 0.6**2) / 2, "calibration/accuracy": 0.5, "calibration/valid": 2 / 3}
    )


def test_range_follows_the_options():
    low, high = rewards.spec("calibration").value_range
    assert (low, high) == (pytest.approx(1 + 2 * math.log(1e-3)), 2.0)
    assert rewards.build("calibration", eps=0.1, invalid_score=-1).value_range == (pytest.approx(1 + 2 * math.log(0.1)), 2.0)
    assert rewards.build("calibration", invalid_score=-50).value_range == (-50.0, 2.0)
    assert rewards.build("calibration", invalid_score=3).value_range[1] == 3.0


def test_emocaliber_variant_is_the_published_rule():
    fn = rewards.build("calibration", template="emocaliber", variant="emocaliber")
    inner = "".join(f"<{t}>x</{t}>" for t in ("analysis", "element", "human", "context", "interaction"))  # any order
    good = f"<think>{inner}</think><answer>Sad.</answer><confidence>0.0000001</confidence>"
    assert fn(None, [good], label=["sad"]) == [pytest.approx(2 + 2 * math.log(1e-7))]  # not clipped
    assert fn(None, [good.replace("Sad.", "very sad")], label=["sad"]) == [pytest.approx(1 + 2 * math.log(1 - 1e-7))]
    assert fn(None, [good.replace("<human>x</human>", "")], label=["sad"]) == [-5.0]  # a sub-tag missing
    assert fn(None, [good.replace("0.0000001", "1")], label=["sad"]) == [-5.0]


@pytest.mark.parametrize("labels", [[["anger"]], [3]])
def test_malformed_label_names_the_column_and_the_row(labels):
    with pytest.raises(DataError, match="column 'label', row 0"):
        rewards.build("calibration")(prompts=[""], completions=[calibrated("anger", "0.5")], label=labels)


def test_missing_label_column():
    with pytest.raises(DataError, match="column 'label'"):
        rewards.build("calibration")(prompts=[""], completions=["x"], emotions=[["anger"]])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"eps": 0}, "option eps must be a number > 0; got 0"),
        ({"eps": 0.5}, "option eps must be a number in (0, 0.5); got 0.5"),
        ({"invalid_score": float("nan")}, "option invalid_score must be a number; got nan"),
        ({"match": "fuzzy"}, "'verbatim', 'exact', 'inflection', 'synonym'"),
        ({"template": "r1"}, "option template must be a template with a confidence span (calibrated, emocaliber)"),
        ({"variant": "emocaliber"}, "option variant must be affect_rl unless the template is emocaliber"),
    ],
)  # fmt: skip
def test_bad_options(options, message):
    with pytest.raises(ConfigError) as caught:
        rewards.build("calibration", **options)
    assert message in str(caught.value)
