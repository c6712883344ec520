"""Reading completions: their text, and the spans a reward scores (answer, reasoning, confidence).

A reward reads a span through the stage's template (``rewards.templates``): ``template`` names
it, and ``answer_span`` / ``reasoning_span`` options may name another span of the same
template. :func:`read_span` also offers the published systems' own readings of a span (first or
last occurrence, with or without crossing lines, the whole completion when it is absent).
Every reading is linear in the completion length.
"""

from __future__ import annotations

from typing import Literal

from rewards.templates import TEMPLATES, Span, get_template, tag

# The ``template`` option of every span-reading reward: checked like any other Literal option.
TemplateName = Literal[tuple(TEMPLATES)]
Which = Literal["first", "last"]
Fallback = Literal["none", "completion"]


def completion_text(completion) -> str:
    """The text of one completion: a string as is, or the content of a chat message list.

    >>> completion_text([{"role": "assistant", "content": "hi"}])
    'hi'
    >>> completion_text("plain")
    'plain'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        return "".join(completion_text(message) for message in completion)
    return "" if completion is None else str(completion)


def tag_span(text: str, name: str) -> str | None:
    """The stripped content of the first ``<name>...</name>`` in ``text``, or None.

    Same result as ``re.search(rf"<{name}>(.*?)</{name}>", text, re.DOTALL)`` then ``.strip()``,
    in linear time (the lazy regex rescans the rest of the text from every unclosed opening).

    >>> tag_span("<think>x</think><answer> joy </answer>", "answer"), tag_span("<answer>joy", "answer")
    ('joy', None)
    """
    return tag(name).text(text)


def span_contents(text: str, span: Span, multiline: bool = True):
    """Contents (unstripped) of the successive non-overlapping ``opening ... closing`` in ``text``.

    The matches of ``re.finditer(opening + "(.*?)" + closing, text, re.DOTALL if multiline else 0)``:
    without ``multiline`` a match may not cross a newline, as the published regexes without
    DOTALL read. Linear: the next closing and the next newline are found once and reused until
    the scan passes them (the lazy regex rescans the rest of the text from every opening).

    >>> list(span_contents("<a>1</a><a>2\\n</a><a>3</a>", tag("a"), multiline=False))
    ['1', '3']
    """
    position, closing, newline = 0, -1, -1
    while True:
        opening = text.find(span.opening, position)
        if opening < 0:
            return
        start = opening + len(span.opening)
        if closing < start:
            closing = text.find(span.closing, start)
            if closing < 0:
                return
        if not multiline:
            if newline < start:
                newline = text.find("\n", start)
                newline = len(text) if newline < 0 else newline
            if newline < closing:
                position = newline + 1
                continue
        yield text[start:closing]
        position = closing + len(span.closing)


def read_span(
    text: str, span: Span, which: Which = "first", multiline: bool = True, fallback: Fallback = "none"
) -> str | None:
    """The stripped content of the ``which`` occurrence of ``span`` in ``text``.

    When the span is absent: None, or with ``fallback="completion"`` the whole stripped text
    (R1-Omni, Facial-R1 and the AffectGPT-R1 reproduction read an untagged completion as the answer).

    >>> answer = tag("answer")
    >>> read_span("<answer>a</answer><answer> b </answer>", answer, which="last")
    'b'
    >>> read_span("<answer>a\\nb</answer>", answer, multiline=False), read_span(" sad ", answer, fallback="completion")
    (None, 'sad')
    """
    found = None
    for content in span_contents(text, span, multiline):
        found = content
        if which == "first":
            break
    if found is not None:
        return found.strip()
    return text.strip() if fallback == "completion" else None


def template_span(reward, template_name: str, role: str, override: str | None, option: str) -> Span:
    """The span a reward reads: ``override`` if set, else the template's span for ``role``.

    ``role`` is ``"answer"``, ``"reasoning"`` or ``"confidence"`` (a Template attribute).
    An override that is not a span of the template is a ConfigError in the option style.
    """
    template = get_template(template_name)
    name = override if override is not None else getattr(template, role)
    names = template.span_names()
    if name not in names:
        expected = f"a span of template {template_name!r} ({', '.join(names)}) or null"
        raise reward.option_error(option, expected, override if override is not None else name)
    return template.span(name)
