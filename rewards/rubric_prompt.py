"""The judge's prompt: a rubric and one sample's blocks rendered into chat messages.

The wording is data: ``data/rubrics/judge_system.jinja`` (the rubric's criteria and the answer
format, the same for every sample, so vLLM's prefix cache reuses it) and ``judge_user.jinja``
(the sample's blocks). Injection resistance: each block is closed by a code that is a hash of
every text in the sample's blocks, so a completion cannot close its own block without
containing its own hash.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from rewards.rubric_spec import RUBRIC_DIR, Rubric, plain_number

SYSTEM_TEMPLATE = "judge_system.jinja"
USER_TEMPLATE = "judge_user.jinja"


@lru_cache(maxsize=1)
def _jinja():
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(RUBRIC_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,  # plain text for a language model, not HTML
    )
    environment.filters["number"] = plain_number
    return environment


def block_code(*texts: str) -> str:
    """The code that marks a sample's blocks: a hash of every text inside them.

    >>> code = block_code("a", "b")
    >>> len(code), code == block_code("a", "b"), code == block_code("ab")
    (12, True, False)
    """
    return hashlib.sha256("\x00".join(texts).encode("utf-8", "replace")).hexdigest()[:12]


def judge_messages(rubric: Rubric, blocks: list[tuple[str, str]]) -> list[dict]:
    """The chat messages sent to the judge for one sample; ``blocks`` are its (title, text) pairs."""
    nonce = block_code(*(text for _, text in blocks))
    example_json = rubric.example_json()
    system = _jinja().get_template(SYSTEM_TEMPLATE).render(rubric=rubric, example_json=example_json)
    user = _jinja().get_template(USER_TEMPLATE).render(
        rubric=rubric, nonce=nonce, blocks=blocks, example_json=example_json
    )
    return [{"role": "system", "content": system.strip()}, {"role": "user", "content": user.strip()}]


def conversation_text(prompt) -> str:
    """A TRL prompt (string or chat messages) as plain ``role: content`` lines.

    >>> parts = [{"type": "text", "text": "yo"}]
    >>> conversation_text([{"role": "user", "content": "hi"}, {"role": "assistant", "content": parts}])
    'user: hi\\nassistant: yo'
    """
    if isinstance(prompt, str) or prompt is None:
        return prompt or ""
    lines = []
    for message in prompt:
        if not isinstance(message, dict):
            lines.append(str(message))
            continue
        content = message.get("content", "")
        if isinstance(content, list):
            content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        lines.append(f"{message.get('role', 'user')}: {content}")
    return "\n".join(lines)
