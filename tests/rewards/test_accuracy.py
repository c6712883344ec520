"""Accuracy reward: single-label matching through the wheel mappings, and multiple choice."""

import math
import time

import pytest

import rewards
from rewards.errors import ConfigError, DataError
from rewards.accuracy import accuracy, chosen_option, labels_match, option_texts


@pytest.mark.parametrize(
    "predicted, gold, match, expected",
    [
        ("anger", "anger", "exact", True),
        ("  **Anger!** ", "anger", "exact", True),
        ("Angry", "anger", "exact", False),
        ("Angry", "anger", "inflection", True),
        ("happiness", "happy", "inflection", True),
        ("sadness", "sad", "inflection", True),
        ("surprised", "surprise", "inflection", True),
        ("disgusted", "disgust", "inflection", True),
        ("contemptuous", "contempt", "inflection", True),
        ("scared", "fear", "inflection", False),
        ("scared", "fear", "synonym", True),
        ("mad", "angry", "synonym", True),
        ("Neutral", "neutral", "synonym", True),  # not in the wheel data: exact only
        ("anger", "fear", "synonym", False),
        ("happy", "sad", "synonym", False),
        ("anger, fear", "anger", "synonym", False),
        ("the answer is anger", "anger", "synonym", False),
        ("", "anger", "synonym", False),
        ("...", "...", "synonym", False),
        ("anger " * 100, "anger", "synonym", False),
    ],
)
def test_labels_match(predicted, gold, match, expected):
    assert labels_match(predicted, gold, match) is expected


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("B", 1), ("(B)", 1), ("b", 1), ("B.", 1), ("B) anger", 1), ("[C]", 2),
        ("Angry", 1), ("sadness", 2), ("E", None), ("B anger", None), ("", None), ("joy, anger", None),
    ],
)
def test_chosen_option(answer, expected):
    assert chosen_option(answer, ["joy", "anger", "sad"]) == expected


def test_chosen_option_prefers_closer_levels_and_refuses_ties():
    # "joy" shares a base form with "joyful" (inflection) but only a synonym group with "happy"
    assert chosen_option("joy", ["happy", "joyful"]) == 1
    assert chosen_option("joy", ["happy", "sad"]) == 0
    assert chosen_option("joy", ["happy", "sad"], match="inflection") is None
    assert chosen_option("furious", ["angry", "mad"]) is None  # synonym of both: ambiguous


def test_option_texts():
    assert option_texts(["A. joy", "(B) anger", "C: fear"]) == ["joy", "anger", "fear"]
    assert option_texts(["B. joy"]) == ["B. joy"]  # a prefix naming another letter is text
    assert option_texts({"b": "anger", "A": "joy"}) == ["joy", "anger"]
    for bad in ("joy", [], ["joy", 3], {"A": "joy", "C": "fear"}):
        with pytest.raises(TypeError):
            option_texts(bad)


def _answer(text: str, tag: str = "answer") -> str:
    return f"<think>The brows are lowered.</think>\n<{tag}>{text}</{tag}>"


def test_label_rows():
    reward = accuracy()
    completions = [_answer("Angry"), _answer("fear"), "no tags: anger", _answer("scared")]
    assert reward(None, completions, emotion=["anger", "anger", "anger", "fear"]) == [1.0, 0.0, 0.0, 1.0]
    exact = accuracy(match="exact")
    assert exact(None, completions, emotion=["anger", "anger", "anger", "fear"]) == [0.0, 0.0, 0.0, 0.0]


def test_kardia_emotion_tag():
    reward = accuracy(answer_tag="emotion")
    completion = "<understanding>u</understanding>\n<reasoning>r</reasoning>\n<emotion>Lonely</emotion>\n<response>"
    assert reward(None, [completion], emotion=["lonely"]) == [1.0]


def test_choice_rows():
    reward = accuracy()
    completions = [_answer("B"), _answer("anger"), _answer("(A)"), _answer("fear")]
    options = [["joy", "anger"], {"A": "joy", "B": "anger"}, ["A. joy", "B. anger"], ["joy", "anger"]]
    assert reward(None, completions, options=options, answer=["B", "anger", "a", "(B)"]) == [1.0, 1.0, 1.0, 0.0]


def test_auto_mode_mixes_label_and_choice_rows_and_none_golds():
    reward = accuracy()
    completions = [_answer("B"), _answer("sad"), _answer("sad")]
    options, choices, labels = [["joy", "anger"], None, None], ["B", None, None], [None, "sadness", None]
    assert reward(None, completions, options=options, answer=choices, emotion=labels) == [1.0, 1.0, None]
    as_label = accuracy(mode="label")(None, [_answer("B")], options=[["joy", "anger"]], answer=["B"], emotion=["anger"])
    assert as_label == [0.0]
    assert accuracy(mode="choice")(None, [_answer("B")], options=[None], answer=["B"]) == [None]


def test_gold_column_errors():
    reward = accuracy()
    with pytest.raises(DataError, match="'emotion'"):
        reward(None, [_answer("anger")], emotions=[["anger"]])
    with pytest.raises(DataError, match=r"'emotion', row 1"):
        reward(None, [_answer("anger")] * 2, emotion=["anger", ["anger"]])
    with pytest.raises(DataError, match=r"'options', row 0"):
        reward(None, [_answer("B")], options=["joy, anger"], answer=["B"])
    with pytest.raises(DataError, match=r"'answer', row 0"):
        reward(None, [_answer("B")], options=[["joy", "anger"]], answer=["D"])
    with pytest.raises(DataError, match="'answer'"):
        accuracy(mode="choice")(None, [_answer("B")], options=[["joy", "anger"]])


@pytest.mark.parametrize("options", [{"mode": "vote"}, {"match": "fuzzy"}, {"answer_tag": None}])
def test_bad_options(options):
    with pytest.raises(ConfigError):
        rewards.build("accuracy", **options)


def test_hostile_text_quickly():
    reward = accuracy()
    hostile = ["<answer>" * 200_000, "<answer>" + "!" * 1_000_000 + "a</answer>", None, "<answer>\ud800</answer>", 12]
    start = time.perf_counter()
    label_scores = reward(None, hostile, emotion=["anger"] * len(hostile))
    choice_scores = reward(None, hostile, options=[["joy", "anger"]] * len(hostile), answer=["A"] * len(hostile))
    assert time.perf_counter() - start < 5
    assert all(s == 0.0 and math.isfinite(s) for s in label_scores + choice_scores)
