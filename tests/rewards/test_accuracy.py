"""Accuracy reward: label matching through the wheel mappings, multiple choice by letters or text."""

import math
import time

import pytest

import rewards
from rewards.accuracy import Accuracy
from rewards.choice import chosen_options, gold_options, letters_named, option_texts, set_f1
from rewards.errors import ConfigError, DataError
from rewards.labels import closest_label, labels_match


@pytest.mark.parametrize(
    "predicted, gold, match, expected",
    [
        ("anger", "anger", "verbatim", True),
        (" anger\n", "anger ", "verbatim", True),
        ("Anger", "anger", "verbatim", False),
        ("anger.", "anger", "verbatim", False),
        ("", "", "verbatim", False),
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


def test_closest_label_prefers_closer_levels_and_refuses_ties():
    # "joy" shares a base form with "joyful" (inflection) but only a synonym group with "happy"
    assert closest_label("joy", ["happy", "joyful"]) == 1
    assert closest_label("joy", ["happy", "sad"]) == 0
    assert closest_label("joy", ["happy", "sad"], match="inflection") is None
    assert closest_label("furious", ["angry", "mad"]) is None  # synonym of both: ambiguous


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("B", {1}), ("(B)", {1}), ("b", {1}), ("B.", {1}), ("B) anger", {1}), ("[C]", {2}), ("B: sad", {1}),
        ("A, C", {0, 2}), ("A,C", {0, 2}), ("AC", {0, 2}), ("A and C", {0, 2}), ("(A) (C)", {0, 2}), ("a; c", {0, 2}),
        ("CA", {0, 2}), ("Angry", {1}), ("sadness", {2}), ("joy, sadness", {0, 2}),
        ("E", None), ("A, E", None), ("B anger", None), ("", None), ("ac", None), ("joy, calm", None),
        ("I think it is B", None),
    ],
)  # fmt: skip
def test_chosen_options(answer, expected):
    chosen = chosen_options(answer, ["joy", "anger", "sad"])
    assert chosen == (None if expected is None else frozenset(expected))


def test_letters_and_gold_options():
    assert letters_named("ABCD") == ["A", "B", "C", "D"] and letters_named("Abc") is None
    texts = ["joy", "anger", "fear"]
    for gold, expected in [(["A", "C"], {0, 2}), ("AC", {0, 2}), ("B, C", {1, 2}), ("(B)", {1}), ("fear", {2}),
                           (["anger"], {1}), ("B. anger", {1})]:  # fmt: skip
        assert gold_options(gold, texts) == frozenset(expected), gold
    for gold in (["D"], "D", [], "", "calm", 3, ["A", None]):
        assert gold_options(gold, texts) is None, gold


def test_set_f1():
    assert set_f1(frozenset({0, 2}), frozenset({0, 2})) == 1.0
    assert set_f1(frozenset({0}), frozenset({0, 2})) == pytest.approx(2 / 3)
    assert set_f1(frozenset({1}), frozenset({0})) == 0.0
    assert set_f1(frozenset(), frozenset({0})) == set_f1(None, frozenset({0})) == 0.0


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
    completions = [_answer("Angry"), _answer("fear"), "no tags: anger", _answer("scared")]
    golds = ["anger", "anger", "anger", "fear"]
    assert Accuracy()(None, completions, label=golds) == [1.0, 0.0, 0.0, 1.0]
    assert Accuracy(match="exact")(None, completions, label=golds) == [0.0, 0.0, 0.0, 0.0]


def test_kardia_reads_its_special_token_emotion_span():
    completion = ("<|understanding_begin|>u<|understanding_end|><|reasoning_begin|>r<|reasoning_end|>"
                  "<|emotion_begin|>Lonely<|emotion_end|><|response_begin|>x<|response_end|>")  # fmt: skip
    assert Accuracy(template="kardia", label_column="emotion")(None, [completion], emotion=["lonely"]) == [1.0]
    with pytest.raises(ConfigError, match=r"option answer_span must be a span of template 'r1' \(think, answer\)"):
        Accuracy(answer_span="emotion")


def test_which_multiline_and_fallback_read_the_answer_as_the_published_systems_do():
    two = "<answer>joy</answer> then <answer>anger</answer>"
    assert Accuracy()(None, [two], label=["anger"]) == [0.0]
    assert Accuracy(which="last")(None, [two], label=["anger"]) == [1.0]
    spanning = "<answer>anger\n</answer>"
    assert Accuracy()(None, [spanning], label=["anger"]) == [1.0]
    assert Accuracy(multiline=False)(None, [spanning], label=["anger"]) == [0.0]
    assert Accuracy(fallback="completion")(None, ["  Anger "], label=["anger"]) == [1.0]
    assert Accuracy(match="verbatim", fallback="completion")(None, ["  Anger "], label=["anger"]) == [0.0]


