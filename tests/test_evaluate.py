import json
import math

import pytest
import torch

from affect_rl import generation
from affect_rl.eval_records import score_rows
from affect_rl.evaluate import EvalArguments, evaluate_checkpoints, summarise, task_metrics
from affect_rl.generation import Completions, generate_completions
from rewards.wheel import label_table


def r1(think: str, answer: str) -> str:
    return f"<think>{think}</think>\n<answer>{answer}</answer>"


def metric_values(records, task, template, **flags) -> dict[str, float]:
    values = {}
    for name, metric in task_metrics(task, template, **flags).items():
        result = metric(records)
        values.update(result if isinstance(result, dict) else {name: result})
    return values


# ---- emotion ----

EMOTION_GOLDS = [{"emotions": ["happy"]}, {"emotions": ["happy", "sad"]}, {"emotions": ["angry"]}, {"emotions": ["xyzzy"]}]
EMOTION_COMPLETIONS = [
    r1("a promotion", "happy"),
    r1("mixed news", "happy"),
    "I think they feel angry.",  # no tags: no answer
    r1("unclear", "sad"),
]


def test_hand_picked_words_sit_in_distinct_families_on_every_wheel():
    # Precondition of the hand computation below: happy, sad and angry never share a wheel label.
    for level in ("level1", "level2"):
        for wheel in range(1, 6):
            labels = [label_table(wheel, level)[word] for word in ("happy", "sad", "angry")]
            assert len(set(labels)) == 3
            assert "xyzzy" not in label_table(wheel, level)


def test_emotion_metrics_equal_hand_computed_values():
    records = score_rows("emotion", "r1", EMOTION_COMPLETIONS, EMOTION_GOLDS)
    values = metric_values(records, "emotion", "r1", generated=False)
    # Per wheel: row 1 P=1 R=1; row 2 P=1 R=1/2; row 3 (no answer) P=R=0; row 4 skipped (gold unknown).
    # P = 2/3, R = 1/2, F = 2PR/(P+R) = 4/7, the same on all five wheels and both levels.
    for level in ("level1", "level2"):
        assert values[f"ew_p_{level}"] == pytest.approx(2 / 3)
        assert values[f"ew_r_{level}"] == pytest.approx(1 / 2)
        assert values[f"ew_f_{level}"] == pytest.approx(4 / 7)
    # Accuracy: the first answer word matches a gold word on rows 1 and 2 only.
    assert values["accuracy"] == pytest.approx(2 / 4)
    assert values["format"] == pytest.approx(3 / 4)
    assert set(values) == {f"ew_{m}_{lvl}" for m in "fpr" for lvl in ("level1", "level2")} | {"accuracy", "format"}


def test_emotion_accuracy_reads_only_the_first_word_and_accepts_synonyms():
    completions = [r1("", "sad, happy"), r1("", "Scared, tense"), r1("", "joyful")]
    golds = [{"emotions": ["happy"]}, {"emotions": ["fear"]}, {"emotions": ["sad", "happy"]}]
    records = score_rows("emotion", "r1", completions, golds)
    assert [record["correct"] for record in records] == [0.0, 1.0, 1.0]


# ---- facial ----

FACIAL_GOLDS = [
    {"aus": [6, 12], "emotion": "happiness"},
    {"aus": [1, 4, 15], "emotion": "sadness"},
    {"aus": [4, 5, 7, 23], "emotion": "anger"},
]
FACIAL_COMPLETIONS = [
    r1("AU6 (cheek raiser) and AU12 (lip corner puller).", "happiness"),
    r1("AU1 and the brow lowerer.", "sad"),
    r1("AU4, AU9.", "disgust"),
]


