"""Format rewards: does a completion follow the project's output template?

Templates (the project-wide contract; tags are plain text):

- ``r1``: ``<think>...</think>`` then ``<answer>...</answer>``
- ``facial_cot``: as r1, the think span holding ``Key observations:``, ``Overall interpretation:``
  and ``Conclusion:`` (ExpLLM's three parts), each at the start of a line, in this order
- ``kardia``: ``<understanding>``, ``<reasoning>``, ``<emotion>``, ``<response>`` spans (Kardia-R1)
- ``calibrated``: r1 then ``<confidence>c</confidence>`` with a decimal 0 < c < 1 (EmoCaliber)

``format`` is the R1-Omni / AffectGPT-R1 / Facial-R1 format reward: 1 when the whole completion
(surrounding whitespace stripped) fully matches ``<think>.*?</think>\\s*<answer>.*?</answer>``
(DOTALL), else 0; other templates chain their spans the same way. That regex also accepts
duplicated blocks (``.*?`` may swallow ``</answer><answer>``), a route for hedging between
labels, so a completion in which any tag of the template occurs more than once loses
``duplicate_penalty``: score = match - duplicate_penalty * duplicated, in [-1, 1]
(``duplicate_penalty=0`` gives the published reward).

``tag_count`` is open-r1's ``tag_count_reward`` generalised: each of the template's n markers
(opening and closing tags, and facial_cot's headers) earns 1/n when it occurs exactly once and
after every earlier marker that occurs exactly once; 0.25 per tag for r1, in [0, 1].

Matching is linear in the completion length: regexes with ``.*?`` between tags are quadratic
on hostile text, so spans are chained with searches for the junctions ``</a>\\s*<b>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from affect_rl.errors import ConfigError
from rewards.registry import register
from rewards.text import completion_text, tag_span


@dataclass(frozen=True)
class Template:
    """One output template: its tagged spans in order, and headers its first span must hold."""

    spans: tuple[str, ...]
    # Headers that must start lines of the first span, in order (facial_cot).
    headers: tuple[str, ...] = ()
    # The spans holding the reasoning and the final label.
    reasoning_tag: str = "think"
    answer_tag: str = "answer"

    @property
    def markers(self) -> list[str]:
        """Every tag (and header) in the order a compliant completion writes them."""
        markers = []
        for index, span in enumerate(self.spans):
            markers.append(f"<{span}>")
            if index == 0:
                markers.extend(self.headers)
            markers.append(f"</{span}>")
        return markers


TEMPLATES: dict[str, Template] = {
    "r1": Template(spans=("think", "answer")),
    "facial_cot": Template(
        spans=("think", "answer"), headers=("Key observations:", "Overall interpretation:", "Conclusion:")
    ),
    "kardia": Template(
        spans=("understanding", "reasoning", "emotion", "response"), reasoning_tag="reasoning", answer_tag="emotion"
    ),
    "calibrated": Template(spans=("think", "answer", "confidence")),
}

# A plain decimal: "0.85", ".5"; no signs, exponents, percentages, NaN or infinity.
_DECIMAL = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,20})?|\.[0-9]{1,20}")


def check_tag(reward: str, option: str, tag) -> None:
    """ConfigError unless ``tag`` is a bare tag name such as ``think`` (not ``<think>``)."""
    if not isinstance(tag, str) or not re.fullmatch(r"[A-Za-z_][\w-]*", tag):
        raise ConfigError(f"Option {option} of reward {reward!r} must be a bare tag name such as 'think'; got {tag!r}.")


def get_template(name: str) -> Template:
    """The template called ``name``; an unknown name raises ConfigError listing the accepted ones."""
    if name not in TEMPLATES:
        raise ConfigError(f"Unknown template {name!r}. Accepted templates: {', '.join(TEMPLATES)}.")
    return TEMPLATES[name]


def parse_confidence(text: str | None) -> float | None:
    """A verbalised confidence as a float strictly between 0 and 1, else None.

    >>> parse_confidence(" 0.85 "), parse_confidence("1"), parse_confidence("nan"), parse_confidence("85%")
    (0.85, None, None, None)
    """
    if text is None or not _DECIMAL.fullmatch(text.strip()):
        return None
    value = float(text.strip())
    return value if 0.0 < value < 1.0 else None


@lru_cache(maxsize=None)
def _junction(closing_span: str, opening_span: str) -> re.Pattern:
    return re.compile(rf"</{re.escape(closing_span)}>\s*<{re.escape(opening_span)}>")


@lru_cache(maxsize=None)
def _header(header: str) -> re.Pattern:
    # At a line start or right after a tag. [ \t]* rather than \s*, so that a run of newlines is
    # not rescanned from every line start (quadratic on hostile text).
    return re.compile(rf"(?:^|(?<=>))[ \t]*{re.escape(header)}", re.MULTILINE | re.IGNORECASE | re.ASCII)


def matches_template(text: str, template_name: str = "r1") -> bool:
    """Whether ``text`` (whitespace-stripped) fully matches the template, as the published regex.

    Spans are chained greedily at the earliest junction, which finds a match whenever one exists
    because ``.*?`` between the tags accepts anything.

    >>> matches_template("<think>hm</think>\\n<answer>joy</answer>")
    True
    >>> matches_template("<answer>joy</answer>")
    False
    >>> matches_template("<think>k</think><answer>sad</answer><confidence>0.7</confidence>", "calibrated")
    True
    """
    spec = get_template(template_name)
    text = text.strip()
    opening, closing = f"<{spec.spans[0]}>", f"</{spec.spans[-1]}>"
    if not text.startswith(opening):
        return False
    position = _after_headers(text, len(opening), spec.headers)
    for closing_span, opening_span in zip(spec.spans, spec.spans[1:]):
        found = None if position is None else _junction(closing_span, opening_span).search(text, position)
        position = found.end() if found else None
    if position is None or not text.endswith(closing) or len(text) - len(closing) < position:
        return False
    if spec.spans[-1] == "confidence":
        return parse_confidence(text[position : len(text) - len(closing)]) is not None
    return True


def _after_headers(text: str, position: int, headers: tuple[str, ...]) -> int | None:
    """Where the last header ends, finding each in order from ``position``; the first must come
    right away (after whitespace). None if one is missing; ``position`` if there are none."""
    if not headers:
        return position
    first = re.compile(rf"\s*{re.escape(headers[0])}", re.IGNORECASE | re.ASCII).match(text, position)
    if not first:
        return None
    position = first.end()
    for header in headers[1:]:
        found = _header(header).search(text, position)
        if not found:
            return None
        position = found.end()
    return position


def duplicated_tags(text: str, template_name: str = "r1") -> list[str]:
    """The template's tags that occur more than once in ``text``.

    >>> duplicated_tags("<think>a</think><answer>b</answer><answer>c</answer>")
    ['<answer>', '</answer>']
    """
    spec = get_template(template_name)
    tags = [marker for marker in spec.markers if marker.startswith("<")]
    return [tag for tag in tags if text.count(tag) > 1]


def format_score(text: str, template_name: str = "r1", duplicate_penalty: float = 1.0) -> float:
    """``match - duplicate_penalty * duplicated`` for one completion text, in [-1, 1].

    >>> format_score("<think>a</think><answer>b</answer>")
    1.0
    >>> format_score("<think>a</think><answer>b</answer><answer>c</answer>")
    0.0
    >>> format_score("<think>a</think><answer>b</answer><answer>c</answer>", duplicate_penalty=0.0)
    1.0
    """
    matched = 1.0 if matches_template(text, template_name) else 0.0
    duplicated = 1.0 if duplicated_tags(text, template_name) else 0.0
    return matched - duplicate_penalty * duplicated


def tag_count_score(text: str, template_name: str = "r1") -> float:
    """Share of the template's markers that occur once and after every earlier once-occurring marker.

    >>> tag_count_score("<think>a</think><answer>b</answer>")
    1.0
    >>> tag_count_score("<think>a</think><answer>b")
    0.75
    >>> tag_count_score("<answer>b</answer><think>a</think>")
    0.5
    """
    markers = get_template(template_name).markers
    credit = 0
    latest = -1
    for marker in markers:
        count, first = _occurrences(text, marker)
        if count != 1:
            continue
        if first > latest:
            credit += 1
        latest = max(latest, first)
    return credit / len(markers)


def _occurrences(text: str, marker: str) -> tuple[int, int]:
    """How often ``marker`` occurs and where first; headers match case-insensitively at line starts."""
    if marker.startswith("<"):
        return text.count(marker), text.find(marker)
    starts = [found.start() for found in _header(marker).finditer(text)]
    return len(starts), (starts[0] if starts else -1)


@register(
    "format",
    summary="1 if the completion fully matches the template (R1-Omni/Facial-R1 regex), minus a duplicate-tag penalty",
    value_range=(-1.0, 1.0),
)
def format_reward(*, template: str = "r1", duplicate_penalty: float = 1.0):
    """Full template compliance (R1-Omni, AffectGPT-R1, Facial-R1), in [-1, 1].

    Args:
        template: one of ``r1``, ``facial_cot``, ``kardia``, ``calibrated``.
        duplicate_penalty: subtracted when a tag of the template occurs more than once, in [0, 1].

    Returns:
        ``fn(prompts, completions, **kwargs) -> list[float]``.

    >>> fn = format_reward()
    >>> fn(prompts=["p", "p"], completions=["<think>x</think>\\n<answer>joy</answer>", "joy"])
    [1.0, 0.0]
    """
    get_template(template)
    if not 0.0 <= duplicate_penalty <= 1.0:
        raise ConfigError(f"Option duplicate_penalty of reward 'format' must be in [0, 1]; got {duplicate_penalty!r}.")
    template_name = template

    def format_fn(prompts, completions, **kwargs) -> list[float]:
        return [format_score(completion_text(c), template_name, duplicate_penalty) for c in completions]

    return format_fn


@register(
    "tag_count",
    summary="partial format credit: 1/n per template tag present exactly once and in order (open-r1)",
    value_range=(0.0, 1.0),
)
def tag_count_reward(*, template: str = "r1"):
    """open-r1's ``tag_count_reward`` for any template, with an order check; in [0, 1].

    Args:
        template: one of ``r1``, ``facial_cot``, ``kardia``, ``calibrated``.

    Returns:
        ``fn(prompts, completions, **kwargs) -> list[float]``.

    >>> tag_count_reward(template="kardia")(prompts=["p"], completions=["<emotion>joy</emotion>"])
    [0.25]
    """
    get_template(template)
    template_name = template

    def tag_count_fn(prompts, completions, **kwargs) -> list[float]:
        return [tag_count_score(completion_text(c), template_name) for c in completions]

    return tag_count_fn
