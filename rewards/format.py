"""Format rewards: does a completion follow the stage's output template (``rewards.templates``)?

``format`` is the R1-Omni / Facial-R1 format reward: 1 when the whole completion fully matches
``<think>.*?</think>\\s*<answer>.*?</answer>`` (DOTALL), else 0; other templates chain their
spans the same way (``Template.matches``). That regex also accepts duplicated blocks (``.*?``
may swallow ``</answer><answer>``), a route for hedging between labels, so a completion in
which any marker of the template occurs more than once loses ``duplicate_penalty``:
score = match - duplicate_penalty * duplicated, in [-1, 1].

``tag_count`` is open-r1's ``tag_count_reward`` generalised: each of the template's n markers
(opening and closing markers, facial_cot's headers, emocaliber's inner tags) earns 1/n when it
occurs exactly once and after every earlier marker that occurs exactly once; 0.25 per tag for
r1, in [0, 1].
"""

from __future__ import annotations

from typing import Literal

from rewards.base import Annotated, Between, Reward
from rewards.registry import register
from rewards.templates import get_template, header_pattern
from rewards.text import TemplateName, completion_text

Anchor = Literal["full", "prefix"]


def format_score(
    text: str, template_name: str = "r1", duplicate_penalty: float = 1.0, anchor: Anchor = "full", strip: bool = True
) -> float:
    """``match - duplicate_penalty * duplicated`` for one completion text, in [-1, 1].

    >>> format_score("<think>a</think><answer>b</answer>")
    1.0
    >>> format_score("<think>a</think><answer>b</answer><answer>c</answer>")
    0.0
    >>> format_score("<think>a</think><answer>b</answer> and more", duplicate_penalty=0.0, anchor="prefix")
    1.0
    """
    template = get_template(template_name)
    matched = 1.0 if template.matches(text, prefix=anchor == "prefix", strip=strip) else 0.0
    duplicated = 1.0 if duplicate_penalty and template.duplicated_markers(text) else 0.0
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


@register
class Format(Reward):
    """Template compliance, in [-1, 1]: ``match - duplicate_penalty * duplicated``.

    ``match`` is 1 when the completion follows the template: with ``anchor: full`` the whole
    completion must be the template (R1-Omni ``src/r1-v/src/open_r1/grpo.py:99-104`` and
    Facial-R1 ``grpo_jsonl.py:898-913``: ``re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>",
    text, re.DOTALL)``); with ``anchor: prefix`` it must start with it, trailing text allowed
    (HumanOmniV2 ``qwenomni_module.py:121-141``: ``re.search(r"^<context>.*?</context>\\s*<think>...",
    text, re.DOTALL)``; the AffectGPT-R1 reproduction ``affect_reward.py:123-129``: ``re.match``).
    ``strip: true`` ignores whitespace around the completion first (the published regexes do not).
    ``duplicated`` is 1 when a marker of the template occurs more than once.

    Published settings: ``duplicate_penalty: 0, strip: false`` with ``anchor: full`` (R1-Omni,
    Facial-R1) or ``prefix`` (HumanOmniV2, AffectGPT-R1 community). affect-rl's defaults
    (penalty 1, stripped, full) refuse hedged duplicate answers and trailing chatter.
    """

    name = "format"
    summary = "1 if the completion follows the template (R1-Omni/Facial-R1 regex), minus a duplicate-tag penalty"
    value_range = (-1.0, 1.0)
    source = "R1-Omni, Facial-R1, HumanOmniV2, AffectGPT-R1 (format rewards)"

    def __init__(
        self,
        *,
        template: TemplateName = "r1",
        duplicate_penalty: Annotated[float, Between(0, 1)] = 1.0,
        anchor: Anchor = "full",
        strip: bool = True,
    ):
        self.template, self.duplicate_penalty, self.anchor, self.strip = template, duplicate_penalty, anchor, strip

    def __call__(self, prompts, completions, **columns) -> list[float]:
        return [
            format_score(completion_text(c), self.template, self.duplicate_penalty, self.anchor, self.strip)
            for c in completions
        ]


@register
class TagCount(Reward):
    """open-r1's ``tag_count_reward`` for any template, with an order check; in [0, 1].

    >>> TagCount(template="kardia")(None, ["<|emotion_begin|>joy<|emotion_end|>"])
    [0.25]
    """

    name = "tag_count"
    summary = "partial format credit: 1/n per template tag present exactly once and in order (open-r1)"
    value_range = (0.0, 1.0)
    source = "open-r1 (huggingface/open-r1, rewards.py tag_count_reward)"

    def __init__(self, *, template: TemplateName = "r1"):
        self.template = template

    def __call__(self, prompts, completions, **columns) -> list[float]:
        return [tag_count_score(completion_text(c), self.template) for c in completions]
