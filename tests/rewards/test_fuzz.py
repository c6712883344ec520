"""Hostile completions for every registered reward (issue 3, item 10).

Each reward in ``rewards.available()`` (but ``rubric``, which needs a judge server), with its
default options and a few option variants, must return one finite float inside its registered
``value_range`` per completion, or None where its docstring says None means "does not apply",
on arbitrary unicode, megabyte strings, nested, duplicated and unclosed tags, thousands of
emotion words, AU numbers out of range and NaN, infinity or text in ``<confidence>``.
A malformed or missing gold column must raise DataError naming the column (and the row).
"""

from __future__ import annotations

import inspect
import json
import math
import signal
from contextlib import contextmanager
from importlib import resources

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rewards
from rewards.errors import ConfigError, DataError
from rewards.templates import TEMPLATES

NEEDS_A_SERVER = {"rubric"}
NAMES = [name for name in rewards.available() if name not in NEEDS_A_SERVER]

# Option variants tried besides the defaults; keys a reward does not accept, and combinations
# it refuses (a calibration reward on a template without a confidence span), are left out.
VARIANTS = [
    {"template": "facial_cot"}, {"template": "kardia"}, {"template": "calibrated"}, {"template": "emocaliber"},
    {"template": "humanomni"}, {"min_think_words": 5, "max_answer_words": 3, "max_length": 64, "buffer": 0},
    {"level": "level2", "max_words": 3, "family_penalty": 1.0}, {"variant": "community", "max_words": 2},
    {"per_sample": "mean_pr", "family_penalty": 0.5},
    {"match": "exact"}, {"match": "verbatim", "which": "last", "multiline": False, "fallback": "completion"},
    {"choice_score": "f1"}, {"choice_parse": "humanomni", "choice_score": "f1"}, {"match_names": False},
    {"variant": "facial_r1"}, {"template": "emocaliber", "variant": "emocaliber"}, {"anchor": "prefix", "strip": False},
]  # fmt: skip

MARKERS = sorted({marker for template in TEMPLATES.values() for marker in template.markers} | {"<context>", "</context>"})
WHEEL = json.loads((resources.files("rewards") / "data/emotion_wheel/wheel_mapping.json").read_text(encoding="utf-8"))
EMOTION_WORDS = sorted(WHEEL["format_mapping"])
AU_NAMES = ["lip corner puller", "Brow-Lowerer", "cheek raiser", "nose wrinkler"]
# Characters that Unicode case folding or digit classes treat as ASCII ones.
CONFUSABLES = ["lip\u017f part", "chee\u212a raiser", "AU\u0661\u0662", "\u0130", "\ufb01", "\u00df", "ANGRY", "Ha\u0308ppy"]
CONFIDENCE_JUNK = ["nan", "NaN", "inf", "-inf", "1e309", "-0.0", "0", "1", "1.0", "0.5", "0.5.5", ".", "", " ",
                   "85%", "very sure", "0x1p-2", "½", "０.５", "1" * 400, "0." + "9" * 400]  # fmt: skip

# Gold columns of the task schemas; row k of a batch takes GOLDS[k % len(GOLDS)].
GOLDS = [
    {"emotions": ["happy", "relieved"], "label": "happiness", "aus": [6, 12], "options": ["joy", "anger"], "answer": ["A"]},
    {"emotions": [], "label": "neutral", "aus": [], "options": None, "answer": None},
    {"emotions": "['Angry', 'tense']", "label": "anger", "aus": "AU4+AU5, 7, 23, 99", "options": None, "answer": None},
    {"emotions": ["not-a-wheel-word"], "label": "surprise", "aus": [1, 2, 5, 26], "options": {"A": "x", "B": "y"},
     "answer": "AB"},
    {"emotions": None, "label": float("nan"), "aus": None, "options": None, "answer": None},  # no gold: None
]  # fmt: skip

fragments = st.one_of(
    st.text(max_size=40),
    st.sampled_from(MARKERS),
    st.sampled_from(EMOTION_WORDS),
    st.sampled_from(AU_NAMES),
    st.sampled_from(CONFUSABLES),
    st.integers(-10, 10**12).map(lambda n: f"AU{n}"),
    st.sampled_from(CONFIDENCE_JUNK).map(lambda c: f"<confidence>{c}</confidence>"),
    st.floats().map(str),
    st.sampled_from([", ", "\n", " ", "<", ">", "</", "Key observations:", "Conclusion:"]),
)
texts = st.lists(fragments, max_size=30).map("".join)
completions_strategy = st.one_of(texts, texts.map(lambda text: [{"role": "assistant", "content": text}]))

