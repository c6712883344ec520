"""What a pipeline recipe may hold, checked before anything runs.

A pipeline YAML has ``name``, ``output_dir`` and ``stages``. It may also ``extends: OTHER.yaml``
(take that file's stages; this file's ``stages``, if any, replace them) and set ``overrides``: stage
name (or ``all`` for every stage but eval) -> recipe keys laid over that
stage's (an eval stage takes eval keys). A CPU variant of a GPU pipeline is thus a few lines:
``extends: pipeline.yaml`` plus ``overrides: {all: {model_name_or_path: ..., max_steps: 2}}``.

Each stage has a ``name`` (its folder) and a ``stage`` kind:

- ``align`` / ``sft`` / ``grpo`` / ``select`` / ``synthesize``: ``config`` (the stage recipe, relative
  to the pipeline file), optional ``overrides``, ``model_from`` (an earlier align, sft or grpo stage
  whose model it starts from) and ``dataset_from`` (``STAGE/DATASET``: a dataset an earlier select or
  synthesize stage wrote, e.g. ``select/keep``);
- ``eval``: ``models`` (label: an earlier stage, a path, a hub id or an alias) and the eval keys.
"""

from __future__ import annotations

import difflib
import re

from pathlib import Path

from affect_rl.config import ALIGN_STAGES, DATA_STAGES, TRAINING_STAGES
from affect_rl.config_values import read_yaml_mapping
from affect_rl.data_stage import DATASET_OUTPUTS
from affect_rl.errors import ConfigError

TRAINER_KINDS = TRAINING_STAGES  # trained with a TRL trainer (checkpoints, resume, W&B runs)
TRAINING_KINDS = (*ALIGN_STAGES, *TRAINER_KINDS)  # they write a model that later stages take with model_from
DATA_KINDS = DATA_STAGES  # they write datasets that later stages take with dataset_from
STAGE_KINDS = (*TRAINING_KINDS, *DATA_KINDS, "eval")
TOP_KEYS = {"name", "output_dir", "stages", "extends", "overrides"}
ALL_STAGES = "all"
TRAINING_KEYS = {"name", "stage", "config", "overrides", "model_from", "dataset_from"}
# An eval stage takes the EvalArguments keys (its output_dir is the stage's folder).
EVAL_KEYS = {"name", "stage", "models", "dataset", "dataset_mixture", "dataset_config", "format", "format_options",
             "encoding", "task", "template", "system_prompt", "label_set", "column_mapping", "ignore_media",
             "test_split", "split", "max_test_samples", "batch_size", "max_new_tokens", "dtype", "n_bootstrap", "seed",
             "judge", "breakdown_column", "dataset_from"}
STAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # a folder name: no "/", "..", spaces or dots


def load_pipeline_recipe(path: str, seen: tuple[str, ...] = ()) -> dict:
    """The pipeline at ``path`` with ``extends`` followed and ``overrides`` applied; every stage's
    ``config`` becomes a path relative to the working folder (it was relative to its own file)."""
    recipe = read_yaml_mapping(path)
    folder = Path(path).parent
    resolved = Path(path).resolve()
    if str(resolved) in seen:
        raise ConfigError(f"{path}: `extends` loops back to a file it came from ({' -> '.join(seen)}).")
    base = {}
    if recipe.get("extends") is not None:
        base = load_pipeline_recipe(str(folder / str(recipe["extends"])), (*seen, str(resolved)))
    else:
        for stage in recipe.get("stages") or []:
            if isinstance(stage, dict) and isinstance(stage.get("config"), str):
                stage["config"] = str(folder / stage["config"])
    merged = {key: value for key, value in base.items() if key not in ("extends", "overrides")}
    merged.update({key: value for key, value in recipe.items() if key != "overrides"})
    if recipe.get("stages") is None and "stages" in base:
        merged["stages"] = [dict(stage) for stage in base["stages"]]
    if recipe.get("overrides") is not None:
        merged["stages"] = apply_overrides(merged.get("stages"), recipe["overrides"], path)
    return merged


