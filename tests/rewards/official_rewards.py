"""Ports of the seed systems' published reward functions: the oracles of test_parity.py.

Each function is the official code as read in the snapshots listed in /work/notes/recipes.md
(repository, commit, path and lines in its docstring), kept line for line. Changes: the
``math_verify`` attempt of R1-Omni's and Facial-R1's accuracy is left out (it never matches an
emotion label), logging and prints are dropped, and the community emotion-wheel reward reads
the MER mappings from rewards/data/emotion_wheel/wheel_mapping.json (the data its CSV and xlsx
files hold) instead of re-reading them. Do not "fix" this file: it is the reference.
"""

import json
import math
import re
import string
from pathlib import Path

import numpy as np

_MAPPING = json.loads(
    (Path(__file__).resolve().parents[2] / "rewards" / "data" / "emotion_wheel" / "wheel_mapping.json").read_text(
        encoding="utf-8"
    )
)


# ---- R1-Omni: HumanMLLM/R1-Omni @ 17cafcae, src/r1-v/src/open_r1/grpo.py ----


def r1_omni_accuracy_reward(completions, solution, **kwargs):
    """grpo.py:54-87 (the string-matching path); solution = f"<answer> {label} </answer>" (:150)."""
    contents = [completion[0]["content"] for completion in completions]
    rewards = []
    for content, sol in zip(contents, solution):
        reward = 0.0
        if reward == 0.0:
            try:
                sol_match = re.search(r"<answer>(.*?)</answer>", sol)
                ground_truth = sol_match.group(1).strip() if sol_match else sol.strip()
                content_match = re.search(r"<answer>(.*?)</answer>", content)
                student_answer = content_match.group(1).strip() if content_match else content.strip()
                if student_answer == ground_truth:
                    reward = 1.0
            except Exception:
                pass
        rewards.append(reward)
    return rewards


def r1_omni_format_reward(completions, **kwargs):
    """grpo.py:99-104 (Facial-R1's grpo_jsonl.py:898-913 is the same)."""
    pattern = r"<think>.*?</think>\s*<answer>.*?</answer>"
    completion_contents = [completion[0]["content"] for completion in completions]
    matches = [re.fullmatch(pattern, content, re.DOTALL) for content in completion_contents]
    return [1.0 if match else 0.0 for match in matches]


# ---- Facial-R1: RobitsG/Facial-R1 @ 0b1be9bd, src/open-r1-multimodal/src/open_r1/grpo_jsonl.py ----


def facial_r1_default_accuracy_reward(content, sol, weight=None, **kwargs):
    """grpo_jsonl.py:793-841; sol = f"<answer>{labels[0]}</answer>" (:1068-1070, :1103)."""
    reward = 0.0
    sol_match = re.search(r"<answer>(.*?)</answer>", sol)
    ground_truth = sol_match.group(1).strip() if sol_match else sol.strip()
    if not ground_truth or not ground_truth.lstrip("<answer>").rstrip("</answer>"):
        return 0.5
    content_matches = re.findall(r"<answer>(.*?)</answer>", content, re.DOTALL)
    student_answer = content_matches[-1].strip() if content_matches else content.strip()
    if reward == 0.0:
        try:
            reward = 1.0 if student_answer == ground_truth else 0.0
        except Exception:
            pass
    return reward


def extract_aus_from_text(text):
    """grpo_jsonl.py:917-957 (with au_reward)."""
    if not isinstance(text, str):
        return []
    think_match = re.search(r"<think>(.*?)</think>", text, re.DOTALL | re.IGNORECASE)
    if not think_match:
        return []
    think_text = think_match.group(1)
    return re.findall(r"AU\d+", think_text.upper())