MEGABYTE = 1_000_000
_words = ", ".join(EMOTION_WORDS[i % len(EMOTION_WORDS)] for i in range(5000))
HOSTILE = [
    "",
    "a" * MEGABYTE,
    "<answer>" * (MEGABYTE // 8),
    "<think>" * (MEGABYTE // 7) + "</answer>",
    "<think>" + "</think>\n<answer>" * (MEGABYTE // 18),
    "<think>Key observations:" + "\n" * MEGABYTE + "</think><answer>x</answer>",
    "<think>" + "Conclusion:\n " * (MEGABYTE // 13),
    "<think>" + " ".join(f"AU{n}" for n in range(0, 200_000, 7)) + "</think><answer>happy</answer>",
    "<think>AU" + "9" * MEGABYTE + "</think><answer>joy</answer>",
    "<think>lip corner puller " * 20_000 + "</think>" * 20_000,
    f"<think>many</think><answer>{_words}</answer>",
    f"<think>many</think><answer>{_words}</answer><confidence>0.5</confidence>",
    "<think><think><answer><answer>joy</answer></answer></think></think><answer>joy</answer>",
    "<think>t</think><answer>joy</answer>" * 1000,
    "<think>t</think><answer>joy</answer><confidence>" + "0." + "5" * MEGABYTE + "</confidence>",
    "<understanding>u</understanding><reasoning>AU4</reasoning><emotion>anger</emotion><response>" + "ok " * 300_000,
    "\x00\ud7ff\U0010ffff" * 100_000,
    "<think>" + " ".join(CONFUSABLES) * 1000 + "</think><answer>" + CONFUSABLES[-1] + "</answer>",
    *(f"<think>t</think><answer>anger</answer><confidence>{c}</confidence>" for c in CONFIDENCE_JUNK),
]


def build_all(name: str) -> list:
    """The reward with its defaults and with every variant whose keys it accepts."""
    accepted = rewards.spec(name).options
    built = [rewards.build(name)]
    for variant in VARIANTS:
        if set(variant) <= set(accepted):
            try:
                built.append(rewards.build(name, **variant))
            except ConfigError:
                continue
    return built


def may_return_none(name: str) -> bool:
    """Whether the reward documents None ("does not apply")."""
    return "does not apply" in (inspect.getdoc(rewards.spec(name).cls) or "")


def columns_for(count: int) -> dict:
    return {key: [GOLDS[row % len(GOLDS)][key] for row in range(count)] for key in GOLDS[0]}


def check_scores(name: str, scores, count: int, low: float, high: float) -> None:
    assert isinstance(scores, list) and len(scores) == count, f"{name} returned {scores!r:.200}"
    for score in scores:
        if score is None:
            assert may_return_none(name), f"{name} returned None but does not document it"
            continue
        assert isinstance(score, (int, float)) and not isinstance(score, bool), f"{name} returned {score!r}"
        assert math.isfinite(score) and low - 1e-9 <= score <= high + 1e-9, f"{name}: {score} outside [{low}, {high}]"


@contextmanager
def time_limit(seconds: int, what: str):
    """Fail instead of hanging when a reward is super-linear on hostile text (the regex engine
    checks signals, so the alarm interrupts a runaway match)."""

    def interrupt(signum, frame):
        raise AssertionError(f"{what} took over {seconds} s: quadratic behaviour on hostile text?")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_every_reward_is_fuzzed():
    assert set(NAMES) == set(rewards.available()) - NEEDS_A_SERVER
    assert len(build_all("accuracy")) == 10 and len(build_all("calibration")) == 5


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(completions=st.lists(completions_strategy, min_size=1, max_size=4), with_ids=st.booleans())
def test_random_hostile_completions(name, completions, with_ids):
    extra = {"completion_ids": [[1] * (17 * i) for i in range(len(completions))]} if with_ids else {}
    for reward_fn in build_all(name):
        scores = reward_fn(prompts=["p"] * len(completions), completions=completions, log_metric=lambda k, v: None,
                           log_extra=lambda k, v: None, trainer_state=None, **columns_for(len(completions)), **extra)  # fmt: skip
        check_scores(name, scores, len(completions), *reward_fn.value_range)


@pytest.mark.parametrize("name", NAMES)
def test_megabyte_and_structured_hostile_completions(name):
    for reward_fn in build_all(name):
        with time_limit(60, f"{name} on {len(HOSTILE)} hostile completions"):
            scores = reward_fn(prompts=["p"] * len(HOSTILE), completions=HOSTILE, **columns_for(len(HOSTILE)))
        check_scores(name, scores, len(HOSTILE), *reward_fn.value_range)


BAD_VALUES = [42, {"label": "joy"}, 3.5, ["joy", None, {"x": 1}]]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", BAD_VALUES, ids=lambda value: type(value).__name__)
def test_malformed_gold_fails_naming_the_column_and_the_row(name, bad):
    """Row 1's gold columns are all malformed: a reward that reads one says which, and where."""
    columns = columns_for(2)
    for key in columns:
        columns[key][1] = bad
    for reward_fn in build_all(name):
        try:
            scores = reward_fn(prompts=["p", "p"], completions=["<think>AU6</think><answer>joy</answer>"] * 2, **columns)
        except DataError as error:
            assert "row 1" in str(error) and any(f"'{key}'" in str(error) for key in columns), str(error)
        else:
            check_scores(name, scores, 2, *reward_fn.value_range)


@pytest.mark.parametrize("name", NAMES)
def test_missing_gold_column_fails_naming_it(name):
    for reward_fn in build_all(name):
        try:
            scores = reward_fn(prompts=["p"], completions=["<think>AU6</think><answer>joy</answer>"])
        except DataError as error:
            assert "column '" in str(error), str(error)
        else:
            check_scores(name, scores, 1, *reward_fn.value_range)
