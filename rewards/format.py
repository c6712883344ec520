"""Format rewards: does a completion follow the stage's output template (``rewards.templates``)?

``format`` is the R1-Omni / AffectGPT-R1 / Facial-R1 format reward: 1 when the whole completion
(surrounding whitespace stripped) fully matches ``<think>.*?</think>\\s*<answer>.*?</answer>``
(DOTALL), else 0; other templates chain their spans the same way (``Template.matches``). That
regex also accepts duplicated blocks (``.*?`` may swallow ``</answer><answer>``), a route for
hedging between labels, so a completion in which any marker of the template occurs more than
once loses ``duplicate_penalty``: score = match - duplicate_penalty * duplicated, in [-1, 1]
(``duplicate_penalty=0`` gives the published reward).

``tag_count`` is open-r1's ``tag_count_reward`` generalised: each of the template's n markers
(opening and closing markers, facial_cot's headers, emocaliber's inner tags) earns 1/n when it
occurs exactly once and after every earlier marker that occurs exactly once; 0.25 per tag for
r1, in [0, 1].
"""

from __future__ import annotations

import re

from rewards.errors import ConfigError
from rewards.registry import register
from rewards.templates import TEMPLATES, get_template, header_pattern, parse_confidence
from rewards.text import completion_text

__all__ = ["TEMPLATES", "duplicated_tags", "format_score", "matches_template", "parse_confidence", "tag_count_score"]


def check_tag(reward: str, option: str, tag) -> None:
    """ConfigError unless ``tag`` is a bare tag name such as ``think`` (not ``<think>``)."""
    if not isinstance(tag, str) or not re.fullmatch(r"[A-Za-z_][\w-]*", tag):
        raise ConfigError(f"Option {option} of reward {reward!r} must be a bare tag name such as 'think'; got {tag!r}.")


def matches_template(text: str, template_name: str = "r1") -> bool:
    """Whether ``text`` fully matches the template (``Template.matches``).

    >>> matches_template("<think>hm</think>\\n<answer>joy</answer>"), matches_template("<answer>joy</answer>")
    (True, False)
    """
    return get_template(template_name).matches(text)


def duplicated_tags(text: str, template_name: str = "r1") -> list[str]:
    """The template's markers that occur more than once in ``text`` (``Template.duplicated_markers``)."""
    return get_template(template_name).duplicated_markers(text)


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
    template = get_template(template_name)
    markers = template.markers
    credit = 0
    latest = -1
    for marker in markers:
        count, first = _occurrences(text, marker, is_header=marker in template.headers)
        if count != 1:
            continue
        if first > latest:
            credit += 1
        latest = max(latest, first)
    return credit / len(markers)


def _occurrences(text: str, marker: str, is_header: bool) -> tuple[int, int]:
    """How often ``marker`` occurs and where first; headers match case-insensitively at line starts."""
    if not is_header:
        return text.count(marker), text.find(marker)
    starts = [found.start() for found in header_pattern(marker).finditer(text)]
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

    >>> tag_count_reward(template="kardia")(prompts=["p"], completions=["<|emotion_begin|>joy<|emotion_end|>"])
    [0.25]
    """
    get_template(template)
    template_name = template

    def tag_count_fn(prompts, completions, **kwargs) -> list[float]:
        return [tag_count_score(completion_text(c), template_name) for c in completions]

    return tag_count_fn
