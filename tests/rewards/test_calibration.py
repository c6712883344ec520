"""EmoCaliber calibration reward: the log-score, clipping, invalid formats, Brier logging."""

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
    assert fn(prompts=[""], completions=[calibrated(answer, confidence)], emotion=["anger"]) == [pytest.approx(expected)]


def test_confident_wrong_answers_cost_more_than_hedged_ones():
    fn = rewards.build("calibration")
    scores = fn(prompts=[""] * 3, completions=[calibrated("joy", c) for c in ("0.9", "0.5", "0.1")], emotion=["anger"] * 3)
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
    assert rewards.build("calibration")(prompts=[""], completions=[completion], emotion=["anger"]) == [-5.0]
    assert rewards.build("calibration", invalid_score=-2)(prompts=[""], completions=[completion], emotion=["anger"]) == [-2.0]


def test_options_eps_match_and_label_column():
    fn = rewards.build("calibration", eps=0.1, match="exact", label_column="label")
    completions = [calibrated("anger", "0.99"), calibrated("Angry", "0.5")]
    assert fn(prompts=[""] * 2, completions=completions, label=["anger"] * 2) == pytest.approx(
        [2 + 2 * math.log(0.9), 1 + 2 * math.log(0.5)]
    )


def test_brier_accuracy_and_valid_share_are_logged():
    logged = {}
    fn = rewards.build("calibration")
    completions = [calibrated("anger", "0.8"), calibrated("joy", "0.6"), "garbage"]
    fn(prompts=[""] * 3, completions=completions, emotion=["anger"] * 3, log_metric=lambda k, v: logged.update({k: v}))
    assert logged == pytest.approx(
        {"calibration/brier": -((0.8 - 1) ** 2 + 0.6**2) / 2, "calibration/accuracy": 0.5, "calibration/valid": 2 / 3}
    )


def test_registered_range_holds_the_extremes_with_default_options():
    low, high = rewards.spec("calibration").value_range
    assert low == pytest.approx(1 + 2 * math.log(1e-3))
    assert high == 2.0


@pytest.mark.parametrize("labels", [[["anger"]], [None], [3]])
def test_malformed_label_names_the_column_and_the_row(labels):
    with pytest.raises(DataError, match="Column 'emotion' of row 0"):
        rewards.build("calibration")(prompts=[""], completions=[calibrated("anger", "0.5")], emotion=labels)


def test_missing_label_column():
    with pytest.raises(DataError, match="column 'emotion'"):
        rewards.build("calibration")(prompts=[""], completions=["x"], emotions=[["anger"]])


@pytest.mark.parametrize(
    "options, message", [({"eps": 0}, "eps"), ({"eps": 0.5}, "eps"), ({"invalid_score": float("nan")}, "invalid_score"),
                         ({"match": "fuzzy"}, "exact, inflection, synonym")],
)  # fmt: skip
def test_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        rewards.build("calibration", **options)
