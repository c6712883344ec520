"""Parity of the judged rewards with their sources.

HumanOmniV2 (HumanMLLM/HumanOmniV2 @9bf0e6f, Apache-2.0 per its README.md:163-165),
``src/open-r1-multimodal/src/open_r1/vlm_modules/qwenomni_module.py``:

- context reward (``patial_context_reward``, :366-437): the judge compares the reference
  ``<context>`` with the model's ``<context>`` on the levels 5, 4, 2, 1, 0 (:383-387, no 3) and
  the reward is ``ast.literal_eval(reward) / 5.0`` (:404).
- logic reward (``patial_reasoning_reward``, :439-511): the judge sees the model's own
  ``<context>`` (:491, "context") and ``<think>`` (:492, "reasoning path"), five 1-point criteria
  (:456-464) summed, ``/ 5.0`` (:475); an empty context or think scores 0.0 (:495-496).

Kardia-R1 (JhCircle/Kardia-R1 README.md:59): the five rubric dimensions Relevance, Empathy,
Persona Consistency, Safety, Fluency; scale, weights and aggregation are unpublished.
"""

from __future__ import annotations

import itertools

import pytest
from judge_fakes import EMPATHY_KEYS, build, fake_judge, verdict  # noqa: F401

from rewards.rubric_prompt import judge_messages
from rewards.rubric_spec import RUBRIC_DIR, load_rubric
from rewards.rubric_verdict import parse_verdict

LOGIC_KEYS = ["clue_integration", "reflection", "logic", "problem_analysis", "consistency"]
# qwenomni_module.py:383-387, verbatim.
OFFICIAL_CONTEXT_LEVELS = {
    5: "Hypothesis clearly and accurately reflects significant core themes or key aspects of the reference. It "
       "demonstrates a good understanding of a substantial part of the reference material.",
    4: "Hypothesis reflects some important themes or aspects of the reference. The connection is evident, though "
       "perhaps not as comprehensive or central as a 5.",
    2: "Hypothesis shows a recognizable connection to themes or aspects of the reference, but it might be more "
       "superficial, focus on less central points, or only partially grasp a key aspect.",
    1: "Hypothesis has a tenuous or very limited connection to the reference. It might touch on a peripheral detail or "
       "a heavily reinterpreted aspect, but largely misses the main substance.",
    0: "Hypothesis does not reflect any significant themes or key aspects of the reference, or is on a completely "
       "different topic.",
}  # fmt: skip
# qwenomni_module.py:456-464, verbatim.
OFFICIAL_LOGIC_CRITERIA = [
    "Integration of Clues (1 point): During the reasoning process, there is incorporation of clues from the video, "
    "image, or audio.",
    "Reflection and Confirmation (1 point): The reasoning involves reflection or second confirmation of choices or "
    "answers, including revisiting video, image, or audio evidence.",
    "Logical Reasoning (1 point): The thought process is clear, deriving conclusions through rigorous logical "
    "reasoning, analysis, or extension without additional assumptions or contradictions.",
    "Problem Analysis (1 point): The reasoning process includes thorough analysis in conjunction with the problem at "
    "hand.",
    "Overall Consistency (1 point): The reasoning text is based on visual or audio evidence and context information, "
    "presenting no extra assumptions or contradictions.",
]


def official_context_reward(score_text: str) -> float:
    """qwenomni_module.py:403-406: ``reward = ast.literal_eval(reward) / 5.0``, 0 on any error."""
    import ast

    try:
        return ast.literal_eval(score_text) / 5.0
    except Exception:
        return 0.0


@pytest.mark.parametrize("score", [0, 1, 2, 4, 5])
def test_context_reward_is_the_official_score_over_five(score):
    rubric = load_rubric("context")
    scores = parse_verdict(verdict(coverage=score), rubric)
    assert rubric.combine(scores) == pytest.approx(official_context_reward(str(score)))