def apply_overrides(stages, overrides, source: str) -> list:
    """``stages`` with each stage's overrides (and ``all``'s, for the non-eval stages) laid on top."""
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise ConfigError(f"{source}: `overrides:` maps a stage name (or `all`) to a mapping of keys.")
    if not isinstance(stages, list):
        raise ConfigError(f"{source}: `overrides:` needs stages to apply to (`stages:` or `extends:`).")
    names = [stage.get("name") for stage in stages if isinstance(stage, dict)]
    unknown = sorted(set(overrides) - set(names) - {ALL_STAGES})
    if unknown:
        raise ConfigError(f"{source}: overrides names {unknown}, which are not stages: {names} (or `all`).")
    result = []
    for stage in stages:
        stage = dict(stage)
        if stage.get("stage") == "eval":
            stage.update(overrides.get(stage["name"], {}))
        else:
            extra = {**overrides.get(ALL_STAGES, {}), **overrides.get(stage.get("name"), {})}
            if extra:
                stage["overrides"] = {**(stage.get("overrides") or {}), **extra}
        result.append(stage)
    return result


def validate_pipeline(recipe: dict, source: str, skip: list[str], restart: list[str]) -> list[dict]:
    """Check the stage list and the command-line stage names before anything runs."""
    unknown_top = set(recipe) - TOP_KEYS
    if unknown_top:
        raise ConfigError(f"{source}: unknown top-level keys {sorted(unknown_top)}{did_you_mean(unknown_top, TOP_KEYS)}; "
                          f"accepted: {', '.join(sorted(TOP_KEYS))}.")
    stages = recipe.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{source}: `stages:` must be a non-empty list of stages ({', '.join(STAGE_KINDS)}).")
    names: list[str] = []
    for position, stage in enumerate(stages, start=1):
        where = f"{source}: stages[{position}]"
        if not isinstance(stage, dict) or stage.get("stage") not in STAGE_KINDS or "name" not in stage:
            raise ConfigError(f"{where} needs `name:` and `stage:` (one of {', '.join(STAGE_KINDS)}), got {stage!r}.")
        name = stage["name"]
        if not isinstance(name, str) or not STAGE_NAME.fullmatch(name):
            raise ConfigError(f"{where}: stage name {name!r} becomes a folder name: use letters, digits, '_' and '-' "
                              "(no '/', '.' or spaces).")
        if name in names:
            raise ConfigError(f"{where}: two stages are named {name!r}; each stage needs its own name (and folder).")
        check_stage_keys(stage, where)
        names.append(name)
    kinds = {stage["name"]: stage["stage"] for stage in stages}
    for position, stage in enumerate(stages, start=1):
        earlier = names[:position - 1]
        trained = [n for n in earlier if kinds[n] in TRAINING_KINDS]
        for reference in model_references(stage, names):
            if reference not in trained:
                raise ConfigError(f"{source}: stages[{position}]: {reference!r} must name an earlier align, sft or grpo "
                                  f"stage: {trained}.")
        if stage.get("dataset_from") is not None:
            check_dataset_from(stage["dataset_from"], {n: kinds[n] for n in earlier if kinds[n] in DATA_KINDS},
                               f"{source}: stages[{position}]")
    for flag, flagged in (("--skip", skip), ("--restart", restart)):
        unknown = sorted(set(flagged) - set(kinds))
        if unknown:
            raise ConfigError(f"{flag} {unknown}: no such stage; stages are {list(kinds)}.")
    both = sorted(set(skip) & set(restart))
    if both:
        raise ConfigError(f"--skip and --restart both name {both}: choose one.")
    return stages


