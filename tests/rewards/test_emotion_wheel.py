"""The emotion-wheel metric and reward against a port of the official MER code, plus hand cases."""

import importlib.util
import math
import random
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewards
from rewards.errors import ConfigError, DataError
from rewards.emotion_wheel import EmotionWheel, ew_metric
from rewards.wheel import load_wheel_data, split_labels, word_table


def _load_oracle():
    path = Path(__file__).with_name("official_wheel.py")
    spec = importlib.util.spec_from_file_location("official_wheel", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


official = _load_oracle()
VOCAB = sorted(load_wheel_data().format_mapping)
OOV = ["xyz", "neutral", "meh", "", " ", "happy sad", "unknown-word", "ÉMU"]


def _random_word(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.75:
        word = rng.choice(VOCAB)
        return rng.choice([word, word.upper(), word.title(), f"  {word} "])
    return rng.choice(OOV)


def _random_labels(rng: random.Random):
    """A gold or prediction in one of the shapes the official code accepts."""
    words = [_random_word(rng) for _ in range(rng.choice([0, 1, 1, 2, 3, 5, 8]))]
    shape = rng.random()
    if shape < 0.3:
        return words
    if shape < 0.55:
        return str(words)  # "['a', 'b']"
    if shape < 0.8:
        return ", ".join(words)
    if shape < 0.85:
        return np.array(words, dtype=object)
    if shape < 0.9:
        return '["' + '", "'.join(words) + '"]'
    return rng.choice([None, float("nan"), "", "[]", ",,", "'happy'"])


def _batch(rng: random.Random, size: int):
    return [_random_labels(rng) for _ in range(size)], [_random_labels(rng) for _ in range(size)]


def _completion(answer: str) -> str:
    return f"<think>The speaker sounds tense.</think>\n<answer>{answer}</answer>"


def _as_answer(labels) -> str:
    if isinstance(labels, (list, np.ndarray)):
        return ", ".join(str(item) for item in labels)
    return "" if labels is None or isinstance(labels, float) else labels


# ---- ew_metric: parity with the official code ----


@pytest.mark.parametrize("level", ["level1", "level2"])
def test_ew_metric_equals_official_on_random_datasets(level):
    rng = random.Random(f"ew-{level}")
    for _ in range(150):
        golds, preds = _batch(rng, rng.choice([1, 2, 7, 8, 9, 30, 129, 300]))
        expected = tuple(official.official_ew_metric(golds, preds, level))
        assert ew_metric(golds, preds, level) == expected


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(VOCAB[::7] + OOV), max_size=6),
            st.lists(st.sampled_from(VOCAB[::5] + OOV), max_size=9),
            st.sampled_from(["list", "repr", "comma"]),
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["level1", "level2"]),
)
def test_ew_metric_equals_official_hypothesis(rows, level):
    shape = {"list": list, "repr": str, "comma": ", ".join}
    golds = [shape[kind](gold) for gold, _, kind in rows]
    preds = [shape[kind](pred) for _, pred, kind in rows]
    assert ew_metric(golds, preds, level) == tuple(official.official_ew_metric(golds, preds, level))


# ---- ew_metric: hand-computed values ----
# "sad" is the family sad on all five wheels at level1; "angry" and "happy" map to other,
# distinct families on every wheel, so each wheel gives the same numbers.


def test_ew_metric_averages_precision_and_recall_before_f():
    # sample 1: P = R = 1; sample 2: P = 1/2, R = 1  ->  P = 3/4, R = 1, F = 6/7
    f, p, r = ew_metric([["sad"], ["sad"]], [["sad"], ["sad", "angry"]])
    assert (p, r) == (0.75, 1.0)
    assert f == pytest.approx(6 / 7, abs=1e-15)


def test_ew_metric_wrong_prediction_and_empty_prediction():
    # no overlap: P = R = 0 for the sample; empty prediction also counts as 0
    assert ew_metric([["sad", "angry"], ["sad"]], [["happy"], []]) == (0.0, 0.0, 0.0)
    f, p, r = ew_metric([["sad", "angry"], ["sad"]], [["sad"], "xyz, qqq"])
    assert (f, p, r) == pytest.approx((2 * 0.5 * 0.25 / 0.75, 0.5, 0.25))


def test_ew_metric_skips_samples_whose_gold_maps_to_nothing():
    assert ew_metric([["sad"], ["xyz", "neutral"], None], [["sad"], ["angry"], ["happy"]]) == (1.0, 1.0, 1.0)
    assert ew_metric([["xyz"]], [["sad"]]) == (0.0, 0.0, 0.0)


