"""Per-row routing (applies_to) and the runtime range check every recipe reward goes through."""

import asyncio
import pickle

import numpy as np
import pytest

import rewards
from rewards.entries import build_entries, parse_entries
from rewards.errors import DataError, RangeError
from rewards.routing import AsyncRouted, Routed, route

# HumanOmniV2-style rows (HumanMLLM/HumanOmniV2, data_config/*.json): problem_type picks the scoring.
ROWS = [
    {"problem_type": "multiple choice", "options": ["A. Urgent", "B. Calm", "C. Angry"], "answer": ["B"],
     "completion": "<context>c</context><think>t</think><answer>B</answer>"},
    {"problem_type": "emer_ov_mc", "options": ["A. Urgent", "B. Calm", "C. Angry", "D. Sad"], "answer": ["A", "C"],
     "completion": "<context>c</context><think>t</think><answer>A,D</answer>"},
    {"problem_type": "free-form", "options": None, "answer": None,
     "completion": "<context>c</context><think>t</think><answer>She is calm.</answer>"},
    {"problem_type": "emer_ov_mc", "options": ["A. Urgent", "B. Calm", "C. Angry"], "answer": ["A", "C"],
     "completion": "<context>c</context><think>t</think><answer>A, C</answer>"},
]  # fmt: skip
RECIPE = [
    {"name": "accuracy", "template": "humanomni", "applies_to": {"problem_type": ["multiple choice"]}},
    {"name": "accuracy", "template": "humanomni", "choice_score": "f1", "applies_to": {"problem_type": ["emer_ov_mc"]}},
    {"name": "format", "template": "humanomni", "anchor": "prefix", "duplicate_penalty": 0.0, "strip": False},
]


def columns(rows):
    return {key: [row[key] for row in rows] for key in ("problem_type", "options", "answer")}


def test_humanomni_rows_are_routed_by_problem_type():
    functions = build_entries(parse_entries(RECIPE, "humanomni.yaml"))
    assert [fn.__name__ for fn in functions] == ["accuracy", "accuracy_2", "format"]
    completions = [row["completion"] for row in ROWS]
    scores = [fn(None, completions, **columns(ROWS)) for fn in functions]
    assert scores[0] == [1.0, None, None, None]
    assert scores[1] == [None, pytest.approx(0.5), None, 1.0]
    assert scores[2] == [1.0, 1.0, 1.0, 1.0]


def test_routing_calls_the_reward_on_the_selected_rows_only_and_spreads_log_extra():
    seen, logged = [], {}

    def probe(prompts, completions, log_extra, **columns):
        seen.append((list(completions), columns["answer"], columns.get("completion_ids")))
        log_extra("probe", [f"saw {c}" for c in completions])
        return [0.5] * len(completions)

    probe.value_range = (0.0, 1.0)
    routed = Routed(probe, {"problem_type": ("emer_ov_mc",)})
    scores = routed(["p"] * 4, ["a", "b", "c", "d"], completion_ids=[[1], [2], [3], [4]], trainer_state=None,
                    log_extra=logged.__setitem__, **columns(ROWS))  # fmt: skip
    assert scores == [None, 0.5, None, 0.5]
    assert seen == [(["b", "d"], [["A", "C"], ["A", "C"]], [[2], [4]])]
    assert logged == {"probe": [None, "saw b", None, "saw d"]}
    assert routed(None, ["a"], **columns(ROWS[:1])) == [None]  # no row applies: the reward is not called
    assert len(seen) == 1


def test_routing_column_must_exist():
    routed = route(rewards.build("format"), {"problem_type": ("free-form",)})
    with pytest.raises(DataError, match=r"applies_to the column 'problem_type', which this batch lacks.*answer"):
        routed(None, ["x"], answer=["A"], log_metric=print)


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), float("inf"), "1.0", True, [1.0]])
def test_a_value_outside_the_declared_range_names_the_reward_the_row_and_the_value(value):
    def broken(prompts, completions, **columns):
        return [0.5, value]

    broken.value_range = (0.0, 1.0)
    with pytest.raises(RangeError) as caught:
        Routed(broken)(None, ["a", "b"])
    assert f"Reward 'broken' returned {value!r} for row 1 of the batch, outside its declared range [0, 1]" in str(caught.value)


def test_a_wrong_number_of_values_is_refused():
    with pytest.raises(RangeError, match="returned 1 values for 2 completions"):
        Routed(lambda prompts, completions, **kw: [0.0], name="short")(None, ["a", "b"])


def test_numpy_values_and_none_pass():
    reward = Routed(lambda prompts, completions, **kw: [np.float32(0.25), None, np.int64(1)], name="np")
    assert reward(None, ["a", "b", "c"]) == [0.25, None, 1.0]


def test_the_instance_range_is_checked_not_only_the_class_range():
    wheel = route(rewards.build("emotion_wheel", family_penalty=0.5))
    assert wheel.value_range == (-0.5, 1.0)
    calibration = route(rewards.build("calibration", invalid_score=-20.0))
    assert calibration(None, ["garbage"], label=["anger"]) == [-20.0]


def test_routed_rewards_pickle_keep_their_name_and_expose_the_reward():
    routed = build_entries(parse_entries(RECIPE, "r.yaml"))[1]
    clone = pickle.loads(pickle.dumps(routed))
    assert clone.__name__ == "accuracy_2" and clone.applies_to == {"problem_type": ("emer_ov_mc",)}
    assert clone.choice_score == "f1"  # attributes of the wrapped reward
    completions = [row["completion"] for row in ROWS]
    assert clone(None, completions, **columns(ROWS)) == routed(None, completions, **columns(ROWS))


def test_async_rewards_stay_async_and_the_rubric_pickles_without_its_client():
    judge = rewards.build("rubric", base_url="http://127.0.0.1:9/v1", base_url_env="", cache=False, max_retries=0,
                          on_error="zero", timeout=0.5)  # fmt: skip
    routed = route(judge, {"problem_type": ("free-form",)})
    assert isinstance(routed, AsyncRouted) and asyncio.iscoroutinefunction(type(routed).__call__)
    assert routed.judge is judge.judge  # the engine, through the wrapper
    clone = pickle.loads(pickle.dumps(routed))
    assert clone.reward._judge is None and clone.judge.client.base_url == "http://127.0.0.1:9/v1"
    completions = [row["completion"].replace("<answer>", "<response>x</response><answer>") for row in ROWS]
    scores = asyncio.run(clone(None, completions, **columns(ROWS)))
    assert scores[0] is None and scores[1] is None and scores[3] is None  # routed away
    assert scores[2] == 0.0  # judged, but the judge is down: on_error zero
