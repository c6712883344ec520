"""Action Unit rewards: the AU list parser, citation parsing, Facial-R1's AU F1, EMFACS consistency."""

import pytest

import rewards
from rewards.action_units import au_f1_score, cited_aus, consistency_score, emfacs_emotion, parse_aus
from rewards.errors import ConfigError, DataError


@pytest.mark.parametrize(
    "value, expected",
    [
        ([12, 6, 6], [6, 12]),
        ((4.0, "7"), [4, 7]),
        (["AU1", "au2", "AU 4", "AU-5", "AU06"], [1, 2, 4, 5, 6]),
        ("12", [12]),
        ("AU12", [12]),
        ("1,2,4", [1, 2, 4]),
        ("1, 2; 4", [1, 2, 4]),
        ("AU1+AU2", [1, 2]),
        ("AU 1 + AU 2", [1, 2]),
        ("[1, 2]", [1, 2]),
        ('["AU6", 12]', [6, 12]),
        ("['AU6', 'AU12']", [6, 12]),
        ("", []),
        ([], []),
        (25, [25]),
        (99, [99]),
    ],
)
def test_parse_aus(value, expected):
    assert parse_aus(value) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ([0], "AU 0 is not a FACS Action Unit"),
        ("AU0", "AU 0 is not a FACS Action Unit"),
        (["AU1", 0.0], "AU 0 is not a FACS Action Unit"),
        ([100], "AU 100 is not a FACS code"),
        ("AU123456", "AU 123456 is not a FACS code"),
        (["9" * 400], "is not an Action Unit"),
        ([10**30], "is not a FACS code"),
        ([-4], "-4 is not an Action Unit"),
        ([6.5], "6.5 is not an Action Unit"),
        ([float("nan")], "nan is not an Action Unit"),
        ([True], "True is not an Action Unit"),
        (["smile"], "'smile' is not an Action Unit"),
        ("AU6 and AU12", "'and' is not an Action Unit"),
        ({"AU6": 1}, "dict is not a list of Action Units"),
        (None, "NoneType is not a list of Action Units"),
    ],
)
def test_parse_aus_refuses_what_is_not_an_au(value, message):
    with pytest.raises(DataError) as caught:
        parse_aus(value)
    assert message in str(caught.value)


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
    golds = [[6, 12], "AU6+AU12", [6, 12], (6, 12), []]
    assert fn(prompts=[""] * 5, completions=completions, aus=golds) == pytest.approx([1.0, -1.0, -1.0, 1 / 3, 0.0])


def test_au_f1_spans_and_options():
    text = ("<|understanding_begin|>u<|understanding_end|><|reasoning_begin|>AU6, lip corner puller<|reasoning_end|>"
            "<|emotion_begin|>joy<|emotion_end|><|response_begin|>r<|response_end|>")  # fmt: skip
    kardia = rewards.build("au_f1", template="kardia", aus_column="gold_aus")
    assert kardia(prompts=[""], completions=[text], gold_aus=[[6, 12]]) == [1.0]
    codes_only = rewards.build("au_f1", template="kardia", match_names=False)
    assert codes_only(prompts=[""], completions=[text], aus=[[6, 12]]) == [pytest.approx(1 / 3)]
    with pytest.raises(ConfigError, match="option reasoning_span must be a span of template 'kardia'"):
        rewards.build("au_f1", template="kardia", reasoning_span="think")


def test_gold_items_may_be_strings_or_floats_and_off_table_numbers_are_dropped():
    fn = rewards.build("au_f1")
    text = "<think>AU6 AU12</think><answer>happy</answer>"
    assert fn(prompts=[""], completions=[text], aus=[["AU6", "12", 99.0]]) == [1.0]
    assert fn(prompts=[""], completions=[text], aus=[[99]]) == [0.0]  # gold empty once restricted


def test_facial_r1_variant_counts_every_code_as_a_string():
    fn = rewards.build("au_f1", variant="facial_r1")
    texts = ["<THINK>au12 AU99 BEAU4</think>", "<think>AU012, lip corner puller</think>", "<think>AU6"]
    assert fn(prompts=[""] * 3, completions=texts, aus=[[12, 99, 4]] * 3) == pytest.approx([1.0, -1.0, -1.0])


def test_missing_gold_does_not_apply():
    fn = rewards.build("au_f1")
    assert fn(prompts=[""] * 3, completions=["<think>AU6</think>"] * 3, aus=[None, float("nan"), [6]]) == [None, None, 1.0]


@pytest.mark.parametrize(
    "aus, message",
    [
        (["6, smile"], r"column 'aus', row 1 of the batch holds '6, smile' \(str\); expected a list of Action Units"),
        ([[6, "smile"]], r"column 'aus', row 1 .*'smile' is not an Action Unit"),
        ([[6, True]], r"column 'aus', row 1 .*True is not an Action Unit"),
        ([[0]], r"column 'aus', row 1 .*AU 0 is not a FACS Action Unit"),
        ([[6.5]], r"column 'aus', row 1 .*6\.5 is not an Action Unit"),
        ([{"AU6": 1}], r"column 'aus', row 1 .*dict is not a list"),
    ],
)
def test_malformed_gold_names_the_column_and_the_row(aus, message):
    fn = rewards.build("au_f1")
    with pytest.raises(DataError, match=message):
        fn(prompts=["", ""], completions=["<think>AU6</think>"] * 2, aus=[[6]] + aus)


def test_missing_gold_column_names_it_and_the_columns_present():
    with pytest.raises(DataError, match=r"column 'aus', which this batch lacks \(columns present: emotion\)"):
        rewards.build("au_f1")(prompts=[""], completions=["x"], emotion=["joy"], log_metric=print)


@pytest.mark.parametrize(
    "label, expected",
    [("Angry.", "anger"), ("  JOY ", "happiness"), ("afraid", "fear"), ("surprised!", "surprise"),
     ("**Disgusted**", "disgust"), ("contemptuous", "contempt"), ("sad", "sadness"), ("neutral", None),
     ("shocked", None)],  # shocked: a synonym of anger and of surprise, so neither
)  # fmt: skip
def test_emfacs_emotion_through_the_wheel_synonyms(label, expected):
    assert emfacs_emotion(label) == expected


@pytest.mark.parametrize(
    "cited, emotion, expected",
    [
        ({6, 12}, "happiness", 1.0),
        ({12}, "happy", 0.5),  # half the prototype
        ({6, 12, 4}, "joy", 1.0 * (1 - 1 / 3)),  # AU4 points to another emotion
        ({6, 12, 25}, "happiness", 1.0),  # AU25 is in no prototype: neither support nor contradiction
        ({4, 6, 12, 25}, "happiness", 1 - 1 / 3),  # contradiction = 1 of the 3 diagnostic AUs, not of 4 cited
        ({9, 15, 16, 25, 26, 27}, "disgust", 1 - 1 / 4),  # AU26 (surprise, fear) contradicts; 25, 27 do not count
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
    assert consistency_score({6, 12}, "joy", match="inflection") is None


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


def test_au_consistency_kardia_spans():
    fn = rewards.build("au_consistency", template="kardia")
    text = "<|reasoning_begin|>AU1 AU4 AU15<|reasoning_end|><|emotion_begin|>Sad<|emotion_end|>"
    assert fn(prompts=[""], completions=[text]) == [1.0]
    with pytest.raises(ConfigError, match="option answer_span must be a span other than the reasoning span 'think'"):
        rewards.build("au_consistency", answer_span="think")