def test_ew_metric_levels_differ_on_fine_labels():
    # "lonely" and "sad" share the level1 family sad but not the level2 label
    assert ew_metric([["lonely"]], [["sad"]], level="level1") == (1.0, 1.0, 1.0)
    assert ew_metric([["lonely"]], [["sad"]], level="level2") == (0.0, 0.0, 0.0)


def test_ew_metric_on_no_samples_equals_official():
    assert ew_metric([], []) == tuple(official.official_ew_metric([], [])) == (0.0, 0.0, 0.0)


def test_ew_metric_rejects_bad_input():
    with pytest.raises(ConfigError, match="level1, level2"):
        ew_metric([["sad"]], [["sad"]], level="level3")
    with pytest.raises(DataError, match="1 golds and 2 predictions"):
        ew_metric([["sad"]], [["sad"], ["sad"]])
    with pytest.raises(DataError, match=r"preds\[0\]"):
        ew_metric([["sad"]], [[3]])


# ---- label parsing ----


@pytest.mark.parametrize(
    "value, words",
    [
        ("['Sad', \"angry\"]", ["sad", "angry"]),
        (" sad ,angry,", ["sad", "angry"]),
        (["SAD ", "Lonely"], ["sad", "lonely"]),
        (np.array(["sad"]), ["sad"]),
        ("[sad]", ["sad"]),
        ("sad; angry", ["sad; angry"]),  # the official split knows only quotes and commas
        (" ['sad'] ", ["[", "sad", "]"]),  # only brackets in first/last position are removed
        ("", []),
        (None, []),
        (float("nan"), []),
        ("[]", []),
    ],
)
def test_split_labels_matches_official(value, words):
    assert split_labels(value) == words
    official_words = [item.lower().strip() for item in official.string_to_list(value)]
    assert official_words == words


# Brackets, quotes, commas, whitespace, Greek sigmas (context-dependent lower()), İ (two
# characters when lower-cased), NUL, and real words.
LABEL_PIECES = list("[]'\", \t\nΣσςİAaSsdD😀\x00") + ["sad", "Happy", "ΟΔΟΣ"]
LABEL_TEXT = st.lists(st.sampled_from(LABEL_PIECES)).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), LABEL_TEXT).filter(lambda text: text != "["))
def test_split_labels_equals_official_on_any_text(text):
    assert split_labels(text) == [item.lower().strip() for item in official.string_to_list(text)]


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), LABEL_TEXT), st.lists(st.sampled_from(VOCAB[::11] + OOV), max_size=4))
def test_reward_equals_official_on_any_answer(answer, gold):
    expected = official.official_sample_reward(gold, answer.strip() if answer.strip() != "[" else "")
    assert EmotionWheel()(None, [f"<answer>{answer}</answer>"], emotions=[gold]) == [expected]


def test_split_labels_where_the_official_code_crashes():
    with pytest.raises(IndexError):
        official.string_to_list("[")
    assert split_labels("[") == []
    with pytest.raises(TypeError):
        split_labels(3)


# ---- per-sample reward ----


@pytest.mark.parametrize("level", ["level1", "level2"])
def test_reward_equals_official_metric_on_one_sample(level):
    rng = random.Random(f"sample-{level}")
    reward = EmotionWheel(level=level)
    golds, preds = _batch(rng, 1500)
    golds = [gold for gold in golds if not (gold is None or isinstance(gold, float))]
    answers = [_as_answer(pred) for pred in preds[: len(golds)]]
    scores = reward(None, [_completion(answer) for answer in answers], emotions=golds)
    expected = [official.official_sample_reward(gold, answer, level) for gold, answer in zip(golds, answers)]
    assert scores == expected


def test_reward_hand_values():
    reward = EmotionWheel()
    completions = [
        _completion("joyful, worried"),  # every wheel: G = {happy-family}, A adds a fear family
        _completion("['Sad']"),
        "<think>x</think><answer>sad",  # unclosed answer
        [{"role": "assistant", "content": _completion("sad")}],
    ]
    golds = [["happy", "relieved"], "sad", ["sad"], "['sad', 'angry']"]
    scores = reward(None, completions, emotions=golds)
    assert scores[0] == pytest.approx(2 / 3)
    assert scores[1:3] == [1.0, 0.0]
    assert scores[3] == pytest.approx(2 * 1 * 0.5 / 1.5)


