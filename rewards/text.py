"""Helpers shared by every reward: turn a TRL completion into text, find tagged spans."""

from __future__ import annotations


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


def tag_span(text: str, tag: str) -> str | None:
    """The stripped content of the first ``<tag>...</tag>`` in ``text``, or None.

    Same result as ``re.search(r"<tag>(.*?)</tag>", text, re.DOTALL)``, in linear time: the lazy
    regex rescans the rest of the text from every unclosed ``<tag>``, which takes minutes on
    ``"<answer>" * 100_000``.

    >>> tag_span("<think>x</think><answer> joy </answer>", "answer"), tag_span("<answer>joy", "answer")
    ('joy', None)
    """
    opening, closing = f"<{tag}>", f"</{tag}>"
    start = text.find(opening)
    if start < 0:
        return None
    end = text.find(closing, start + len(opening))
    return None if end < 0 else text[start + len(opening) : end].strip()
