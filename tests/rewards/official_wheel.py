"""Port of the official MER2026 Track 2 emotion-wheel (EW) metric: test oracle and bench baseline.

Source: zeroQiaoba/MERTools, commit 1052cb82fb05b91f821bd197de5bb123fcc9b0e3,
``MER2026/MER2026_Track2/my_affectgpt/evaluation/wheel.py`` (``func_backward_case1/2/3``,
``func_map_label_to_synonym``, ``calculate_openset_overlap_rate``,
``wheel_metric_calculation``) and ``string_to_list`` from ``toolkit/utils/functions.py`` of the
same folder family (``MER2026/MER2026_Track1/toolkit/utils/functions.py``). The code keeps the
official structure, loops, numpy means and control flow line for line; the only changes are:

- by default the mapping comes from our lossless JSON conversion of ``wheel_mapping.npz``,
  loaded once at import, instead of three ``np.load`` calls of the ``.npz`` on every call of
  ``calculate_openset_overlap_rate``: this makes the baseline *faster* than the original, so the
  benchmark's speed ratio is conservative. Set ``OUTSIDE_WHEEL_MAPPING`` to an ``.npz`` written
  by ``write_npz`` to run the original loading as shipped;
- file/CSV/NPZ input branches and prints are dropped (callers pass ``name2gt``/``name2pred``);
- ``official_sample_reward`` applies the official metric to one sample, which gives the
  per-sample F1 on each wheel averaged over the five wheels (the per-sample reward).

The data is CC BY-NC 4.0 (see rewards/data/emotion_wheel/). Do not "fix" this file: it is the
reference the fast implementation must reproduce bit for bit.
"""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

_MAPPING_PATH = Path(__file__).resolve().parents[2] / "rewards" / "data" / "emotion_wheel" / "wheel_mapping.json"
_MAPPING = json.loads(_MAPPING_PATH.read_text(encoding="utf-8"))
# config.OUTSIDE_WHEEL_MAPPING of the original; None: use _MAPPING (see the module docstring).
OUTSIDE_WHEEL_MAPPING = None


def write_npz(path):
    """Write the mapping as the official ``wheel_mapping.npz`` (pickled dicts, one per key)."""
    arrays = {key: np.array(value, dtype=object) for key, value in _MAPPING.items()}
    np.savez(path, **arrays)


# "['轻松', '愉快', '幽默', '自嘲']" => ['轻松', '愉快', '幽默', '自嘲']
def string_to_list(str):
    if type(str) == np.ndarray:
        str = str.tolist()

    # 如果本身就是list了，那么就不需要其他操作了
    if isinstance(str, list):
        return str

    if str == "":
        str = []
    elif pd.isna(str):
        str = []
    else:
        if str[0] == "[":
            str = str[1:]
        if str[-1] == "]":
            str = str[:-1]
        str = [item.strip() for item in re.split("['\",]", str) if item.strip() not in ["", ","]]
    return str


# case1: 计算只依赖于 format_mapping 下的结果
def func_backward_case1(label, format_mapping, raw_mapping=None, wheel_map=None):
    if label not in format_mapping:
        return ""

    stage1_labels = format_mapping[label]
    assert isinstance(stage1_labels, list)
    stage1_unique = sorted(stage1_labels)[0]

    return stage1_unique


# case2: 核心是保证 backward 过程中的唯一性
def func_backward_case2(label, format_mapping, raw_mapping, wheel_map=None):
    if label not in format_mapping:
        return ""

    stage1_labels = format_mapping[label]
    assert isinstance(stage1_labels, list)
    stage1_unique = sorted(stage1_labels)[0]

    stage2_labels = raw_mapping[stage1_unique]
    assert isinstance(stage2_labels, list)
    stage2_unique = sorted(stage2_labels)[0]
    return stage2_unique


## 函数3：引入 emotion wheel 进行评价
def func_backward_case3(label, format_mapping, raw_mapping, wheel_map):
    if label not in format_mapping:
        return ""

    level1_whole = []
    for format in format_mapping[label]:
        for raw in raw_mapping[format]:
            level1_whole.append(raw)

    for level1 in sorted(level1_whole):  # 保证了结果唯一性
        if level1 in wheel_map:
            return wheel_map[level1]
    return ""


