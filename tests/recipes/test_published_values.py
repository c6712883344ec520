"""The GPU recipes keep the published values they cite (issue 12): a later edit that drifts from the source fails.

Each value below is the one the recipe's comment cites (repository, path and line; /work/notes/recipes.md).
The reward options are the very dicts whose parity with a port of the official reward code
tests/rewards/test_parity.py checks (imported from it), so recipe, parity test and source cannot part ways.
Values that are unpublished ([paper] or affect-rl's choice) are not listed: nothing to drift from.
"""

import importlib.util

import pytest
from recipe_runs import REPO

from affect_rl.config import read_yaml_mapping


def _parity_module():
    spec = importlib.util.spec_from_file_location("reward_parity", REPO / "tests" / "rewards" / "test_parity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


parity = _parity_module()
FORMAT = parity.PUBLISHED_FORMAT  # duplicate_penalty 0, strip false
HUMANOMNI_MC = {"applies_to": {"problem_type": ["multiple choice"]}, "choice_parse": "humanomni",
                "choice_score": "exact"}
HUMANOMNI_MC_F1 = {"applies_to": {"problem_type": ["emer_ov_mc"]}, "choice_parse": "humanomni", "choice_score": "f1"}
HUMANOMNI_REWARDS = [
    {"name": "format", "weight": 1.0, "template": None, "anchor": "prefix", **FORMAT},  # qwenomni_module.py:121-141
    {"name": "accuracy", "weight": 1.0, **HUMANOMNI_MC},  # :301-347
    {"name": "accuracy", "weight": 1.0, **HUMANOMNI_MC_F1},  # :279-290
]
HUMANOMNI_JUDGE = {"model": "Qwen/Qwen2.5-72B-Instruct", "timeout": 15, "max_retries": 19, "on_error": "zero"}

PUBLISHED = {
    ("r1_omni", "grpo.yaml"): {
        "rewards": [{"name": "accuracy", "weight": 1.0, **parity.R1_OMNI_ACCURACY},  # grpo.py:54-87
                    {"name": "format", "weight": 1.0, "anchor": "full", **FORMAT}],  # grpo.py:99-104
        "learning_rate": 1e-6, "beta": 0.04,  # trl v0.14.0 grpo_config.py:149-150, :173-174
        "num_generations": 8, "max_completion_length": 512, "num_train_epochs": 2,  # run_grpo_humanomni.sh:35,22,31
        "gradient_accumulation_steps": 2, "temperature": 1.0, "save_steps": 1000,  # :24; trainer :350; :33
        "activation_checkpointing": False,  # :28
    },
    ("r1_omni", "sft.yaml"): {  # scripts/finetune_omni_emer.sh
        "learning_rate": 2e-5, "num_train_epochs": 5, "per_device_train_batch_size": 2,  # :69, :61, :26
        "gradient_accumulation_steps": 1, "weight_decay": 0.0, "warmup_steps": 0.03,  # :25-27, :70, :71
        "lr_scheduler_type": "cosine", "max_length": 2048,  # :72, :74
    },
    ("humanomni_v2", "sft.yaml"): {  # run_scripts/run_sft_qwenomni.sh
        "learning_rate": 2e-5, "num_train_epochs": 2, "per_device_train_batch_size": 1,  # :36, :43, :33
        "gradient_accumulation_steps": 1, "data_seed": 42,  # :34, :39
    },
    ("humanomni_v2", "select.yaml"): {  # eval/roll_out_all_training.py
        "num_samples": 8, "temperature": 0.9, "top_p": 1.0, "max_new_tokens": 1024,  # :397, :403, :404, :401
        "pass_threshold": 0.2, "keep_band": [0.0, 0.75],  # :443, :449
    },
    ("humanomni_v2", "grpo.yaml"): {  # run_scripts/run_grpo_qwenomni_stage2.sh + trainer/grpo_config.py defaults
        "rewards": HUMANOMNI_REWARDS + [{"name": "rubric", "weight": 0.0, "rubric": "logic", **HUMANOMNI_JUDGE},
                                        {"name": "rubric", "weight": 0.0, "rubric": "context", **HUMANOMNI_JUDGE}],
        "learning_rate": 1e-6, "beta": 0.04, "epsilon": 0.2, "num_iterations": 1,  # grpo_config.py:284-303
        "temperature": 0.9, "top_p": 1.0, "top_k": 50,  # grpo_config.py:192-204
        "num_generations": 8, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 2,  # :37-39
        "max_completion_length": 1024, "scale_rewards": "none",  # :36, :46
        "num_train_epochs": 1, "save_steps": 100,  # :52, :54
    },
    ("humanomni_v2", "grpo2.yaml"): {  # run_scripts/run_grpo_qwenomni_stage3.sh
        "rewards": HUMANOMNI_REWARDS,  # :48
        "num_iterations": 2, "gradient_accumulation_steps": 1, "per_device_train_batch_size": 1,  # :45, :39, :38
        "num_generations": 8, "max_completion_length": 1024, "save_steps": 200, "scale_rewards": "none",  # :37,36,55,47
        "learning_rate": 1e-6, "beta": 0.04, "temperature": 0.9,
    },
    ("affectgpt_r1", "grpo.yaml"): {  # vhzy/HumanOmniV2 affect_r1/run_grpo.sh
        "rewards": [{"name": "emotion_wheel", "weight": 1.0, "variant": "community", "level": "level1",  # :60-61
                     "wheels": [1, 2, 3, 4, 5], "max_words": None, "family_penalty": 0.0,  # affect_reward.py:61-121
                     "per_sample": "f1"},
                    {"name": "format", "weight": 0.1, "anchor": "prefix", **FORMAT}],  # affect_reward.py:123-129
        "learning_rate": 1e-5, "beta": 0.04, "epsilon": 0.2, "max_completion_length": 1024,  # :45-47, :49
        "num_generations": 8, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,  # :50-52
        "scale_rewards": "none", "num_train_epochs": 2, "temperature": 0.9, "top_k": 50,  # :59, :66; defaults
    },
    ("affectgpt_r1", "sft.yaml"): {  # affect_r1/run_sft.sh
        "learning_rate": 2e-5, "num_train_epochs": 2, "per_device_train_batch_size": 1,  # :71, :78, :68
        "gradient_accumulation_steps": 4,  # :69
    },
    ("psyche_r1", "sft.yaml"): {"learning_rate": 1e-5, "num_train_epochs": 2},  # [paper]: the only numbers there are
    ("psyche_r1", "grpo.yaml"): {"learning_rate": 1e-6, "beta": 0.001},  # [paper]
    ("kardia_r1", "grpo.yaml"): {"rewards": [{"name": "accuracy"}, {"name": "rubric", "rubric": "empathy"},
                                             {"name": "format"}]},  # README.md:57-61 (scale, weights unpublished)
    ("facial_r1", "sft.yaml"): {  # RobitsG/Facial-R1 run_scripts/sft_emotion.sh
        "learning_rate": 5e-6, "num_train_epochs": 2, "per_device_train_batch_size": 2,  # :26, :38, :29
        "gradient_accumulation_steps": 2, "max_length": 2048, "seed": 42,  # :30, :28, :36
    },
    ("facial_r1", "grpo.yaml"): {  # run_scripts/grpo_emotion.sh + trainer/grpo_config.py defaults
        "rewards": [{"name": "au_f1", "weight": 1.0, "variant": "facial_r1"},  # grpo_jsonl.py:917-957
                    {"name": "accuracy", "weight": 1.0, **parity.FACIAL_R1_ACCURACY},  # :793-841
                    {"name": "format", "weight": 1.0, "anchor": "full", **FORMAT}],  # :898-913
        "learning_rate": 1e-6, "epsilon": 0.2, "num_iterations": 1,  # grpo_config.py:176-177, :190-195
        "num_generations": 8, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 4,  # :66, :56, :57
        "num_train_epochs": 8, "max_completion_length": 256, "beta": 0.0, "temperature": 1.0,  # :65, :67, :69; trainer :373
    },
    ("facial_r1", "synthesize.yaml"): {  # src/eval/infer_emotion.py + run_scripts/infer_emotion.sh
        "rewards": [{"name": "au_f1", "weight": 1.0, "variant": "facial_r1"},  # the AU set check (:221,225)
                    {"name": "accuracy", "weight": 1.0, **parity.FACIAL_R1_ACCURACY},  # the label check (:222,226)
                    {"name": "format", "weight": 1.0, "anchor": "full", **FORMAT}],  # affect-rl choice (SFT targets)
        "retries": 5, "max_new_tokens": 1024, "batch_size": 8, "seed": 42,  # :55; .sh:35; .sh:34; :97
        "temperature": 0.0, "accept": None,  # greedy (:212); unset: every reward at its maximum
    },
    ("emocaliber", "sft.yaml"): {  # wdqqdw/EmoCaliber train/step1_example.sh
        "learning_rate": 1e-5, "num_train_epochs": 1, "per_device_train_batch_size": 8,  # :37, :34, :35
        "gradient_accumulation_steps": 2, "max_length": 2048, "warmup_steps": 0.05,  # :39, :44, :47
    },
    ("emocaliber", "grpo.yaml"): {  # train/step3_example.sh + verl ppo_trainer.yaml defaults
        "rewards": [{"name": "calibration", "weight": 1.0, "variant": "emocaliber"}],  # cus_reward.py:21-87
        "learning_rate": 1e-6, "beta": 0.01, "num_generations": 8, "max_completion_length": 2048,  # :22, :27-28, :42, :17
        "scale_rewards": "none", "num_train_epochs": 1, "save_steps": 100,  # :46, :55, :53
        "epsilon": 0.2, "num_iterations": 1, "temperature": 1.0, "top_p": 1.0, "max_grad_norm": 1.0,  # verl defaults
        "weight_decay": 0.01, "warmup_steps": 0, "loss_type": "dapo",  # verl defaults (token-mean)
    },
}  # fmt: skip


def _matches(entry: dict, published: dict) -> bool:
    """The recipe's reward entry sets every published key to the published value (None: left to follow the stage)."""
    return all(entry.get(key) == value for key, value in published.items())


@pytest.mark.parametrize("system, recipe", sorted(PUBLISHED))
def test_recipe_sets_the_published_values(system, recipe):
    values = read_yaml_mapping(str(REPO / "recipes" / system / recipe))
    published = dict(PUBLISHED[(system, recipe)])
    expected_rewards = published.pop("rewards", None)
    assert {key: values.get(key) for key in published} == published
    if expected_rewards is not None:
        assert len(values["rewards"]) == len(expected_rewards)
        for position, (entry, expected) in enumerate(zip(values["rewards"], expected_rewards), start=1):
            assert _matches(entry, expected), f"{system}/{recipe} rewards[{position}]: {entry} != {expected}"


def test_the_parity_dicts_are_what_the_official_code_computes():
    """A guard on the import: the dicts above are the ones the parity tests exercise."""
    assert parity.R1_OMNI_ACCURACY == {"match": "verbatim", "which": "first", "multiline": False,
                                       "fallback": "completion"}
    assert FORMAT == {"duplicate_penalty": 0.0, "strip": False}