def test_reward_wheel_subset_and_kardia_span():
    # "relieved" has a label on wheels 1 and 4 only (happy / joy, like "happy")
    completion = "<|reasoning_begin|>r<|reasoning_end|>\n<|emotion_begin|>relieved<|emotion_end|>\n<|response_begin|>"
    assert EmotionWheel(template="kardia")(None, [completion], emotions=[["happy"]]) == [pytest.approx(0.4)]
    assert EmotionWheel(template="kardia", wheels=[4])(None, [completion], emotions=[["happy"]]) == [1.0]
    assert EmotionWheel(template="kardia", wheels=[2, 3])(None, [completion], emotions=[["happy"]]) == [0.0]


def test_reward_max_words_scales_down_long_lists():
    reward = EmotionWheel(max_words=2)
    scores = reward(None, [_completion("sad, xyz, qqq, zzz"), _completion("sad, xyz")], emotions=[["sad"]] * 2)
    assert scores == [0.5, 1.0]


def test_max_words_counts_words_not_the_empty_items_of_a_list_repr():
    # "['sad', 'angry']" splits into 6 items, 4 of them empty: 2 words, within max_words 2
    reward = EmotionWheel(max_words=2)
    gold = [["sad", "angry"]] * 2
    assert reward(None, [_completion("['sad', 'angry']"), _completion("sad, angry")], emotions=gold) == [1.0, 1.0]
    assert reward(None, [_completion("['sad', 'angry', 'xyz']")], emotions=gold[:1]) == [pytest.approx(2 / 3)]


def test_reward_family_penalty():
    gold, answer = ["sad"], "sad, angry, happy"  # three families on every wheel, gold has one
    plain = EmotionWheel()(None, [_completion(answer)], emotions=[gold])[0]
    assert plain == pytest.approx(0.5)  # P = 1/3, R = 1
    families = word_table("level1").family_counts
    assert families == (6, 7, 6, 6, 6)
    penalty = sum(2 / n for n in families) / 5
    penalised = EmotionWheel(family_penalty=1.0)(None, [_completion(answer)], emotions=[gold])[0]
    assert penalised == pytest.approx(0.5 - penalty)
    exact = EmotionWheel(family_penalty=1.0)(None, [_completion("sad")], emotions=[gold])[0]
    assert exact == 1.0


def test_family_penalty_never_turns_into_a_bonus():
    # Fewer answered families than gold ones must cost nothing extra and earn nothing either:
    # an empty answer scores 0 and a one-word answer at most 1, inside the registered range.
    reward = EmotionWheel(family_penalty=1.0)
    gold = [["sad", "angry", "happy", "surprised", "scared", "disgusted"]] * 3
    scores = reward(None, [_completion(""), _completion("sad"), "no answer"], emotions=gold)
    assert scores[0] == 0.0 and scores[2] == 0.0
    assert scores[1] == EmotionWheel()(None, [_completion("sad")], emotions=gold[:1])[0] < 1.0
    assert reward.value_range == (-1.0, 1.0)


def test_reward_gold_column_errors():
    reward = EmotionWheel()
    with pytest.raises(DataError, match="'emotions'"):
        reward(None, [_completion("sad")], emotion=["sad"])
    with pytest.raises(DataError, match=r"'emotions', row 1"):
        reward(None, [_completion("sad")] * 2, emotions=[["sad"], 7])
    with pytest.raises(DataError, match=r"row 0"):
        reward(None, [_completion("sad")], emotions=[["sad", ["nested"]]])
    with pytest.raises(DataError, match=r"row 0"):
        reward(None, [_completion("sad")], emotions=[{"sad": 1}])
    with pytest.raises(DataError, match="2 values for 1 completions"):
        reward(None, [_completion("sad")], emotions=[["sad"], ["sad"]])
    assert reward(None, [_completion("sad")] * 3, emotions=[None, np.array(["sad"]), float("nan")]) == [None, 1.0, None]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"level": "level3"}, "option level must be one of 'level1', 'level2'; got 'level3'."),
        ({"wheels": [0]}, "option wheels must be a list of integers in [1, 5]; got [0]."),
        ({"wheels": []}, "option wheels must be distinct wheel numbers from [1, 2, 3, 4, 5]; got []."),
        ({"wheels": [1, 1]}, "option wheels must be distinct wheel numbers from [1, 2, 3, 4, 5]; got [1, 1]."),
        ({"max_words": 0}, "option max_words must be an integer >= 1 or null; got 0."),
        ({"family_penalty": 2}, "option family_penalty must be a number in [0, 1]; got 2."),
        ({"per_sample": "f2"}, "option per_sample must be one of 'f1', 'mean_pr'; got 'f2'."),
        ({"answer_span": ""}, "option answer_span must be a span of template 'r1'"),
        ({"label_column": "emotions"}, "has no option 'label_column'. Accepted options: template (default 'r1'), answer_span"),
    ],
)
def test_reward_rejects_bad_options(options, message):
    with pytest.raises(ConfigError) as caught:
        rewards.build("emotion_wheel", **options)
    assert message in str(caught.value)