def test_facial_metrics_equal_hand_computed_values():
    records = score_rows("facial", "r1", FACIAL_COMPLETIONS, FACIAL_GOLDS)
    assert [record["cited_aus"] for record in records] == [[6, 12], [1, 4], [4, 9]]
    values = metric_values(records, "facial", "r1", generated=False)
    assert values["accuracy"] == pytest.approx(2 / 3)  # "sad" matches "sadness"
    # micro: TP = 2 + 2 + 1, FP = 1 (AU9), FN = 1 (AU15) + 3 (AU5, 7, 23): 2*5 / (10 + 1 + 4).
    assert values["au_f1_micro"] == pytest.approx(2 / 3)
    # macro over gold AUs {1, 4, 5, 6, 7, 12, 15, 23}: F1 = 1 for 1, 4, 6, 12; 0 for 5, 7, 15, 23.
    assert values["au_f1_macro"] == pytest.approx(0.5)
    # consistency: {6,12} -> happiness 1; {1,4} -> sadness 2/3; {4,9} -> disgust 1/3 * (1 - 1/2).
    assert values["au_consistency"] == pytest.approx((1 + 2 / 3 + 1 / 6) / 3)
    assert values["format"] == 1.0


# ---- calibrated, empathy ----


def calibrated(answer: str, confidence: str) -> str:
    return f"<think>t</think>\n<answer>{answer}</answer>\n<confidence>{confidence}</confidence>"


def test_ece_and_brier_equal_hand_computed_values():
    golds = [{"aus": [6, 12], "emotion": "happiness"}] * 5
    completions = [
        calibrated("happiness", "0.95"),
        calibrated("anger", "0.9"),
        calibrated("happy", "0.35"),
        calibrated("fear", "0.3"),
        r1("t", "happiness"),  # no confidence: out of ECE and Brier
    ]
    records = score_rows("facial", "calibrated", completions, golds)
    assert [record["confidence"] for record in records] == [0.95, 0.9, 0.35, 0.3, None]
    values = metric_values(records, "facial", "calibrated", generated=False)
    # bin 9: confidence 0.925, accuracy 0.5 -> 2/4 * 0.425; bin 3: 0.325 vs 0.5 -> 2/4 * 0.175.
    assert values["ece"] == pytest.approx(0.3)
    assert values["brier"] == pytest.approx((0.05**2 + 0.9**2 + 0.65**2 + 0.3**2) / 4)
    assert values["accuracy"] == pytest.approx(3 / 5)
    assert values["format"] == pytest.approx(4 / 5)


def test_empathy_reads_the_kardia_emotion_span_and_averages_the_judge():
    text = (
        "<|understanding_begin|>u<|understanding_end|>\n<|reasoning_begin|>r<|reasoning_end|>\n"
        "<|emotion_begin|>{}<|emotion_end|>\n<|response_begin|>ok<|response_end|>"
    )
    completions = [text.format("lonely"), text.format("angry"), "no spans"]
    golds = [{"emotion": "lonely"}, {"emotion": "sad"}, {"emotion": "sad"}]
    records = score_rows("empathy", "kardia", completions, golds, judge_scores=[0.8, 0.4, None])
    values = metric_values(records, "empathy", "kardia", judged=True, generated=False)
    # Classes {lonely, sad}: lonely recalled 1/1, sad 0/2 ("angry" and a missing answer are misses).
    assert values == pytest.approx({"accuracy": 1 / 3, "judge": 0.6, "format": 2 / 3, "uar": 0.5, "war": 1 / 3,
                                    "f1_macro": 0.5, "f1_weighted": 1 / 3})


def test_length_and_truncation_come_from_generation():
    completions = Completions([r1("a", "happy"), "<think>cut off"], num_tokens=[10, 20], truncated=[False, True])
    records = score_rows("emotion", "r1", completions, EMOTION_GOLDS[:2])
    values = metric_values(records, "emotion", "r1")
    assert values["mean_tokens"] == 15.0
    assert values["truncation_rate"] == 0.5


# ---- summarise ----


