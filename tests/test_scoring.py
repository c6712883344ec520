"""`affect-rl rewards` and `affect-rl score`: the reward table, recipe validation, JSONL scoring."""

import json

import pytest

import rewards
from affect_rl.errors import ConfigError, DataError
from affect_rl.scoring import build_reward_functions, describe_rewards, score_completions, score_rows
from rewards.entries import parse_entries

RECIPE = """\
rewards:
  - {name: format, weight: 0.5}
  - {name: au_f1, weight: 1.0, match_names: false}
  - {name: au_consistency, weight: 2.0}
"""

ROWS = [
    {"prompt": "p1", "completion": "<think>AU6 AU12</think>\n<answer>happy</answer>", "aus": [6, 12]},
    {"prompt": "p2", "completion": "<think>AU4</think><answer>calm</answer>", "aus": [4, 7]},
    {"completion": [{"role": "assistant", "content": "no template, AU9"}], "aus": []},
]


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def write_rows(path, rows):
    return write(path, "".join(json.dumps(row) + "\n\n" for row in rows))  # blank lines are skipped


def test_describe_rewards_lists_every_reward_with_range_source_defaults_and_accepted_values():
    table = describe_rewards()
    for name in rewards.available():
        assert f"\n{name} " in table
    assert "length           range [-3, 0]   source: DAPO" in table
    lines = table.splitlines()
    assert any(line.split() == ["max_length:", "512", "an", "integer", ">=", "1", "or", "null;", "follows",
                                "max_completion_length"] for line in lines)  # fmt: skip
    assert any(line.split()[:3] == ["template:", "r1", "one"] and "follows the stage's template" in line for line in lines)
    assert any(line.split()[:3] == ["match_names:", "true", "true"] for line in lines)
    assert any(line.split()[:2] == ["emotions_column:", "emotions"] and "the task's column" in line for line in lines)
    assert "applies_to: {COLUMN: [values]}" in table and "path/to/file.py:function" in table


def test_score_completions_prints_means_and_writes_rows(tmp_path, capsys):
    recipe = write(tmp_path / "grpo.yaml", RECIPE)
    completions = write_rows(tmp_path / "samples.jsonl", ROWS)
    summary = score_completions(recipe, completions)

    expected = {  # per row: format, au_f1, au_consistency (None: "calm" has no EMFACS prototype)
        "format": [1.0, 1.0, 0.0],
        "au_f1": [1.0, 2 * (2 / 3) - 1, 0.0],
        "au_consistency": [1.0, None, None],
    }
    totals = [0.5 + 1.0 + 2.0, 0.5 + 1 / 3, 0.0]
    lines = [json.loads(line) for line in (tmp_path / "samples.scores.jsonl").read_text().splitlines()]
    assert [line["line"] for line in lines] == [1, 3, 5]
    for name, values in expected.items():
        assert [line[name] for line in lines] == pytest.approx(values)
    assert [line["total"] for line in lines] == pytest.approx(totals)

    assert summary["rows"] == 3
    assert summary["rewards"]["au_consistency"] == {"weight": 2.0, "mean": 1.0, "applies": 1}
    assert summary["rewards"]["format"]["mean"] == pytest.approx(2 / 3)
    assert summary["total"] == pytest.approx(sum(totals) / 3)
    printed = capsys.readouterr().out
    assert "au_consistency" in printed and "1/3" in printed and "weighted total" in printed


def test_metrics_logged_by_rewards_are_reported(tmp_path):
    recipe = write(tmp_path / "r.yaml", "template: calibrated\ntask: facial\ndataset: x.jsonl\nrewards: [{name: calibration}]\n")
    row = {"completion": "<think>t</think><answer>anger</answer><confidence>0.8</confidence>", "emotion": "anger"}
    summary = score_completions(recipe, write_rows(tmp_path / "c.jsonl", [row]), str(tmp_path / "out" / "s.jsonl"))
    assert summary["metrics"]["calibration/brier"] == pytest.approx(-0.04)
    assert (tmp_path / "out" / "s.jsonl").is_file()


@pytest.mark.parametrize(
    "recipe, message",
    [
        ("rewards: [{name: format}, {name: emotion_whel}]", r"r\.yaml: rewards\[2\]: Unknown reward 'emotion_whel'.*Did you mean"),
        ("rewards: [{name: format, templat: r1}]", r"r\.yaml: rewards\[1\]: .*no option 'templat'.*template \(default 'r1'\)"),
        ("rewards: [{name: format, template: json}]", r"r\.yaml: rewards\[1\]: Reward 'format': option template is 'json' but the stage renders template 'r1'"),
        ("dataset: demo:empathy\ntemplate: kardia\nrewards: [{name: format, template: json}]", r"option template is 'json' but the stage renders template 'kardia'"),
        ("rewards: [{name: length, max_length: -5}]", r"r\.yaml: rewards\[1\]: Reward 'length': option max_length must be an integer >= 1 or null; got -5"),
        ("rewards: [{name: format, weight: heavy}]", r"r\.yaml: rewards\[1\]: weight must be a finite number"),
        ("rewards: [{name: format, weight: .nan}]", r"r\.yaml: rewards\[1\]: weight must be a finite number.*got nan"),
        ("rewards: []", r"r\.yaml: a GRPO stage needs `rewards:`"),
        ("learning_rate: 1.0e-6", r"r\.yaml has no `rewards:` list"),
        ("rewards: {name: format}", r"r\.yaml: `rewards` must be a list"),
    ],
)
def test_recipe_errors_name_the_file_the_entry_and_what_is_accepted(tmp_path, recipe, message):
    completions = write_rows(tmp_path / "c.jsonl", ROWS)
    with pytest.raises(ConfigError, match=message):
        score_completions(write(tmp_path / "r.yaml", recipe), completions)
    assert not (tmp_path / "c.scores.jsonl").exists()