def au_reward(completions, AUs, weights, beta=1.0, **kwargs):  # noqa: N803 - the official signature
    """grpo_jsonl.py:917-957."""
    rewards = []
    completion_contents = [completion[0]["content"] for completion in completions]
    for pred, gt, weight in zip(completion_contents, AUs, weights):
        pred_aus = extract_aus_from_text(pred) if isinstance(pred, str) else pred
        gt_aus_set = set([s.upper() for s in gt])
        pred_aus_set = set([s.upper() for s in pred_aus])
        if not gt_aus_set:
            reward = 0.0
        elif not pred_aus_set:
            reward = -1.0
        else:
            intersection = len(pred_aus_set & gt_aus_set)
            precision = intersection / len(pred_aus_set) if pred_aus_set else 0.0
            recall = intersection / len(gt_aus_set) if gt_aus_set else 0.0
            f_beta = (
                ((1 + beta**2) * precision * recall / (beta**2 * precision + recall)) if (precision + recall) else 0.0
            )
            reward = 2 * f_beta - 1
        rewards.append(reward)
    return rewards


# ---- EmoCaliber: wdqqdw/EmoCaliber @ a520291c, train/cus_reward.py ----


def compute_score(solution_str, ground_truth, data_source=None, extra_info=None):
    """cus_reward.py:21-87."""
    format_score = 0
    think_pattern = r"<think>(.*?)</think>"
    answer_pattern = r"<answer>(.*?)</answer>"
    confidence_pattern = r"<confidence>(.*?)</confidence>"

    think_match = re.search(think_pattern, solution_str, re.DOTALL)
    answer_match = re.search(answer_pattern, solution_str, re.DOTALL)
    confidence_match = re.search(confidence_pattern, solution_str, re.DOTALL)

    if think_match and answer_match and confidence_match:
        think_content = think_match.group(1)
        required_elements = ["element", "human", "context", "interaction", "analysis"]
        format_correct = True
        for element in required_elements:
            pattern = f"<{element}>(.*?)</{element}>"
            if not re.search(pattern, think_content, re.DOTALL):
                format_correct = False
                break
        if format_correct:
            answer_text = answer_match.group(1).strip()
            confidence_text = confidence_match.group(1).strip()
            answer_clean = answer_text.translate(str.maketrans("", "", string.punctuation)).lower()
            answer_words = answer_clean.split()
            ground_truth_lower = ground_truth.lower()
            i = 1 if len(answer_words) == 1 and ground_truth_lower == answer_words[0] else 0
            try:
                c = float(confidence_text)
                if 0 < c < 1:
                    format_score = 1
            except (ValueError, TypeError):
                pass

    if format_score == 1:
        confidence_score = 2 * (i * math.log(c) + (1 - i) * math.log(1 - c))
        return {"score": format_score + confidence_score + i, "brier_score": -((c - i) ** 2), "confidence": c}
    return {"score": -5, "brier_score": -1, "confidence": 1}


# ---- HumanOmniV2: HumanMLLM/HumanOmniV2 @ 9bf0e6fc, src/open-r1-multimodal/src/open_r1/vlm_modules/qwenomni_module.py ----


def humanomni_format_reward(completions, **kwargs):
    """qwenomni_module.py:121-141."""
    pattern = r"^<context>.*?</context>\s*<think>.*?</think>\s*<answer>.*?</answer>"
    completion_contents = [completion[0]["content"] for completion in completions]
    return [1.0 if re.search(pattern, content, re.DOTALL) is not None else 0.0 for content in completion_contents]


def extract_answer(text):
    """qwenomni_module.py:205-210."""
    pattern = r"<answer>\s*(.*?)\s*</answer>"
    match = re.search(pattern, text, re.DOTALL)
    if match:
        return match.group(1).strip()
    return ""


def emer_ov_mc(reference, hypothesis):
    """qwenomni_module.py:279-290."""
    list_a = reference.split(",")
    list_b = hypothesis.split(",")
    true_positive = len(set(list_a) & set(list_b))
    precision = true_positive / len(list_a) if list_a else 0
    recall = true_positive / len(list_b) if list_b else 0
    if precision + recall > 0:
        f1_score = 2 * (precision * recall) / (precision + recall)
    else:
        f1_score = 0
    return f1_score