def test_community_variant_reads_untagged_completions_and_splits_on_commas_only():
    reward = EmotionWheel(variant="community")
    gold = [["sad", "lonely"]] * 4
    texts = ["sad, lonely", "<answer>['sad', 'lonely']</answer>", "<answer>sad; lonely</answer>", "<answer>SAD ,</answer>"]
    assert reward(None, texts, emotions=gold) == [1.0, 0.0, 0.0, 1.0]
    assert EmotionWheel()(None, texts, emotions=gold) == [0.0, 1.0, 0.0, 1.0]


def test_reward_on_an_empty_batch():
    assert EmotionWheel(max_words=3, family_penalty=0.5)(None, [], emotions=[]) == []


def test_registry_builds_EmotionWheel():
    reward = rewards.build("emotion_wheel", level="level2", wheels=[1, 2])
    assert reward.__name__ == "emotion_wheel"
    assert reward(None, [_completion("lonely")], emotions=[["lonely"]]) == [1.0]


def test_reward_survives_hostile_text_quickly():
    reward = EmotionWheel(max_words=5, family_penalty=0.5)
    hostile = [
        "<answer>" * 200_000,
        "<answer>" + ", ".join(VOCAB) + "</answer>",
        "<answer>" + "x" * 1_000_000 + "</answer>",
        "<answer></answer>" * 1000,
        "<answer>\x00\ud800, 😀, [[[']]]</answer>",
        None,
        [{"role": "assistant", "content": None}],
    ]
    start = time.perf_counter()
    scores = reward(None, hostile, emotions=[["sad"]] * len(hostile))
    assert time.perf_counter() - start < 5
    assert all(isinstance(s, float) and math.isfinite(s) and -0.5 <= s <= 1 for s in scores)




def test_per_sample_mean_pr_scores_the_mean_of_precision_and_recall():
    # three families on every wheel, gold has one: P = 1/3, R = 1 on each wheel
    gold, answer = ["sad"], "sad, angry, happy"
    reward = EmotionWheel(per_sample="mean_pr")
    assert reward(None, [_completion(answer)], emotions=[gold])[0] == pytest.approx(2 / 3)
    assert EmotionWheel()(None, [_completion(answer)], emotions=[gold])[0] == pytest.approx(0.5)
    # a wrong answer and a missing one score 0, an exact one 1
    scores = reward(None, [_completion("happy"), "no tags", _completion("sad")], emotions=[gold] * 3)
    assert scores == [0.0, 0.0, 1.0]
    # half the gold families named, nothing extra: P = 1, R = 1/2
    assert reward(None, [_completion("sad")], emotions=[["sad", "angry"]])[0] == pytest.approx(0.75)
    # max_words still scales the score
    capped = EmotionWheel(per_sample="mean_pr", max_words=2)(None, [_completion(answer)], emotions=[gold])[0]
    assert capped == pytest.approx(2 / 3 * 2 / 3)


def test_per_sample_mean_pr_is_the_first_order_share_of_the_dataset_f():
    # At mean P = mean R, a change to one sample moves the dataset F by about its (P + R) / 2
    # change over N; its F1 change misses by more (here: 0.1827 against 0.1875 and 0.1667).
    golds = [["sad"], ["happy"], ["angry", "sad"], ["scared"]]
    answers = ["sad, angry", "happy", "angry", "sad"]
    before = ew_metric(golds, answers)
    assert before == pytest.approx((0.625, 0.625, 0.625))
    moved = ew_metric(golds, answers[:3] + ["sad, scared"])[0] - before[0]

    def change(reward):
        scores = reward(None, [_completion("sad"), _completion("sad, scared")], emotions=[golds[3]] * 2)
        return (scores[1] - scores[0]) / len(golds)

    assert abs(moved - change(EmotionWheel(per_sample="mean_pr"))) < 0.005 < abs(moved - change(EmotionWheel()))