def check_stage_keys(stage: dict, where: str) -> None:
    """Unknown keys (e.g. a mistyped ``overides:``) and the required keys of each stage kind."""
    allowed = EVAL_KEYS if stage["stage"] == "eval" else TRAINING_KEYS
    unknown = set(stage) - allowed
    if unknown:
        raise ConfigError(f"{where} ({stage['stage']}): unknown keys {sorted(unknown)}{did_you_mean(unknown, allowed)}; "
                          f"accepted: {', '.join(sorted(allowed))}.")
    if stage["stage"] == "eval":
        models = stage.get("models")
        if not isinstance(models, dict) or not models or not all(isinstance(v, str) for v in models.values()):
            raise ConfigError(f"{where} (eval) needs `models:`, a mapping of label: stage name, path or model id.")
    elif not isinstance(stage.get("config"), str):
        raise ConfigError(f"{where} ({stage['stage']}) needs `config:`, the stage recipe file.")
    elif not isinstance(stage.get("overrides", {}), dict):
        raise ConfigError(f"{where}: `overrides:` must be a mapping of recipe keys to values, "
                          f"got {stage['overrides']!r}.")


def did_you_mean(unknown: set[str], allowed: set[str]) -> str:
    """`` (did you mean 'overrides'?)`` for the first unknown key close to an allowed one, else ''."""
    for key in sorted(map(str, unknown)):
        close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
        if close:
            return f" (did you mean {close[0]!r}?)"
    return ""


def model_references(stage: dict, names: list[str]) -> list[str]:
    """The stages whose models ``stage`` uses: its ``model_from``, or the eval models named by a
    stage name (other eval models are paths, hub ids or aliases)."""
    if stage["stage"] == "eval":
        return [ref for ref in stage["models"].values() if ref in names]
    return [stage["model_from"]] if stage.get("model_from") is not None else []


def stage_references(stage: dict, names: list[str]) -> list[str]:
    """Every stage ``stage`` uses: the models' (``model_references``) and its ``dataset_from``'s."""
    dataset_stage = [split_dataset_from(stage["dataset_from"])[0]] if stage.get("dataset_from") else []
    return model_references(stage, names) + [name for name in dataset_stage if name in names]


def split_dataset_from(value) -> tuple[str, str]:
    """``"select/keep"`` -> ``("select", "keep")``; ConfigError when it is not STAGE/DATASET."""
    stage, slash, dataset = str(value).partition("/")
    if not slash or not stage or not dataset:
        raise ConfigError(f"dataset_from must be STAGE/DATASET, e.g. select/keep or synthesize/synthesized; "
                          f"got {value!r}.")
    return stage, dataset


def check_dataset_from(value, data_stages: dict[str, str], where: str) -> None:
    """``dataset_from`` names an earlier select/synthesize stage and one of the datasets it writes."""
    stage, dataset = split_dataset_from(value)
    if stage not in data_stages:
        raise ConfigError(f"{where}: dataset_from {value!r} must name an earlier select or synthesize stage: "
                          f"{sorted(data_stages)}.")
    written = DATASET_OUTPUTS[data_stages[stage]]
    if dataset not in written:
        raise ConfigError(f"{where}: stage {stage!r} ({data_stages[stage]}) writes the datasets {', '.join(written)}, "
                          f"not {dataset!r}.")


def stages_to_restart(stages: list[dict], skip: list[str], restart: list[str], force: bool) -> list[str]:
    """``restart`` (every stage with ``force``) and, transitively, the stages that use them."""
    names = [stage["name"] for stage in stages]
    chosen = set(names) if force else set(restart)
    for stage in stages:  # stages only use earlier ones, so one pass in order is enough
        if set(stage_references(stage, names)) & chosen:
            chosen.add(stage["name"])
    return [stage["name"] for stage in stages if stage["name"] in chosen and stage["name"] not in skip]


def check_skipped_dependencies(stages: list[dict], skip: list[str], manifest: dict) -> None:
    """A stage that runs may only use a skipped stage that has finished."""
    names = [stage["name"] for stage in stages]
    for stage in stages:
        if stage["name"] in skip:
            continue
        for reference in stage_references(stage, names):
            status = manifest["stages"].get(reference, {}).get("status", "never run")
            if reference in skip and status != "done":
                raise ConfigError(f"Stage {stage['name']!r} uses stage {reference!r}, which is skipped (--skip "
                                  f"{reference}) but not done ({status}): run it (drop --skip {reference}).")