def humanomni_accuracy(content, sol, question_type):
    """qwenomni_module.py:301-347, the "multiple choice" and "emer_ov_mc" branches."""
    try:
        output_ans = extract_answer(content)
        gt_ans = extract_answer(sol)
        if question_type == "multiple choice":
            reward = 1.0 if output_ans.strip() == gt_ans.strip() else 0.0
        elif question_type == "emer_ov_mc":
            reward = emer_ov_mc(gt_ans, output_ans)
        else:
            reward = 0.0
    except Exception:
        reward = 0.0
    return reward


# ---- AffectGPT-R1 community reproduction: vhzy/HumanOmniV2 @ 52c1625b, affect_r1/ ----


def _normalize_words(words):
    """merbench/affectgpt_local/wheel_metrics.py:140-146."""
    tokens = []
    for word in words:
        token = word.lower().strip()
        if token:
            tokens.append(token)
    return tokens


def _map_label(label, metric):
    """merbench/affectgpt_local/wheel_metrics.py:114-137 (the case3 branch), on the JSON mappings."""
    fmt = _MAPPING["format_mapping"]
    raw_map = _MAPPING["raw_mapping"]
    if label not in fmt:
        return ""
    candidates = fmt[label]
    _, wheel, level = metric.split("_")
    wheel_map = _MAPPING["wheel_map_whole"][wheel][level]
    stage2 = []
    for cand in candidates:
        stage2.extend(raw_map.get(cand, []))
    for candidate in sorted(stage2):
        if candidate in wheel_map:
            return wheel_map[candidate]
    return ""


def community_extract_answer(text):
    """affect_reward.py:35-59 (with calculate_f1)."""
    match = re.search(r"<answer>(.*?)</answer>", text, re.DOTALL)
    if match:
        return match.group(1).strip()
    return text.strip()


def calculate_f1(preds, gts):
    """affect_reward.py:35-59."""
    if not preds or not gts:
        return 0.0
    pred_set = set(preds)
    gt_set = set(gts)
    intersection = len(pred_set & gt_set)
    if intersection == 0:
        return 0.0
    precision = intersection / len(pred_set)
    recall = intersection / len(gt_set)
    if precision + recall == 0:
        return 0.0
    return 2 * (precision * recall) / (precision + recall)


def emotion_wheel_reward(completions, **kwargs):
    """affect_reward.py:61-121."""
    rewards = []
    ground_truths = kwargs.get("openset", [])
    if len(completions) > len(ground_truths) and len(ground_truths) > 0:
        repeat_factor = len(completions) // len(ground_truths)
        ground_truths = [gt for gt in ground_truths for _ in range(repeat_factor)]
    metrics = [f"case3_wheel{i}_level1" for i in range(1, 6)]
    for completion, gt_raw_list in zip(completions, ground_truths):
        content = completion[0]["content"]
        pred_text = community_extract_answer(content)
        pred_raw_list = [p.strip() for p in pred_text.split(",")]
        f1_scores = []
        for metric in metrics:
            gt_norm = _normalize_words(gt_raw_list)
            gt_mapped = [m for m in (_map_label(label, metric) for label in gt_norm) if m]
            pred_norm = _normalize_words(pred_raw_list)
            pred_mapped = [m for m in (_map_label(label, metric) for label in pred_norm) if m]
            f1_scores.append(calculate_f1(pred_mapped, gt_mapped))
        rewards.append(float(np.mean(f1_scores)))
    return rewards


def community_format_reward(completions, **kwargs):
    """affect_reward.py:123-129: re.match, a prefix match."""
    pattern = r"<think>.*?</think>\s*<answer>.*?</answer>"
    completion_contents = [completion[0]["content"] for completion in completions]
    matches = [re.match(pattern, content, re.DOTALL) for content in completion_contents]
    return [1.0 if match else 0.0 for match in matches]