def test_identical_checkpoints_differ_by_exactly_zero():
    records = score_rows("emotion", "r1", EMOTION_COMPLETIONS, EMOTION_GOLDS)
    report = summarise({"a": records, "b": records}, task_metrics("emotion", "r1", generated=False), n_bootstrap=200)
    difference = report["differences"]["b-a"]["metrics"]
    assert difference["ew_f_level1"] == {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    assert difference["accuracy"] == {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    interval = report["checkpoints"]["a"]["metrics"]["ew_f_level1"]
    assert interval["value"] == pytest.approx(4 / 7)
    assert interval["ci_low"] <= interval["value"] <= interval["ci_high"]
    assert report["summary"]["a"]["accuracy"] == 0.5
    assert report["n_rows"] == 4


def test_a_paired_difference_is_later_minus_earlier_with_its_sign_and_paired_interval():
    import numpy as np

    from affect_rl.stats import resample_indices

    base = [{"correct": float(row % 2)} for row in range(8)]  # accuracy 0.5
    tuned = [{"correct": 1.0 if row < 7 else 0.0} for row in range(8)]  # accuracy 0.875; worse on the last row
    metrics = {"accuracy": task_metrics("emotion", "r1", generated=False)["accuracy"]}
    report = summarise({"base": base, "tuned": tuned}, metrics, n_bootstrap=300, seed=3)
    difference = report["differences"]["tuned-base"]
    assert (difference["minuend"], difference["subtrahend"]) == ("tuned", "base")
    assert difference["metrics"]["accuracy"]["value"] == pytest.approx(0.375)
    assert report["summary"]["tuned-base"]["accuracy"] == pytest.approx(0.375)
    # The paired bootstrap: the same resampled rows for both checkpoints, difference per resample.
    draws = [np.mean([tuned[i]["correct"] - base[i]["correct"] for i in rows]) for rows in resample_indices(8, 300, 3)]
    low, high = np.percentile(draws, [2.5, 97.5])
    assert (difference["metrics"]["accuracy"]["ci_low"], difference["metrics"]["accuracy"]["ci_high"]) == (
        pytest.approx(low), pytest.approx(high))
    assert low < 0.375 < high and high > 0

    flipped = summarise({"tuned": tuned, "base": base}, metrics, n_bootstrap=300, seed=3)["differences"]["base-tuned"]
    assert flipped["metrics"]["accuracy"] == {"value": pytest.approx(-0.375), "ci_low": pytest.approx(-high),
                                              "ci_high": pytest.approx(-low)}


# ---- generation on a tiny random Llama ----


PROMPTS = [[{"role": "user", "content": "How do I feel? " * repeat}] for repeat in (1, 6, 2, 9, 3)]


def test_generation_runs_bf16_only_where_the_device_has_it_natively(monkeypatch):
    for native in (True, False):
        monkeypatch.setattr(generation, "cpu_supports_bf16", lambda: native)
        monkeypatch.setattr(generation, "cuda_supports_bf16", lambda: not native)
        assert generation.generation_dtype("cpu") == ("bfloat16" if native else "float32")
        assert generation.generation_dtype("cuda") == ("float32" if native else "bfloat16")


def test_eval_dtype_sets_the_generation_weights_dtype(tiny_model_dir, tmp_path, monkeypatch):
    loaded = []
    load = generation.load_causal_lm

    def recording_load(model_args, **kwargs):
        loaded.append(model_args.dtype)
        return load(model_args, **kwargs)

    monkeypatch.setattr(generation, "load_causal_lm", recording_load)
    monkeypatch.setattr(generation, "cpu_supports_bf16", lambda: True)
    data = tmp_path / "emotion.jsonl"
    data.write_text(json.dumps({"text": "I lost my keys again.", "emotions": ["annoyed"]}) + "\n")
    for dtype, expected in (("auto", "bfloat16"), ("float32", "float32"), ("bfloat16", "bfloat16")):
        report = evaluate_checkpoints({"m": tiny_model_dir}, EvalArguments(
            dataset=str(data), task="emotion", max_new_tokens=2, n_bootstrap=10, dtype=dtype,
            output_dir=str(tmp_path / dtype)))
        assert loaded[-1] == expected and report["n_rows"] == 1


def test_generation_returns_one_string_per_prompt_and_respects_max_new_tokens(tiny_model_dir, monkeypatch):
    # fp32, so that padding cannot change a greedy choice through bf16 rounding.
    monkeypatch.setattr(generation, "cpu_supports_bf16", lambda: False)
    completions = generate_completions(tiny_model_dir, PROMPTS, batch_size=2, max_new_tokens=6, progress=False)
    assert len(completions) == len(PROMPTS) and all(isinstance(text, str) and text for text in completions)
    # A random model never ends its turn: every completion runs to the cap.
    assert completions.num_tokens == [6] * len(PROMPTS)
    assert completions.truncated == [True] * len(PROMPTS)
    # Left padding: a prompt batched with longer ones gets the same greedy completion as alone.
    alone = generate_completions(tiny_model_dir, PROMPTS[:1], batch_size=1, max_new_tokens=6, progress=False)
    assert alone[0] == completions[0]


def test_generation_that_ends_its_turn_is_not_truncated(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM
    from affect_rl.models import load_tokenizer

    # A zero output layer makes every logit equal, so greedy picks token 0; declared an end token.
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.nn.init.zeros_(model.lm_head.weight)
    model.generation_config.eos_token_id = [0, model.config.eos_token_id]
    model.save_pretrained(tmp_path)
    load_tokenizer(tiny_model_dir).save_pretrained(tmp_path)
    completions = generate_completions(str(tmp_path), PROMPTS[:2], max_new_tokens=6, progress=False)
    assert list(completions) == ["", ""]  # the end token is special, so skipped when decoding
    assert completions.num_tokens == [1, 1] and completions.truncated == [False, False]


def test_evaluate_checkpoints_writes_the_report(tiny_model_dir, tmp_path):
    data = tmp_path / "emotion.jsonl"
    rows = [{"text": f"situation {i}", "emotions": ["happy"], "split": "test" if i < 3 else "train"} for i in range(6)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    eval_args = EvalArguments(dataset=str(data), task="emotion", template="r1", output_dir=str(tmp_path / "eval"),
                              max_new_tokens=4, n_bootstrap=50)
    report = evaluate_checkpoints({"base": tiny_model_dir, "again": tiny_model_dir}, eval_args)
    out = tmp_path / "eval"
    written = json.loads((out / "report.json").read_text())
    assert list(written["checkpoints"]) == ["base", "again"] and list(written["differences"]) == ["again-base"]
    assert written["n_rows"] == 3
    assert written["checkpoints"]["base"]["metrics"]["truncation_rate"]["value"] == 1.0
    assert written["checkpoints"]["base"]["metrics"]["mean_tokens"]["value"] == 4.0
    # The random model never writes the template: everything scores 0, identical checkpoints differ by 0.
    assert written["checkpoints"]["base"]["metrics"]["ew_f_level1"]["value"] == 0.0
    assert written["differences"]["again-base"]["metrics"]["format"]["value"] == 0.0
    lines = (out / "completions_base.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["gold_emotions"] == ["happy"]
    markdown = (out / "report.md").read_text()
    assert "| base | 0.00 [0.00, 0.00] |" in markdown and "| again-base |" in markdown
    assert (out / "metrics.png").stat().st_size > 10_000 and (out / "differences.png").exists()
    assert report["files"]["json"] == str(out / "report.json")
    assert not math.isnan(report["summary"]["base"]["mean_tokens"])


def test_checkpoint_labels_from_the_command_line():
    from affect_rl.errors import ConfigError
    from affect_rl.evaluate import checkpoint_labels

    assert checkpoint_labels(["base=smollm2-135m-instruct", "runs/x/sft/", "grpo=runs/lr=1e-5/grpo"]) == {
        "base": "smollm2-135m-instruct", "sft": "runs/x/sft/", "grpo": "runs/lr=1e-5/grpo",
    }
    with pytest.raises(ConfigError, match="share the label 'sft'"):
        checkpoint_labels(["runs/a/sft", "runs/b/sft"])


# ---- label, choice, confidence, reasoning and per-dataset metrics ----


def test_label_metrics_give_uar_war_and_f1_from_the_classes_the_answers_name():
    golds = [{"label": "anger"}, {"label": "anger"}, {"label": "anger"}, {"label": "joy"}, {"label": "fear"}]
    answers = ["angry", "anger", "joy", "joyful", "bored"]  # "bored" names no class: a miss of fear
    records = score_rows("label", "r1", [r1("", a) for a in answers], golds)
    assert [r["predicted_class"] for r in records] == ["anger", "anger", "joy", "joy", None]
    values = metric_values(records, "label", "r1", generated=False)
    # Recalls: anger 2/3, joy 1, fear 0 -> UAR 5/9; WAR = accuracy = 3/5.
    # F1: anger 2*2/(3+2) = 0.8, joy 2*1/(1+2) = 2/3, fear 0 -> macro 0.4889, weighted (0.8*3 + 2/3) / 5.
    assert values["uar"] == pytest.approx(5 / 9)
    assert values["war"] == values["accuracy"] == pytest.approx(3 / 5)
    assert values["f1_macro"] == pytest.approx((0.8 + 2 / 3) / 3)
    assert values["f1_weighted"] == pytest.approx((0.8 * 3 + 2 / 3) / 5)


def test_choice_metrics_score_exact_sets_and_set_f1():
    options = ["worry", "pride", "sadness", "joy"]
    golds = [{"options": options, "answer": ["A", "C"]}] * 3 + [{"options": options, "answer": ["B"]}]
    answers = ["A,C", "A", "worry, sadness", "D"]
    records = score_rows("choice", "r1", [r1("", a) for a in answers], golds)
    assert [r["chosen_letters"] for r in records] == [["A", "C"], ["A"], ["A", "C"], ["D"]]
    values = metric_values(records, "choice", "r1", generated=False)
    assert values["exact_match"] == pytest.approx(2 / 4)
    assert values["set_f1"] == pytest.approx((1 + 2 / 3 + 1 + 0) / 4)
    assert "accuracy" not in values


def test_auroc_of_stated_confidence_and_rouge_l_of_the_reasoning():
    golds = [{"label": "joy", "rationale": "a wide smile"}, {"label": "joy"}, {"label": "anger"}, {"label": "fear"}]
    completions = [
        "<think>a wide grin</think><answer>joy</answer><confidence>0.9</confidence>",
        "<think>t</think><answer>anger</answer><confidence>0.8</confidence>",
        "<think>t</think><answer>anger</answer><confidence>0.6</confidence>",
        "<think>t</think><answer>joy</answer><confidence>0.2</confidence>",
    ]
    records = score_rows("label", "calibrated", completions, golds)
    values = metric_values(records, "label", "calibrated", generated=False, referenced=True)
    # Correct rows state 0.9 and 0.6, wrong ones 0.8 and 0.2: 3 of the 4 (correct, wrong) pairs are ordered.
    assert values["auroc"] == pytest.approx(3 / 4)
    # Only row 1 has a reference: LCS("a wide grin", "a wide smile") = 2 words of 3 and 3.
    assert values["rouge_l"] == pytest.approx(2 / 3)


def test_paired_differences_have_the_sign_of_newer_minus_older():
    golds = [{"label": "joy"}] * 4
    older = score_rows("label", "r1", [r1("", "anger")] * 4, golds)
    newer = score_rows("label", "r1", [r1("", "joy")] * 3 + [r1("", "anger")], golds)
    report = summarise({"sft": older, "grpo": newer}, task_metrics("label", "r1", generated=False), n_bootstrap=100)
    difference = report["differences"]["grpo-sft"]
    assert (difference["minuend"], difference["subtrahend"]) == ("grpo", "sft")
    assert difference["metrics"]["accuracy"]["value"] == pytest.approx(0.75)
    assert difference["metrics"]["accuracy"]["ci_low"] >= 0.0


def test_eval_arguments_refuse_bad_settings():
    from affect_rl.errors import ConfigError

    with pytest.raises(ConfigError, match="batch_size must be a positive integer; got -1"):
        EvalArguments(dataset="demo:emotion", batch_size=-1)
    with pytest.raises(ConfigError, match="max_new_tokens must be a positive integer; got 0"):
        EvalArguments(dataset="demo:emotion", max_new_tokens=0)
    with pytest.raises(ConfigError, match="dtype must be one of auto, float32, bfloat16; got 'fp16'"):
        EvalArguments(dataset="demo:emotion", dtype="fp16")


def test_eval_cli_scores_a_whole_unsplit_file_with_per_dataset_metrics(tiny_model_dir, tmp_path, capsys):
    from affect_rl.cli import main

    data = tmp_path / "bench.jsonl"
    rows = [{"question": f"q{i}", "options": ["joy", "fear"], "answer": "A", "dataset": "eu" if i % 2 else "ea"}
            for i in range(8)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "eval"
    status = main(["eval", "--model", f"tiny={tiny_model_dir}", "--data", str(data), "--task", "choice",
                   "--output_dir", str(out), "--max_new_tokens", "3", "--n_bootstrap", "20"])
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    assert report["n_rows"] == 8 and report["task"] == "choice"
    assert sorted(report["breakdown"]) == ["ea", "eu"] and report["breakdown"]["eu"]["n_rows"] == 4
    assert "exact_match" in report["metrics"] and "## ea (4 rows)" in (out / "report.md").read_text()
    assert main(["eval", "--model", tiny_model_dir, "--data", str(data), "--task", "choice", "--batch_size", "-1"]) == 2
    assert "batch_size must be a positive integer; got -1" in capsys.readouterr().err


def test_sampling_draws_n_completions_per_prompt_in_prompt_major_order(tiny_model_dir, monkeypatch):
    from affect_rl.generation import Sampling

    monkeypatch.setattr(generation, "cpu_supports_bf16", lambda: False)
    sampling = Sampling(n=3, temperature=1.0, seed=7)
    drawn = generate_completions(tiny_model_dir, PROMPTS[:2], batch_size=2, max_new_tokens=5, progress=False,
                                 sampling=sampling)  # fmt: skip
    assert len(drawn) == 6 and len(drawn.num_tokens) == 6
    # One prompt per batch: prompt 0 (the shorter) is drawn first, from the same seeded state as alone,
    # so its three completions are the first three, and equal to drawing them alone.
    one_by_one = generate_completions(tiny_model_dir, PROMPTS[:2], batch_size=1, max_new_tokens=5, progress=False,
                                      sampling=sampling)  # fmt: skip
    alone = generate_completions(tiny_model_dir, PROMPTS[:1], batch_size=1, max_new_tokens=5, progress=False,
                                 sampling=sampling)  # fmt: skip
    assert list(one_by_one)[:3] == list(alone)
    assert len(set(drawn)) > 2  # sampled at temperature 1, a random model does not repeat itself
    greedy_alone = generate_completions(tiny_model_dir, PROMPTS[1:2], batch_size=1, max_new_tokens=5, progress=False)
    greedy = generate_completions(tiny_model_dir, PROMPTS[:2], batch_size=2, max_new_tokens=5, progress=False)
    assert greedy[1] == greedy_alone[0]
