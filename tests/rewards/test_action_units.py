"""Action Unit rewards: citation parsing, Facial-R1's AU F1, EMFACS consistency, gold validation."""

import pytest

import rewards
from rewards.errors import ConfigError, DataError
from rewards.action_units import au_f1_score, cited_aus, consistency_score, normalise_emotion


@pytest.mark.parametrize(
    "text, expected",
    [
        ("AU12", {12}),
        ("AU 12, AU-4, au6, Au_1", {12, 4, 6, 1}),
        ("AU06 and AU012", {6, 12}),  # leading zeros
        ("AU12L, AU4B (intensity B)", {12, 4}),  # side and intensity suffixes
        ("AU6+12", {6}),  # each number needs its own AU
        ("AU99, AU0, AU3, AU1000, AU123456", set()),  # not in the FACS table
        ("BEAU12 and 12AU", set()),  # 'AU' inside a word
        ("a Lip Corner Puller and the lip-corner depressor", {12, 15}),
        ("lid tightener, lip tightener, lips part", {7, 23, 25}),
        ("a pulled lip corner", set()),  # names must be the FACS names
        ("lip\u017f part, chee\u212a raiser, AU\u0661\u0662", set()),  # no Unicode case folding or digits
        ("", set()),
    ],
)
def test_cited_aus(text, expected):
    assert cited_aus(text) == expected


def test_names_can_be_switched_off():
    assert cited_aus("AU6 cheek raiser, lip corner puller", match_names=False) == {6}


@pytest.mark.parametrize(
    "cited, gold, expected",
    [
        ({6, 12}, {6, 12}, 1.0),
        ({6}, {6, 12}, 2 * (2 / 3) - 1),
        ({6, 12, 4, 9}, {6, 12}, 2 * (4 / 6) - 1),
        ({4}, {6, 12}, -1.0),  # F1 0
        (set(), {6, 12}, -1.0),  # nothing cited
        ({4}, set(), 0.0),  # gold empty
        (set(), set(), 0.0),
    ],
)
def test_au_f1_score(cited, gold, expected):
    assert au_f1_score(cited, gold) == pytest.approx(expected)


def test_au_f1_reward_reads_the_think_span_only():
    fn = rewards.build("au_f1")
    completions = [
        "<think>AU6 and AU12 are active.</think><answer>happiness</answer>",
        "<think>Nothing notable.</think><answer>AU6 AU12</answer>",  # AUs outside think do not count
        "<think>AU6 and AU12, unclosed",  # no closed think: nothing cited
        [{"role": "assistant", "content": "<think>cheek raiser</think><answer>happy</answer>"}],
        "<think>AU4</think><answer>x</answer>",
    ]
    golds = [[6, 12], [6, 12], [6, 12], (6, 12), []]
    assert fn(prompts=[""] * 5, completions=completions, aus=golds) == pytest.approx([1.0, -1.0, -1.0, 1 / 3, 0.0])


def test_au_f1_options():
    text = "<reasoning>AU6, lip corner puller</reasoning><emotion>joy</emotion>"
    kardia = rewards.build("au_f1", think_tag="reasoning", gold_column="gold_aus")
    assert kardia(prompts=[""], completions=[text], gold_aus=[[6, 12]]) == [1.0]
    codes_only = rewards.build("au_f1", think_tag="reasoning", match_names=False)
    assert codes_only(prompts=[""], completions=[text], aus=[[6, 12]]) == [pytest.approx(1 / 3)]


def test_gold_items_may_be_strings_or_floats_and_off_table_numbers_are_dropped():
    fn = rewards.build("au_f1")
    text = "<think>AU6 AU12</think><answer>happy</answer>"
    assert fn(prompts=[""], completions=[text], aus=[["AU6", "12", 99.0]]) == [1.0]
    assert fn(prompts=[""], completions=[text], aus=[[99]]) == [0.0]  # gold empty once restricted