def test_build_reward_functions_returns_weights_and_unique_names():
    specs = [{"name": "format", "weight": 0.1}, {"name": "length", "max_length": 64}, {"name": "format", "template": "kardia"}]
    functions, weights = build_reward_functions(parse_entries(specs, "recipe.yaml"))
    assert [fn.__name__ for fn in functions] == ["format", "length", "format_2"]
    assert weights == [0.1, 1.0, 1.0]
    assert functions[2](prompts=[""], completions=["<think>a</think><answer>b</answer>"]) == [0.0]


def test_the_recipe_stage_fills_template_columns_and_length(tmp_path):
    recipe = write(tmp_path / "r.yaml", "dataset: demo:empathy\ntemplate: kardia\nmax_completion_length: 8\n"
                                        "rewards: [{name: accuracy}, {name: length}, {name: format}]\n")  # fmt: skip
    kardia = ("<|understanding_begin|>u<|understanding_end|><|reasoning_begin|>r<|reasoning_end|>"
              "<|emotion_begin|>Sad<|emotion_end|><|response_begin|>I am here.<|response_end|>")  # fmt: skip
    rows = [{"completion": kardia, "emotion": "sadness"}, {"completion": "<answer>sad</answer> " + "w " * 20, "emotion": "sad"}]
    summary = score_completions(recipe, write_rows(tmp_path / "c.jsonl", rows))
    lines = [json.loads(line) for line in (tmp_path / "c.scores.jsonl").read_text().splitlines()]
    assert [line["accuracy"] for line in lines] == [1.0, 0.0]  # the emotion span, the task's `emotion` column
    assert [line["format"] for line in lines] == [1.0, 0.0]
    assert [line["length"] for line in lines] == [0.0, -1.0]  # 21 words > max_completion_length 8
    assert summary["rewards"]["accuracy"]["applies"] == 2


def test_custom_and_routed_rewards_are_scored(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(
        "def shout(prompts, completions, **kwargs):\n    return [float(c.isupper()) for c in completions]\n"
        "shout.value_range = (0.0, 1.0)\n"
    )
    recipe = write(tmp_path / "r.yaml", "rewards:\n  - {name: mine.py:shout, weight: 2.0, applies_to: {kind: [loud]}}\n")
    rows = [{"completion": "HEY", "kind": "loud"}, {"completion": "HEY", "kind": "quiet"}, {"completion": "hey", "kind": "loud"}]
    summary = score_completions(recipe, write_rows(tmp_path / "c.jsonl", rows))
    assert summary["rewards"]["shout"] == {"weight": 2.0, "mean": 0.5, "applies": 2}
    lines = [json.loads(line) for line in (tmp_path / "c.scores.jsonl").read_text().splitlines()]
    assert [line["shout"] for line in lines] == [1.0, None, 0.0]
    assert [line["total"] for line in lines] == [2.0, 0.0, 0.0]


def test_a_reward_outside_its_range_names_the_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(
        "def bad(prompts, completions, **kwargs):\n    return [len(c) / 2 for c in completions]\nbad.value_range = (0.0, 1.0)\n"
    )
    recipe = write(tmp_path / "r.yaml", "rewards: [{name: mine.py:bad}]\n")
    with pytest.raises(DataError, match=r"c\.jsonl, line 3: Reward 'bad' returned 1.5 for row 0 .*range \[0, 1\]"):
        score_completions(recipe, write_rows(tmp_path / "c.jsonl", [{"completion": "ab"}, {"completion": "abc"}]))


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"completion": "x"}\n{"completion": \n', r"c\.jsonl, line 2: not valid JSON"),
        ('{"prompt": "x"}\n', r"c\.jsonl, line 1: each line must be a JSON object with a `completion`"),
        ("\n\n", r"c\.jsonl holds no rows"),
    ],
)
def test_malformed_jsonl_names_the_line(tmp_path, content, message):
    recipe = write(tmp_path / "r.yaml", RECIPE)
    with pytest.raises(DataError, match=message):
        score_completions(recipe, write(tmp_path / "c.jsonl", content))


def test_malformed_gold_names_the_file_line_and_column(tmp_path):
    recipe = write(tmp_path / "r.yaml", RECIPE)
    rows = ROWS[:2] + [{"completion": "x", "aus": "6, smile"}]
    with pytest.raises(DataError, match=r"c\.jsonl, line 5: Reward 'au_f1': column 'aus', row 0 .*'6, smile'"):
        score_completions(recipe, write_rows(tmp_path / "c.jsonl", rows))


def test_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        score_completions(str(tmp_path / "nope.yaml"), str(tmp_path / "c.jsonl"))
    with pytest.raises(DataError, match="does not exist"):
        score_completions(write(tmp_path / "r.yaml", RECIPE), str(tmp_path / "nope.jsonl"))


def test_async_rewards_are_awaited_like_trl_does():
    async def judge(prompts, completions, log_metric, **columns):
        log_metric("judge/calls", 1.0)
        return [float(len(text)) for text in completions]

    scores, metrics = score_rows([judge], [{"completion": "ab"}, {"completion": "abc"}], [1, 2], "c.jsonl")
    assert scores == {"judge": [2.0, 3.0]} and metrics == {"judge/calls": 1.0}