def test_choice_rows_exact_set_match_and_f1():
    options = [["joy", "anger", "fear"]] * 6
    completions = [_answer(a) for a in ("B", "A, C", "AC", "A", "joy, fear", "(A) (B) (C)")]
    golds = [["B"], ["A", "C"], ["A", "C"], ["A", "C"], ["A", "C"], ["A", "C"]]
    assert Accuracy()(None, completions, options=options, answer=golds) == [1.0, 1.0, 1.0, 0.0, 1.0, 0.0]
    f1 = Accuracy(choice_score="f1")(None, completions, options=options, answer=golds)
    assert f1 == pytest.approx([1.0, 1.0, 1.0, 2 / 3, 1.0, 0.8])


def test_choice_rows_accept_the_older_shapes():
    completions = [_answer("B"), _answer("anger"), _answer("(A)"), _answer("fear")]
    options = [["joy", "anger"], {"A": "joy", "B": "anger"}, ["A. joy", "B. anger"], ["joy", "anger"]]
    assert Accuracy()(None, completions, options=options, answer=["B", "anger", "a", "(B)"]) == [1.0, 1.0, 1.0, 0.0]


def test_auto_mode_mixes_label_and_choice_rows_and_missing_golds():
    completions = [_answer("B"), _answer("sad"), _answer("sad"), _answer("sad")]
    options, choices = [["joy", "anger"], None, None, float("nan")], ["B", None, None, None]
    labels = [None, "sadness", None, float("nan")]
    assert Accuracy()(None, completions, options=options, answer=choices, label=labels) == [1.0, 1.0, None, None]
    as_label = Accuracy(mode="label")(None, [_answer("B")], options=[["joy", "anger"]], answer=["B"], label=["anger"])
    assert as_label == [0.0]
    assert Accuracy(mode="choice")(None, [_answer("B")], options=[None], answer=["B"]) == [None]


def test_empty_gold_label_does_not_apply_unless_scored():
    assert Accuracy()(None, [_answer("joy")], label=["  "]) == [None]
    assert Accuracy(empty_gold_score=0.5)(None, [_answer("joy")], label=[""]) == [0.5]


def test_gold_column_errors():
    with pytest.raises(DataError, match="needs the dataset column 'label'.*label_column"):
        Accuracy()(None, [_answer("anger")], emotions=[["anger"]])
    with pytest.raises(DataError, match=r"column 'label', row 1"):
        Accuracy()(None, [_answer("anger")] * 2, label=["anger", ["anger"]])
    with pytest.raises(DataError, match=r"column 'options', row 0"):
        Accuracy()(None, [_answer("B")], options=["joy, anger"], answer=["B"])
    with pytest.raises(DataError, match=r"column 'answer', row 0 .*letters \(A-B"):
        Accuracy()(None, [_answer("B")], options=[["joy", "anger"]], answer=["D"])
    with pytest.raises(DataError, match="'answer'"):
        Accuracy(mode="choice")(None, [_answer("B")], options=[["joy", "anger"]])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mode": "vote"}, "option mode must be one of 'auto', 'label', 'choice'; got 'vote'"),
        ({"match": "fuzzy"}, "option match must be one of 'verbatim', 'exact', 'inflection', 'synonym'"),
        ({"answer_span": "think2"}, "option answer_span must be a span of template 'r1'"),
        ({"empty_gold_score": 2}, "option empty_gold_score must be a number in [0, 1] or null"),
        ({"answer_tag": "answer"}, "has no option 'answer_tag'"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ConfigError) as caught:
        rewards.build("accuracy", **options)
    assert message in str(caught.value)


def test_hostile_text_quickly():
    reward = Accuracy()
    hostile = ["<answer>" * 200_000, "<answer>" + "!" * 1_000_000 + "a</answer>", None, "<answer>\ud800</answer>", 12,
               "<answer>" + "A, " * 100_000 + "</answer>"]  # fmt: skip
    start = time.perf_counter()
    label_scores = reward(None, hostile, label=["anger"] * len(hostile))
    choice_scores = reward(None, hostile, options=[["joy", "anger"]] * len(hostile), answer=["A"] * len(hostile))
    r1_omni = Accuracy(match="verbatim", multiline=False, fallback="completion")(None, hostile, label=["a"] * len(hostile))
    assert time.perf_counter() - start < 5
    assert all(s == 0.0 and math.isfinite(s) for s in label_scores + choice_scores + r1_omni)