@pytest.mark.parametrize(
    "aus, message",
    [
        (["6, 12"], r"Column 'aus' of row 1 is '6, 12' \(str\)"),
        ([None], r"Column 'aus' of row 1 is None"),
        ([[6, "smile"]], r"Column 'aus' of row 1 holds 'smile'"),
        ([[6, True]], r"Column 'aus' of row 1 holds True"),
        ([[-4]], r"Column 'aus' of row 1 holds -4"),
        ([[6.5]], r"Column 'aus' of row 1 holds 6.5"),
    ],
)
def test_malformed_gold_names_the_column_and_the_row(aus, message):
    fn = rewards.build("au_f1")
    with pytest.raises(DataError, match=message):
        fn(prompts=["", ""], completions=["<think>AU6</think>"] * 2, aus=[[6]] + aus)


def test_missing_gold_column_names_it_and_the_columns_present():
    with pytest.raises(DataError, match=r"column 'aus'.*\['emotion'\]"):
        rewards.build("au_f1")(prompts=[""], completions=["x"], emotion=["joy"], log_metric=print)


@pytest.mark.parametrize(
    "label, expected",
    [("Angry.", "anger"), ("  JOY ", "happiness"), ("afraid", "fear"), ("surprised!", "surprise"),
     ("**Disgusted**", "disgust"), ("contemptuous", "contempt"), ("sad", "sadness"), ("neutral", "neutral")],
)  # fmt: skip
def test_normalise_emotion(label, expected):
    assert normalise_emotion(label) == expected


@pytest.mark.parametrize(
    "cited, emotion, expected",
    [
        ({6, 12}, "happiness", 1.0),
        ({12}, "happy", 0.5),  # half the prototype
        ({6, 12, 4}, "joy", 1.0 * (1 - 1 / 3)),  # AU4 points to another emotion
        ({6, 12, 25}, "happiness", 1.0),  # AU25 is in no prototype: neither support nor contradiction
        ({1, 4, 15}, "sadness", 1.0),
        ({15}, "disgust", 1 / 3),  # AU15 is in disgust's prototype too: no contradiction
        ({1, 2, 5, 26}, "fear", 4 / 7),  # every cited AU is also in fear's prototype
        ({9, 15, 16}, "happiness", 0.0),  # no support
        (set(), "anger", 0.0),
        ({12, 14}, "Contempt", 1.0),
    ],
)
def test_consistency_score(cited, emotion, expected):
    assert consistency_score(cited, emotion) == pytest.approx(expected)


def test_consistency_is_none_off_table():
    assert consistency_score({6, 12}, "neutral") is None
    assert consistency_score({6, 12}, "happy, sad") is None


def test_au_consistency_reward():
    fn = rewards.build("au_consistency")
    completions = [
        "<think>Key observations: AU4 (brow lowerer), AU5, AU7, AU23</think><answer>anger</answer>",
        "<think>AU6 (cheek raiser), AU12 (lip corner puller)</think><answer>angry</answer>",
        "<think>AU6 AU12</think>",  # no answer span
        "<think>AU6 AU12</think><answer>calm</answer>",
        "<answer>happy</answer>",  # no reasoning: nothing cited
    ]
    assert fn(prompts=[""] * 5, completions=completions) == [1.0, 0.0, None, None, 0.0]


def test_au_consistency_kardia_tags():
    fn = rewards.build("au_consistency", think_tag="reasoning", answer_tag="emotion")
    assert fn(prompts=[""], completions=["<reasoning>AU1 AU4 AU15</reasoning><emotion>Sad</emotion>"]) == [1.0]
    with pytest.raises(ConfigError, match="think_tag and answer_tag"):
        rewards.build("au_consistency", think_tag="answer")


@pytest.mark.parametrize("name", ["au_f1", "au_consistency"])
def test_tags_must_be_bare_names(name):
    with pytest.raises(ConfigError, match="bare tag name"):
        rewards.build(name, think_tag="<think>")
