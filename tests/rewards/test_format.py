"""Format and tag_count rewards: template compliance, the published regex, anchors, duplicates."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewards
from rewards.errors import ConfigError
from rewards.format import tag_count_score
from rewards.templates import get_template, parse_confidence


def matches_template(text: str, template: str = "r1") -> bool:
    return get_template(template).matches(text)

R1_REGEX = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)

GOOD = {
    "r1": "<think>The voice shakes.</think>\n<answer>anxious, hopeful</answer>",
    "facial_cot": (
        "<think>Key observations: AU12 (lip corner puller) signals happiness.\n"
        "Overall interpretation: a genuine smile.\nConclusion: happiness.</think>\n<answer>happiness</answer>"
    ),
    "kardia": (
        "<|understanding_begin|>She lost her job.<|understanding_end|>\n<|reasoning_begin|>Loss and worry."
        "<|reasoning_end|>\n<|emotion_begin|>anxious<|emotion_end|>\n<|response_begin|>That sounds hard.<|response_end|>"
    ),
    "calibrated": "<think>Brows lowered.</think>\n<answer>anger</answer>\n<confidence>0.85</confidence>",
    "emocaliber": (
        "<think><element>a face</element><human>a woman</human><context>a funeral</context>"
        "<interaction>none</interaction><analysis>grief</analysis></think>\n<answer>sadness</answer>\n"
        "<confidence>0.7</confidence>"
    ),
    "humanomni": "<context>A quiet room.</context>\n<think>She sighs.</think>\n<answer>B</answer>",
}


# A facial_cot completion is also an r1 completion, an emocaliber one a calibrated one.
ACCEPTS = {"r1": {"r1", "facial_cot"}, "facial_cot": {"facial_cot"}, "kardia": {"kardia"},
           "calibrated": {"calibrated", "emocaliber"}, "emocaliber": {"emocaliber"}, "humanomni": {"humanomni"}}  # fmt: skip


@pytest.mark.parametrize("template", sorted(GOOD))
def test_each_template_accepts_its_examples_and_rejects_the_others(template):
    fn = rewards.build("format", template=template)
    scores = fn(prompts=[""] * len(GOOD), completions=[GOOD[name] for name in sorted(GOOD)])
    assert scores == [1.0 if name in ACCEPTS[template] else 0.0 for name in sorted(GOOD)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>a</think><answer>b</answer>", 1.0),
        ("  <think>a</think>\n\n<answer>b</answer>\n", 1.0),  # surrounding whitespace is stripped
        ("<think></think><answer></answer>", 1.0),  # the published regex allows empty spans
        ("Sure! <think>a</think><answer>b</answer>", 0.0),  # text before the template
        ("<think>a</think><answer>b</answer> Hope this helps.", 0.0),  # text after it
        ("<think>a</think> so <answer>b</answer>", 0.0),  # text between the spans
        ("<think>a<answer>b</answer>", 0.0),  # unclosed think
        ("<answer>b</answer><think>a</think>", 0.0),  # wrong order
        ("<think>a</think><answer>b</answer><answer>c</answer>", 0.0),  # regex matches, duplicate -1
        ("<think>a</think><answer>b", 0.0),  # unclosed answer
        ("<answer>b</answer><answer>c</answer>", -1.0),  # no match and duplicated
        ([{"role": "assistant", "content": "<think>a</think><answer>b</answer>"}], 1.0),  # chat messages
    ],
)
def test_r1_format_scores(text, expected):
    assert rewards.build("format")(prompts=[""], completions=[text]) == [expected]


def test_duplicate_penalty_zero_is_the_published_reward():
    text = "<think>a</think><answer>happy</answer><answer>sad</answer>"
    assert R1_REGEX.fullmatch(text)  # the published regex lets a hedged second answer through
    assert rewards.build("format", duplicate_penalty=0.0)(prompts=[""], completions=[text]) == [1.0]
    assert rewards.build("format", duplicate_penalty=0.5)(prompts=[""], completions=[text]) == [0.5]
    assert get_template("r1").duplicated_markers(text) == ["<answer>", "</answer>"]


@pytest.mark.parametrize(
    "text, full, prefix, full_unstripped, prefix_unstripped",
    [
        ("<think>a</think><answer>b</answer>", 1.0, 1.0, 1.0, 1.0),
        ("<think>a</think><answer>b</answer> Hope this helps.", 0.0, 1.0, 0.0, 1.0),
        ("\n<think>a</think><answer>b</answer>\n", 1.0, 1.0, 0.0, 0.0),
        ("<think>a</think><answer>b</answer>\n", 1.0, 1.0, 0.0, 1.0),
        ("Sure! <think>a</think><answer>b</answer>", 0.0, 0.0, 0.0, 0.0),
        ("<think>a</think><answer>b", 0.0, 0.0, 0.0, 0.0),
    ],
)
def test_anchor_and_strip(text, full, prefix, full_unstripped, prefix_unstripped):
    scores = [
        rewards.build("format", anchor=anchor, strip=strip)(None, [text])[0]
        for anchor, strip in (("full", True), ("prefix", True), ("full", False), ("prefix", False))
    ]
    assert scores == [full, prefix, full_unstripped, prefix_unstripped]


_PIECES = st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "x", "<", ">", "/"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_PIECES, max_size=14).map("".join))
def test_r1_match_equals_the_published_regex(text):
    assert matches_template(text) == bool(R1_REGEX.fullmatch(text.strip()))


@pytest.mark.parametrize(
    "think",
    [
        "Key observations: a\nConclusion: c\nOverall interpretation: b",  # wrong order
        "Overall interpretation: b\nKey observations: a\nConclusion: c",  # does not start with observations
        "Key observations: a. Overall interpretation: b\nConclusion: c",  # header not at a line start
        "Key observations: a\nOverall interpretation: b",  # no conclusion
    ],
)
def test_facial_cot_needs_the_three_headers_in_order(think):
    text = f"<think>{think}</think><answer>joy</answer>"
    assert rewards.build("format", template="facial_cot")(prompts=[""], completions=[text]) == [0.0]
    assert matches_template(text, "r1")


def test_facial_cot_headers_are_case_insensitive_and_may_follow_a_newline():
    text = "<think>\nKEY OBSERVATIONS: AU4\n  overall interpretation: tense\nConclusion: anger</think><answer>anger</answer>"
    assert matches_template(text, "facial_cot")


@pytest.mark.parametrize(
    "confidence, valid",
    [("0.85", True), (" .5 ", True), ("0.999", True), ("0", False), ("1", False), ("1.0", False),
     ("-0.2", False), ("85%", False), ("nan", False), ("inf", False), ("1e-3", False), ("high", False), ("", False)],
)  # fmt: skip
def test_calibrated_needs_a_decimal_strictly_between_zero_and_one(confidence, valid):
    text = f"<think>t</think><answer>joy</answer><confidence>{confidence}</confidence>"
    assert matches_template(text, "calibrated") is valid
    assert (parse_confidence(confidence) is not None) is valid


@pytest.mark.parametrize(
    "text, template, expected",
    [
        ("<think>a</think><answer>b</answer>", "r1", 1.0),
        ("<think>\na\n</think>\n<answer>\nb\n</answer>", "r1", 1.0),
        ("<think>a</think>", "r1", 0.5),
        ("<think>a<think></think><answer>b</answer>", "r1", 0.75),  # duplicated <think> earns nothing
        ("<answer>b</answer><think>a</think>", "r1", 0.5),  # answer after think: only think's tags count
        ("", "r1", 0.0),
        (GOOD["facial_cot"], "facial_cot", 1.0),
        ("<think>Key observations: x</think><answer>y</answer>", "facial_cot", 5 / 7),
        ("<|emotion_begin|>joy<|emotion_end|>", "kardia", 0.25),
        (GOOD["kardia"], "kardia", 1.0),
        ("<think>t</think><answer>a</answer><confidence>", "calibrated", 5 / 6),
    ],
)
def test_tag_count_partial_credit(text, template, expected):
    assert tag_count_score(text, template) == pytest.approx(expected)
    assert rewards.build("tag_count", template=template)(prompts=[""], completions=[text]) == [pytest.approx(expected)]


@pytest.mark.parametrize("name", ["format", "tag_count"])
def test_unknown_template_fails_listing_the_accepted_ones(name):
    with pytest.raises(ConfigError, match="option template must be one of 'r1', 'facial_cot', 'kardia', 'calibrated'"):
        rewards.build(name, template="json")


@pytest.mark.parametrize("penalty", [-0.1, 1.5, float("nan")])
def test_duplicate_penalty_outside_zero_one_fails(penalty):
    with pytest.raises(ConfigError, match="option duplicate_penalty must be a number in \\[0, 1\\]"):
        rewards.build("format", duplicate_penalty=penalty)
