"""Reading completions: tag_span and read_span against the regexes they claim to equal, in linear time."""

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.columns import gold_column, is_missing
from rewards.errors import DataError
from rewards.templates import special_token_span, tag
from rewards.text import completion_text, read_span, tag_span

PIECES = st.sampled_from(["<answer>", "</answer>", "<answer", "answer>", "<a>", "</a>", " ", "\n", "x", "é", "<", "/"])
TEXTS = st.lists(PIECES, max_size=16).map("".join)


@settings(max_examples=500, deadline=None)
@given(TEXTS)
def test_tag_span_equals_the_regex_of_its_docstring(text):
    found = re.search(r"<answer>(.*?)</answer>", text, re.DOTALL)
    assert tag_span(text, "answer") == (found.group(1).strip() if found else None)


@settings(max_examples=500, deadline=None)
@given(TEXTS, st.sampled_from(["first", "last"]), st.booleans(), st.sampled_from(["none", "completion"]))
def test_read_span_equals_the_published_regexes(text, which, multiline, fallback):
    found = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL if multiline else 0)
    expected = (found[0] if which == "first" else found[-1]).strip() if found else None
    if expected is None and fallback == "completion":
        expected = text.strip()
    assert read_span(text, tag("answer"), which, multiline, fallback) == expected


def test_special_token_spans_read_like_tags():
    span = special_token_span("emotion")
    assert read_span("<|emotion_begin|> a <|emotion_end|><|emotion_begin|>b<|emotion_end|>", span, "last") == "b"


@pytest.mark.parametrize("multiline", [True, False])
@pytest.mark.parametrize("which", ["first", "last"])
def test_read_span_is_linear_on_hostile_text(which, multiline):
    hostile = ["<answer>" * 300_000, ("<answer>" * 1000 + "\n") * 300, "<answer>x</answer>" * 100_000]
    start = time.perf_counter()
    for text in hostile:
        read_span(text, tag("answer"), which, multiline)
    assert time.perf_counter() - start < 3


def test_completion_text():
    assert completion_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]) == "ab"
    assert completion_text(None) == "" and completion_text(12) == "12"


def test_gold_column_and_missing_values():
    assert gold_column("r", {"label": ("a", "b")}, "label", 2, "label_column") == ["a", "b"]
    with pytest.raises(DataError, match=r"needs the dataset column 'label'.*columns present: emotion\).*label_column"):
        gold_column("r", {"emotion": ["a"], "log_metric": print}, "label", 1, "label_column")
    with pytest.raises(DataError, match="has 1 values for 2 completions"):
        gold_column("r", {"label": ["a"]}, "label", 2, "label_column")
    assert [is_missing(v) for v in (None, float("nan"), 0.0, "", "nan")] == [True, True, False, False, False]
