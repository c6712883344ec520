"""Output templates: the one home of each template's spans, answer span and reasoning span.

A template is the shape a completion must take: an ordered list of spans (``<think>...</think>``
then ``<answer>...</answer>`` for ``r1``), and which span holds the reasoning, the answer and,
for calibrated templates, the verbalised confidence. The data layer renders prompts and SFT
targets in it (its wording is in ``affect_rl/data/templates/{system,target}_<name>.jinja``) and
checks a row's own completion against it; the format rewards score compliance with it; the eval
reads the answer, reasoning and confidence spans through it.

Templates, their sources and the tasks they render:

- ``r1`` (R1-Omni, AffectGPT-R1, Facial-R1): think, answer. Every task.
- ``facial_cot`` (ExpLLM): r1, the think span holding the lines ``Key observations:``,
  ``Overall interpretation:`` and ``Conclusion:`` in this order. Facial rows.
- ``kardia`` (Kardia-R1, JhCircle/Kardia-R1 README): understanding, reasoning, emotion, response,
  written as the special-token spans ``<|understanding_begin|>...<|understanding_end|>`` and so
  on; the emotion span is the answer, the response span is judged. Empathy rows.
- ``calibrated`` (EmoCaliber's answer and confidence, without its sub-tags): think, answer,
  confidence (a plain decimal 0 < c < 1). Single-answer tasks.
- ``emocaliber`` (wdqqdw/EmoCaliber, ``train/cus_reward.py``): calibrated, the think span holding
  ``<element>``, ``<human>``, ``<context>``, ``<interaction>`` and ``<analysis>`` in this order.
- ``humanomni`` (HumanMLLM/HumanOmniV2): context, think, answer. Every task.

Matching is linear in the completion length: regexes with ``.*?`` between tags are quadratic on
hostile text, so spans are chained by searching for each junction ``</a>\\s*<b>`` in turn.

>>> get_template("kardia").extract("<|emotion_begin|> sad <|emotion_end|>", "emotion")
'sad'
>>> get_template("r1").matches("<think>hm</think>\\n<answer>joy</answer>")
True
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache

from rewards.errors import ConfigError

ALL_TASKS = ("emotion", "label", "choice", "facial", "empathy")
SINGLE_ANSWER_TASKS = ("label", "choice", "facial", "empathy")

# A plain decimal: "0.85", ".5"; no signs, exponents, percentages, NaN or infinity.
_DECIMAL = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,20})?|\.[0-9]{1,20}")


def parse_confidence(text: str | None) -> float | None:
    """A verbalised confidence as a float strictly between 0 and 1, else None.

    >>> parse_confidence(" 0.85 "), parse_confidence("1"), parse_confidence("nan"), parse_confidence("85%")
    (0.85, None, None, None)
    """
    if text is None or not _DECIMAL.fullmatch(text.strip()):
        return None
    value = float(text.strip())
    return value if 0.0 < value < 1.0 else None


@dataclass(frozen=True)
class Span:
    """One delimited part of a completion: its name and the markers around it."""

    name: str
    opening: str
    closing: str

    def text(self, completion: str) -> str | None:
        """The stripped content of the first ``opening ... closing`` in ``completion``, or None.

        Same result as ``re.search(opening + "(.*?)" + closing, completion, re.DOTALL)``, in
        linear time (the lazy regex rescans the rest of the text from every unclosed opening).

        >>> tag("answer").text("<think>x</think><answer> joy </answer>"), tag("answer").text("<answer>joy")
        ('joy', None)
        """
        start = completion.find(self.opening)
        if start < 0:
            return None
        end = completion.find(self.closing, start + len(self.opening))
        return None if end < 0 else completion[start + len(self.opening) : end].strip()


def tag(name: str) -> Span:
    """The span ``<name>...</name>``."""
    return Span(name, f"<{name}>", f"</{name}>")


def special_token_span(name: str) -> Span:
    """The span ``<|name_begin|>...<|name_end|>`` (Kardia-R1's special-token spans)."""
    return Span(name, f"<|{name}_begin|>", f"<|{name}_end|>")


@dataclass(frozen=True)
class Template:
    """One output template: its spans in order and the roles they play."""

    name: str
    spans: tuple[Span, ...]
    tasks: tuple[str, ...]
    source: str
    reasoning: str = "think"  # the span holding the reasoning
    answer: str = "answer"  # the span holding the final answer (label, letters or word list)
    confidence: str | None = None  # the span holding a verbalised 0 < c < 1, if any
    headers: tuple[str, ...] = ()  # lines the reasoning span must hold, in order (facial_cot)
    inner: tuple[Span, ...] = ()  # spans the reasoning span must hold, in order (emocaliber)

    def span(self, name: str) -> Span:
        """The span called ``name`` (a top-level or an inner span); ConfigError if there is none."""
        for span in (*self.spans, *self.inner):
            if span.name == name:
                return span
        names = ", ".join(span.name for span in (*self.spans, *self.inner))
        raise ConfigError(f"Template {self.name!r} has no span {name!r}; its spans are: {names}.")

    def span_names(self) -> tuple[str, ...]:
        return tuple(span.name for span in (*self.spans, *self.inner))

    def extract(self, completion: str, name: str) -> str | None:
        """The stripped content of span ``name`` in ``completion``, or None when it is absent."""
        return self.span(name).text(completion)

    @property
    def markers(self) -> list[str]:
        """Every marker (and header) in the order a compliant completion writes them."""
        markers = []
        for span in self.spans:
            markers.append(span.opening)
            if span.name == self.reasoning:
                markers.extend(self.headers)
                for inner in self.inner:
                    markers += [inner.opening, inner.closing]
            markers.append(span.closing)
        return markers

    def duplicated_markers(self, completion: str) -> list[str]:
        """The template's span markers that occur more than once in ``completion``.

        >>> get_template("r1").duplicated_markers("<think>a</think><answer>b</answer><answer>c</answer>")
        ['<answer>', '</answer>']
        """
        return [marker for marker in self.markers if marker not in self.headers and completion.count(marker) > 1]

    def matches(self, completion: str, *, prefix: bool = False, strip: bool = True) -> bool:
        """Whether ``completion`` (whitespace-stripped unless ``strip`` is false) fully matches the template.

        For ``r1`` this is the published format reward's
        ``re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", text, re.DOTALL)``; other
        templates chain their spans the same way. With ``prefix`` the text must only start with
        the template (``re.match``, trailing text allowed). Spans are chained at the earliest
        junction, which finds a match whenever one exists because ``.*?`` between the markers
        accepts anything. Headers and inner spans must occur in order inside the reasoning span,
        and a confidence span must hold a plain decimal strictly between 0 and 1.
        """
        text = completion.strip() if strip else completion
        first, last = self.spans[0], self.spans[-1]
        if not text.startswith(first.opening) or not (prefix or text.endswith(last.closing)):
            return False
        position = len(first.opening)
        bounds = {}  # span name -> (start, end) of its content
        for current, following in zip(self.spans, self.spans[1:]):
            found = _junction(current.closing, following.opening).search(text, position)
            if not found:
                return False
            bounds[current.name] = (position, found.start())
            position = found.end()
        end = text.find(last.closing, position) if prefix else len(text) - len(last.closing)
        if end < position:
            return False
        bounds[last.name] = (position, end)
        reasoning = bounds.get(self.reasoning)
        if reasoning is not None and not self._reasoning_parts_in_order(text, *reasoning):
            return False
        if self.confidence is not None:
            start, stop = bounds[self.confidence]
            return parse_confidence(text[start:stop]) is not None
        return True

    def _reasoning_parts_in_order(self, text: str, start: int, end: int) -> bool:
        """Headers (each at a line start) and inner spans occur in order within ``text[start:end]``."""
        position = start
        for number, header in enumerate(self.headers):
            pattern = _first_header(header) if number == 0 else header_pattern(header)
            found = pattern.match(text, position) if number == 0 else pattern.search(text, position, end)
            if not found or found.end() > end:
                return False
            position = found.end()
        for inner in self.inner:
            opening = text.find(inner.opening, position, end)
            closing = -1 if opening < 0 else text.find(inner.closing, opening + len(inner.opening), end)
            if closing < 0:
                return False
            position = closing + len(inner.closing)
        return True


@lru_cache(maxsize=None)
def _junction(closing: str, opening: str) -> re.Pattern:
    return re.compile(rf"{re.escape(closing)}\s*{re.escape(opening)}")


@lru_cache(maxsize=None)
def _first_header(header: str) -> re.Pattern:
    return re.compile(rf"\s*{re.escape(header)}", re.IGNORECASE | re.ASCII)


@lru_cache(maxsize=None)
def header_pattern(header: str) -> re.Pattern:
    # At a line start or right after a marker. [ \t]* rather than \s*, so that a run of newlines
    # is not rescanned from every line start (quadratic on hostile text).
    return re.compile(rf"(?:^|(?<=>))[ \t]*{re.escape(header)}", re.MULTILINE | re.IGNORECASE | re.ASCII)


_EMOCALIBER_INNER = tuple(tag(name) for name in ("element", "human", "context", "interaction", "analysis"))

TEMPLATES: dict[str, Template] = {
    template.name: template
    for template in (
        Template("r1", (tag("think"), tag("answer")), ALL_TASKS, "R1-Omni, AffectGPT-R1, Facial-R1"),
        Template(
            "facial_cot",
            (tag("think"), tag("answer")),
            ("facial",),
            "ExpLLM (facial chain of thought)",
            headers=("Key observations:", "Overall interpretation:", "Conclusion:"),
        ),
        Template(
            "kardia",
            tuple(special_token_span(name) for name in ("understanding", "reasoning", "emotion", "response")),
            ("empathy",),
            "Kardia-R1 (JhCircle/Kardia-R1 README)",
            reasoning="reasoning",
            answer="emotion",
        ),
        Template(
            "calibrated",
            (tag("think"), tag("answer"), tag("confidence")),
            SINGLE_ANSWER_TASKS,
            "EmoCaliber (answer and verbalised confidence)",
            confidence="confidence",
        ),
        Template(
            "emocaliber",
            (tag("think"), tag("answer"), tag("confidence")),
            SINGLE_ANSWER_TASKS,
            "EmoCaliber (wdqqdw/EmoCaliber, train/cus_reward.py)",
            confidence="confidence",
            inner=_EMOCALIBER_INNER,
        ),
        Template("humanomni", (tag("context"), tag("think"), tag("answer")), ALL_TASKS, "HumanOmniV2"),
    )
}


def get_template(name: str) -> Template:
    """The template called ``name``; an unknown name raises ConfigError listing the accepted ones."""
    if name not in TEMPLATES:
        close = difflib.get_close_matches(str(name), TEMPLATES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"Unknown template {name!r}.{hint} Accepted templates: {', '.join(TEMPLATES)}.")
    return TEMPLATES[name]