@pytest.mark.parametrize("score", [3, 2.5, 6, -1])
def test_context_scores_outside_the_official_levels_are_no_verdict(score):
    assert parse_verdict(verdict(coverage=score), load_rubric("context")) is None


def test_context_prompt_quotes_the_official_levels():
    system = judge_messages(load_rubric("context"), [("reference", "r"), ("hypothesis", "h")])[0]["content"]
    for level, wording in OFFICIAL_CONTEXT_LEVELS.items():
        assert f"{level} points: {wording}" in system
    assert "coverage (0, 1, 2, 4 or 5)" in system and "3 points" not in system


@pytest.mark.parametrize("met", list(itertools.product([0, 1], repeat=5)))
def test_logic_reward_is_the_number_of_criteria_met_over_five(met):
    rubric = load_rubric("logic")
    scores = parse_verdict(verdict(**dict(zip(LOGIC_KEYS, met))), rubric)
    assert rubric.combine(scores) == pytest.approx(sum(met) / 5.0)


def test_logic_criteria_are_one_point_each_with_the_official_wording():
    rubric = load_rubric("logic")
    assert parse_verdict(verdict(**dict.fromkeys(LOGIC_KEYS, 0.5)), rubric) is None
    system = judge_messages(rubric, [("context", "c"), ("reasoning path", "r")])[0]["content"]
    for key, criterion in zip(LOGIC_KEYS, OFFICIAL_LOGIC_CRITERIA):
        assert f"- {key} (0 or 1): {criterion}" in system


def test_the_context_judge_compares_the_reference_with_the_models_context(fake_judge):
    judge = fake_judge(lambda body: (200, verdict(coverage=4)))
    reward = build(judge, rubric="context")
    completion = "<context>A man shouts in a kitchen.</context><think>He is angry.</think><answer>B</answer>"
    assert reward.call_sync(["the question"], [completion], context=["A chef yells at a cook."]) == [0.8]
    user = judge.bodies[0]["messages"][1]["content"]
    reference, hypothesis = user.split("hypothesis (block")
    assert "A chef yells at a cook." in reference and "A man shouts in a kitchen." in hypothesis
    assert "He is angry." not in user and "the question" not in user  # official: reference and hypothesis only


def test_the_logic_judge_sees_the_models_own_context_and_think_only(fake_judge):
    judge = fake_judge(lambda body: (200, verdict(**dict(zip(LOGIC_KEYS, [1, 0, 1, 1, 0])))))
    reward = build(judge, rubric="logic")
    completion = "<context>A man shouts.</context><think>Shouting means anger.</think><answer>B</answer>"
    assert reward.call_sync(["the question"], [completion], context=["a reference"]) == [0.6]
    user = judge.bodies[0]["messages"][1]["content"]
    context, reasoning = user.split("reasoning path (block")
    assert "A man shouts." in context and "Shouting means anger." in reasoning
    assert "a reference" not in user and "the question" not in user and "<answer>" not in user


@pytest.mark.parametrize(
    "completion", ["<context></context><think>t</think><answer>B</answer>", "<context>c</context><answer>B</answer>"]
)
def test_logic_without_context_or_think_scores_zero_unasked(fake_judge, completion):
    judge = fake_judge(lambda body: (200, verdict(**dict.fromkeys(LOGIC_KEYS, 1))))
    assert build(judge, rubric="logic").call_sync(["q"], [completion]) == [0.0]  # official :495-496
    assert judge.bodies == []


def test_kardia_empathy_rubric_keeps_the_published_dimensions_and_says_what_is_unpublished():
    assert load_rubric("empathy").keys == EMPATHY_KEYS  # Relevance, Empathy, Persona Consistency, Safety, Fluency
    header = (RUBRIC_DIR / "empathy.yaml").read_text().split("\nname:")[0]
    assert "README.md:59" in header and "UNPUBLISHED: the judge model, the prompt, the scale, the weights" in header
