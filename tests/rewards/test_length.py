"""Length reward: DAPO's soft overlong penalty, minimum reasoning words, answer-length cap."""

import pytest

import rewards
from rewards.errors import ConfigError
from rewards.length import overlong_penalty


@pytest.mark.parametrize(
    "length, expected",
    [(0, 0.0), (384, 0.0), (385, -1 / 128), (448, -0.5), (511, -127 / 128), (512, -1.0), (513, -1.0), (10**6, -1.0)],
)
def test_overlong_penalty_ramps_linearly_over_the_buffer(length, expected):
    assert overlong_penalty(length, 512, 128) == pytest.approx(expected)


def test_buffer_zero_is_a_hard_step_and_null_a_quarter_of_max_length():
    assert [overlong_penalty(n, 100, 0) for n in (100, 101)] == [0.0, -1.0]
    quarter = rewards.build("length", max_length=40)
    assert quarter(prompts=[""] * 2, completions=["w " * 30, "w " * 35]) == [0.0, -0.5]


def test_tokens_when_trl_passes_completion_ids_else_words():
    fn = rewards.build("length", max_length=10, buffer=4)
    text = "<think>" + "w " * 8 + "</think><answer>joy</answer>"  # 9 words
    assert fn(prompts=[""], completions=[text]) == [pytest.approx(-0.75)]
    assert fn(prompts=[""], completions=[text], completion_ids=[[1] * 4]) == [0.0]
    assert fn(prompts=[""], completions=[text], completion_ids=[[1] * 30]) == [-1.0]


def test_minimum_reasoning_words():
    fn = rewards.build("length", max_length=None, min_think_words=10)
    completions = [
        "<think>" + "because " * 10 + "</think><answer>joy</answer>",
        "<think>one two</think><answer>joy</answer>",
        "<think></think><answer>joy</answer>",
        "<answer>joy</answer>",  # no reasoning span at all
    ]
    assert fn(prompts=[""] * 4, completions=completions) == pytest.approx([0.0, -0.8, -1.0, -1.0])


def test_answer_word_cap():
    fn = rewards.build("length", max_length=None, max_answer_words=3)
    answers = ["joy", "joy, relief, hope", "a b c d", "a b c d e f", "a " * 1000, None]
    completions = [f"<think>t</think><answer>{a}</answer>" if a else "<think>t</think>" for a in answers]
    assert fn(prompts=[""] * 6, completions=completions) == pytest.approx([0.0, 0.0, -1 / 3, -1.0, -1.0, 0.0])


def test_components_add_up_and_are_logged():
    logged = {}
    fn = rewards.build("length", max_length=4, buffer=2, min_think_words=4, max_answer_words=1, template="kardia")
    text = "<|reasoning_begin|>a b<|reasoning_end|> <|emotion_begin|>x y<|emotion_end|> pad"  # 5 words
    scores = fn(prompts=[""], completions=[text], log_metric=lambda name, value: logged.update({name: value}))
    assert scores == [pytest.approx(-1.0 - 0.5 - 1.0)]
    assert logged == {"length/overlong": -1.0, "length/think": -0.5, "length/answer": -1.0}


def test_span_overrides_name_other_spans_of_the_template():
    fn = rewards.build("length", max_length=None, max_answer_words=1, template="kardia", answer_span="response")
    text = "<|emotion_begin|>a b c<|emotion_end|><|response_begin|>one two three<|response_end|>"
    assert fn(prompts=[""], completions=[text]) == [-1.0]


def test_default_is_the_overlong_penalty_only():
    assert rewards.spec("length").options["max_length"] == 512
    assert overlong_penalty(448, 512, 512 // 4) == -0.5  # buffer null: a quarter of max_length
    fn = rewards.build("length")
    # No reasoning span and a 300-word answer: only the length (300 words < 512 - 128) counts.
    assert fn(prompts=[""], completions=["<answer>" + "a " * 300 + "</answer>"]) == [0.0]
    assert fn(prompts=[""], completions=["<answer>" + "a " * 600 + "</answer>"]) == [-1.0]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_length": 0}, "option max_length must be an integer >= 1 or null; got 0."),
        ({"max_length": "512"}, "option max_length must be an integer >= 1 or null; got '512'."),
        ({"buffer": -1}, "option buffer must be an integer >= 0 or null; got -1."),
        ({"max_length": 100, "buffer": 200}, "option buffer must be at most max_length (100); got 200."),
        ({"min_think_words": 0}, "option min_think_words must be an integer >= 1 or null; got 0."),
        ({"max_answer_words": 2.5}, "option max_answer_words must be an integer >= 1 or null; got 2.5."),
        ({"answer_span": "emotion"}, "option answer_span must be a span of template 'r1' (think, answer) or null"),
    ],
)
def test_bad_options_fail_naming_them(options, message):
    with pytest.raises(ConfigError) as caught:
        rewards.build("length", **options)
    assert message in str(caught.value)