# metric: ['case1', 'case2', 'case3'] 展示的是一种层级化的聚类结果，从而看出每层的必要性
def func_map_label_to_synonym(mlist, format_mapping, raw_mapping, wheel_map, metric="case1"):
    new_mlist = []
    for label in mlist:
        if metric.startswith("case1"):
            label = func_backward_case1(label, format_mapping)
        if metric.startswith("case2"):
            label = func_backward_case2(label, format_mapping, raw_mapping)
        if metric.startswith("case3"):
            label = func_backward_case3(label, format_mapping, raw_mapping, wheel_map)
        if label == "":
            continue  # 如果找不到 backward 的词，就把他剔除
        new_mlist.append(label)
    return new_mlist


def calculate_openset_overlap_rate(name2gt, name2pred, process_names=None, metric="case1"):
    # process_names => (whole) / (subset)
    if process_names is None:
        process_names = [name for name in name2gt]

    # read all mapping # 改为默认从外部读取吧
    mapping_path = OUTSIDE_WHEEL_MAPPING
    if mapping_path is None:  # the port's default: preloaded
        format_mapping = _MAPPING["format_mapping"]
        raw_mapping = _MAPPING["raw_mapping"]
        wheel_map_whole = _MAPPING["wheel_map_whole"]
    else:  # as shipped
        format_mapping = np.load(mapping_path, allow_pickle=True)["format_mapping"].tolist()  # level3 -> level2
        raw_mapping = np.load(mapping_path, allow_pickle=True)["raw_mapping"].tolist()  # level2 -> level1
        wheel_map_whole = np.load(mapping_path, allow_pickle=True)["wheel_map_whole"].tolist()  # level1 -> level0
    if metric.startswith("case3"):
        _, wheelname, levelname = metric.split("_")
        wheel_map = wheel_map_whole[wheelname][levelname]
    else:
        wheel_map = None

    # calculate (accuracy, recall) two values
    accuracy, recall = [], []
    for name in process_names:
        # 删除 gt and pred 中的同义词
        gt = string_to_list(name2gt[name])
        gt = [item.lower().strip() for item in gt]
        gt = set(func_map_label_to_synonym(gt, format_mapping, raw_mapping, wheel_map, metric))

        pred = string_to_list(name2pred[name])
        pred = [item.lower().strip() for item in pred]
        pred = set(func_map_label_to_synonym(pred, format_mapping, raw_mapping, wheel_map, metric))

        if len(gt) == 0:
            continue
        if len(pred) == 0:
            accuracy.append(0)
            recall.append(0)
        else:
            accuracy.append(len(gt & pred) / len(pred))
            recall.append(len(gt & pred) / len(gt))

    ## for special case
    if len(accuracy) != 0:
        avg_accuracy = np.mean(accuracy)
    else:
        avg_accuracy = 0

    if len(recall) != 0:
        avg_recall = np.mean(recall)
    else:
        avg_recall = 0

    return avg_accuracy, avg_recall


def wheel_metric_calculation(name2gt, name2pred, process_names=None, level="level1"):
    if level == "level1":
        candidate_metrics = [
            "case3_wheel1_level1",
            "case3_wheel2_level1",
            "case3_wheel3_level1",
            "case3_wheel4_level1",
            "case3_wheel5_level1",
        ]
    elif level == "level2":
        candidate_metrics = [
            "case3_wheel1_level2",
            "case3_wheel2_level2",
            "case3_wheel3_level2",
            "case3_wheel4_level2",
            "case3_wheel5_level2",
        ]

    # 计算每个metric的这个值
    whole_scores = []
    for metric in candidate_metrics:
        precision, recall = calculate_openset_overlap_rate(
            name2gt=name2gt, name2pred=name2pred, process_names=process_names, metric=metric
        )
        # 非常少的概率下，会出现这个情况
        if precision + recall == 0:
            fscore = 0
        else:
            fscore = 2 * (precision * recall) / (precision + recall)
        whole_scores.append([fscore, precision, recall])
    avg_scores = (np.mean(whole_scores, axis=0)).tolist()
    return avg_scores


def official_ew_metric(golds, preds, level="level1"):
    """The official dataset metric on parallel lists: [F, P, R] averaged over the five wheels."""
    name2gt = dict(enumerate(golds))
    name2pred = dict(enumerate(preds))
    return wheel_metric_calculation(name2gt=name2gt, name2pred=name2pred, level=level)


def official_sample_reward(gold, pred, level="level1"):
    """Per-sample reward: the official metric on the single sample (gold, pred); its F."""
    return wheel_metric_calculation(name2gt={0: gold}, name2pred={0: pred}, level=level)[0]
