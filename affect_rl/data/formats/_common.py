"""Helpers the format adapters share: pass-through columns, chat turns, media and answer spans.

Not an adapter (the registry skips modules whose name starts with ``_``).
"""

from __future__ import annotations

import re
from typing import Any

from affect_rl.errors import DataError
from rewards.templates import tag

# Chat roles as upstreams spell them (OpenAI/ms-swift ``role``, LLaVA/ShareGPT ``from``) -> canonical.
ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "system": "system"}
_PLACEHOLDERS = re.compile(r"<(?:image|video|audio)>")


def rest(row: dict, *consumed: str) -> dict:
    """The row's columns an adapter does not read: they pass through (a ``split`` column keeps working)."""
    return {key: value for key, value in row.items() if key not in consumed}


def required_text(row: dict, name: str) -> str:
    """``row[name]`` as a non-blank string (KeyError when absent, DataError when empty or not text)."""
    value = row[name]
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"field {name!r} must be non-empty text; got {value!r}")
    return value.strip()


def without_placeholders(text: str) -> str | None:
    """``text`` without ``<image>``/``<video>``/``<audio>`` placeholder tokens; None when nothing is left."""
    stripped = _PLACEHOLDERS.sub("", text).strip()
    return stripped or None


def answer_span(text: str) -> str | None:
    """The stripped ``<answer>...</answer>`` content of ``text``, or None."""
    return tag("answer").text(text)


def media_columns(paths: list[str], single: str = "image", several: str = "images") -> dict[str, Any]:
    """One path -> ``{single: path}``; several -> ``{several: paths}``; none -> ``{}``."""
    if not paths:
        return {}
    return {single: paths[0]} if len(paths) == 1 else {several: list(paths)}


def chat_turns(turns: Any, field: str) -> list[dict]:
    """Upstream chat turns as ``{role, text, images}`` (role canonical, text without placeholders).

    Accepts ``{"role", "content"}`` and ``{"from", "value"}`` turns; ``content`` may be a string
    or a list of Qwen-VL parts (``{"type": "text", "text"}``, ``{"type": "image", "image"}``).
    """
    if not isinstance(turns, list) or not turns:
        raise DataError(f"field {field!r} must be a non-empty list of chat turns; got {turns!r:.80}")
    parsed = []
    for number, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            raise DataError(f"{field}[{number}] must be an object with role and content; got {turn!r:.80}")
        role = turn.get("role", turn.get("from"))
        if role not in ROLES:
            raise DataError(f"{field}[{number}] has the role {role!r}; expected one of {', '.join(ROLES)}")
        content = turn["content"] if "role" in turn else turn["value"]
        parsed.append({"role": ROLES[role], **_content(content, f"{field}[{number}]")})
    return parsed


def _content(content: Any, where: str) -> dict:
    if isinstance(content, str):
        return {"text": content, "images": []}
    if not isinstance(content, list):
        raise DataError(f"{where} content must be text or a list of parts; got {content!r:.80}")
    texts, images = [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(part["text"])
        elif kind == "image":
            images.append(part["image"])
        else:
            raise DataError(f"{where} has a content part of type {kind!r}; expected text or image parts")
    return {"text": "\n".join(texts), "images": images}
