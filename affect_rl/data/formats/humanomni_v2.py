"""HumanOmniV2: multiple-choice rows with their own ``<context><think><answer>`` solution -> ``choice`` rows.

Upstream schema: HumanMLLM/HumanOmniV2 ``src/open-r1-multimodal/src/open_r1/grpo_qwenomni.py``
(``LazySupervisedDataset``, ``TYPE_TEMPLATE``), ``.../vlm_modules/qwenomni_module.py``
(``accuracy_reward``) and ``data_config/emer_rewrite.json``. A row: ``problem``, ``problem_type``,
``options`` (``["A. Calm", "B. Annoyed", ...]``), ``solution``
(``<context>...</context><think>...</think><answer>B,C</answer>``), ``answer`` (``"B,C"``),
``clean_list``, ``data_type`` (``video`` | ``image``), ``path`` (a string, or ``{"image": ...,
"audio": ...}``) and ``video`` (a copy of ``path``).

Mapping: ``question`` <- problem; ``options`` <- options (their "A. " prefixes dropped);
``answer`` <- answer (else the solution's answer span): letters such as ``"B,C"``; ``completion`` <- solution,
verbatim (it fits the ``humanomni`` template); ``problem_type`` is kept (reward routing reads
it); the media path goes to ``video`` or ``image`` per ``data_type`` (a dict path to its own
media keys). ``multi_answer`` follows the upstream prompt: ``emer_ov_mc`` asks for "single or
multiple option letter(s)", ``multiple choice`` for one letter.

Text mode (``context_from_solution: true``): the rows hold no transcript, and the only text
describing the clip is the solution's ``<context>`` (the annotated audio-visual context). This
option copies it into the row's ``context``: the prompt shows it, and it is the reference of the
``context`` judge rubric (HumanOmniV2 compares the model's ``<context>`` with the solution's).
Off by default: with the media, the context is the model's to write.

Problem types: ``multiple choice`` and ``emer_ov_mc`` are choice items; ``judge`` (Yes/No)
becomes a choice between "Yes" and "No" (the accuracy reward accepts the letter or the word).
``free-form``, ``numerical``, ``regression``, ``OCR`` and ``emer_ov`` have free-text, numeric or
open-vocabulary answers that no task here renders from a video question yet: such a row is a
DataError, and ``format_options: {problem_types: [...]}`` keeps only the listed types.
"""

from __future__ import annotations

from affect_rl.data.formats import Format
from affect_rl.data.formats._common import answer_span, rest
from affect_rl.errors import DataError
from rewards.templates import tag

CHOICE_TYPES = ("multiple choice", "emer_ov_mc")
YES_NO = ["Yes", "No"]
SUPPORTED = (*CHOICE_TYPES, "judge")
MEDIA_KEYS = ("image", "video", "audio")


def _media(row: dict) -> dict:
    path = row.get("path", row.get("video"))
    if isinstance(path, dict):
        unknown = [key for key in path if key not in MEDIA_KEYS]
        if unknown:
            raise DataError(f"path has the key {unknown[0]!r}; expected media keys among {', '.join(MEDIA_KEYS)}")
        return {key: path[key] for key in MEDIA_KEYS if path.get(key)}
    if path is None:
        return {}
    kind = row.get("data_type", "video")
    if kind not in ("video", "image"):
        raise DataError(f"data_type is {kind!r}; expected video or image")
    return {kind: path}


def _answer(row: dict, solution: str | None) -> str:
    answer = row.get("answer") or (answer_span(solution) if solution else None)
    if not answer:
        raise DataError("the row has no answer: give `answer` or a solution with <answer>...</answer>")
    return answer


def _solution_context(solution: str | None) -> str:
    context = tag("context").text(solution) if solution else None
    if not context:
        raise DataError("context_from_solution needs a solution with a non-empty <context>...</context>")
    return context


def convert(row: dict, problem_types: list[str] | str | None = None, context_from_solution: bool = False) -> list[dict]:
    problem_type = row["problem_type"]
    kept = [problem_types] if isinstance(problem_types, str) else problem_types
    if kept is not None and problem_type not in kept:
        return []
    if problem_type not in SUPPORTED:
        raise DataError(
            f"problem_type {problem_type!r} is not supported by the choice task yet (it takes "
            f"{', '.join(SUPPORTED)}); keep only those rows with format_options: "
            f"{{problem_types: [{', '.join(SUPPORTED)}]}}"
        )
    solution = row.get("solution")
    answer = _answer(row, solution)
    options = row["options"] if problem_type in CHOICE_TYPES else YES_NO
    return [rest(row, "problem", "options", "solution", "answer", "path", "video") | {
        "question": row["problem"],
        "options": options,
        "answer": answer,
        "multi_answer": problem_type == "emer_ov_mc",
        "completion": solution,
        "problem_type": problem_type,
        **({"context": _solution_context(solution)} if context_from_solution else {}),
        **_media(row),
    }]  # fmt: skip


FORMAT = Format(
    name="humanomni_v2",
    task="choice",
    source="HumanMLLM/HumanOmniV2 src/open-r1-multimodal/src/open_r1/grpo_qwenomni.py, data_config/emer_rewrite.json",
    summary="problem, problem_type, options, solution (<context><think><answer>), answer, path/data_type",
    convert=convert,
    options={"problem_types": (None, "keep only these problem types, e.g. [multiple choice, emer_ov_mc]"),
             "context_from_solution": (False, ("text mode: the solution's <context> becomes the row's context "
                                               "(shown in the prompt; the context rubric's reference)"))},
)
