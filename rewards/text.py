"""Helpers shared by every reward: turn a TRL completion into text, find tagged spans."""

from __future__ import annotations

import re
from functools import lru_cache


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


@lru_cache(maxsize=64)
def _tag_pattern(tag: str) -> re.Pattern:
    return re.compile(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", re.DOTALL)


def tag_span(text: str, tag: str) -> str | None:
    """The content of the first ``<tag>...</tag>`` in ``text``, stripped, or None.

    >>> tag_span("<think>x</think><answer> joy </answer>", "answer")
    'joy'
    """
    match = _tag_pattern(tag).search(text)
    return match.group(1).strip() if match else None
