"""Export a stage's model: merge a LoRA adapter, save a standalone checkpoint with a model card, push.

    affect-rl export --model runs/demo/sft --merge                  # -> runs/demo/sft-merged
    affect-rl export --model runs/demo/grpo --push user/demo-grpo    # -> runs/demo/grpo-export + the Hub

The checkpoint holds the weights, the tokenizer with its chat template and the generation config,
so transformers and vLLM load it without peft or affect-rl. ``--merge`` folds a LoRA adapter into
its base model with peft's ``merge_and_unload``; an adapter exported without it stays an adapter.
The model card (README.md) says what made the model, read from what the pipeline wrote: the
stage's resolved recipe, data and rewards (``manifest.json`` beside the stage folder), the eval
table with its intervals (the report.json of the pipeline's eval stage that scored this model,
or ``--report``) and the package versions. ``--push`` uploads the folder with huggingface_hub.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from affect_rl.errors import ConfigError, EnvironmentProblem
from affect_rl.files import staged_folder
from affect_rl.manifest import TRACKED_PACKAGES, package_version
from affect_rl.models import is_adapter_folder

EXPORT_RECORD = "export.json"  # provenance of an export; also marks a folder --overwrite may replace


def export_model(model: str, merge: bool = False, output: str | None = None, report: str | None = None,
                 push: str | None = None, private: bool = False, overwrite: bool = False) -> Path:
    """Write the standalone checkpoint and its model card to ``output``; push it if asked.

    Returns the output folder. Every problem a user can cause is a ConfigError or an
    EnvironmentProblem raised before anything is written.
    """
    source = Path(model)
    adapter = check_source(source, merge)
    target = Path(output) if output else source.with_name(source.name + ("-merged" if merge else "-export"))
    check_target(target, source, overwrite)
    provenance = stage_provenance(source, Path(report) if report else None)

    with staged_folder(target, replace=True) as staging:
        base_model = save_checkpoint(source, staging, adapter, merge)
        (staging / "README.md").write_text(model_card(source, provenance, base_model, adapter and not merge,
                                                      push or str(target)), encoding="utf-8")
        record = {"source": str(source.resolve()), "merged": adapter and merge, "base_model": base_model,
                  "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "hub_repo": push}
        (staging / EXPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    print(f"Exported {source} to {target}" + (" (LoRA merged into its base)" if adapter and merge else ""))
    if push:
        push_to_hub(target, push, private)
    return target


def check_source(source: Path, merge: bool) -> bool:
    """Whether ``source`` is a LoRA adapter; a ConfigError when it is no model folder or when
    ``--merge`` has nothing to merge."""
    adapter = is_adapter_folder(str(source))
    if not adapter and not (source / "config.json").is_file():
        raise ConfigError(f"--model {source}: no config.json or adapter_config.json there. Pass the output folder "
                          "of an sft or grpo stage (e.g. runs/demo/sft).")
    if merge and not adapter:
        raise ConfigError(f"--merge: {source} is a full model, not a LoRA adapter (no adapter_config.json); "
                          "export it without --merge.")
    return adapter


def check_target(target: Path, source: Path, overwrite: bool) -> None:
    if target.resolve() == source.resolve():
        raise ConfigError(f"--output {target} is the model folder itself; choose another folder.")
    if target.exists() and any(target.iterdir()):
        if not overwrite:
            raise ConfigError(f"--output {target} already exists; pass --overwrite to replace it or choose another.")
        if not (target / EXPORT_RECORD).is_file():
            raise ConfigError(f"--output {target} holds files that no export wrote (no {EXPORT_RECORD}); "
                              "--overwrite only replaces an earlier export. Choose another folder.")


def save_checkpoint(source: Path, target: Path, adapter: bool, merge: bool) -> str | None:
    """Load the model (merging an adapter when asked) and save weights, generation config and
    tokenizer (with its chat template) to ``target``; returns the adapter's base model, if any."""
    from transformers import AutoTokenizer
    from trl import ModelConfig

    from affect_rl.models import adapter_base, load_causal_lm, resolve_model_path

    base_model = adapter_base(str(source)) if adapter else None
    # dtype "auto": the weights keep the dtype they were saved in (no silent fp32 copy of bf16 weights).
    model, _ = load_causal_lm(ModelConfig(model_name_or_path=str(source), dtype="auto"), merge_adapter=merge)
    model.save_pretrained(str(target))
    # The stage saves its tokenizer beside the weights; an adapter folder without one uses its base's.
    tokenizer_source = source if (source / "tokenizer_config.json").is_file() else resolve_model_path(base_model)
    AutoTokenizer.from_pretrained(str(tokenizer_source)).save_pretrained(str(target))
    return base_model


def stage_provenance(source: Path, report_path: Path | None) -> dict:
    """What the pipeline recorded about the stage that wrote ``source``: the manifest, the stage's
    name and record, and the eval report that scored it (``report_path`` wins when given)."""
    manifest_path = source.resolve().parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    stage_name, record = next(((name, record) for name, record in manifest.get("stages", {}).items()
                               if same_folder(record.get("output_dir"), source)), (None, {}))
    if report_path is not None:
        if not report_path.is_file():
            raise ConfigError(f"--report {report_path} does not exist; pass the report.json written by `affect-rl eval` "
                              "or a pipeline's eval stage.")
        reports = [json.loads(report_path.read_text())]
    else:
        eval_folders = [Path(r["output_dir"]) for r in manifest.get("stages", {}).values()
                        if r.get("kind") == "eval" and r.get("status") == "done"]
        candidates = [json.loads((folder / "report.json").read_text()) for folder in eval_folders
                      if (folder / "report.json").is_file()]
        reports = [r for r in candidates if any(same_folder(c.get("model"), source) for c in r["checkpoints"].values())]
    report = reports[-1] if reports else None
    label = next((label for label, entry in report["checkpoints"].items() if same_folder(entry.get("model"), source)),
                 None) if report else None
    return {"manifest": manifest, "stage": stage_name, "record": record, "report": report, "label": label}


def same_folder(recorded: str | None, folder: Path) -> bool:
    """Whether a path recorded by a run (absolute, or relative to the folder the run started in)
    names ``folder``."""
    if not recorded:
        return False
    path = Path(recorded)
    resolved = folder.resolve()
    if path.is_absolute():
        return path.resolve() == resolved
    return path.resolve() == resolved or resolved.parts[-len(path.parts):] == path.parts


def model_card(source: Path, provenance: dict, base_model: str | None, is_adapter: bool, location: str) -> str:
    """README.md: Hub metadata, how to load the model, data, rewards, eval table, recipe, versions."""
    from huggingface_hub import ModelCardData

    config = provenance["record"].get("config") or {}
    data, recipe = config.get("data") or {}, config.get("recipe") or {}
    kind = provenance["record"].get("kind")
    run_name = provenance["manifest"].get("run_name")
    # Hub metadata names only Hub ids: the adapter's base, else the model the first stage started from.
    first_stage = next(iter(provenance["manifest"].get("stages", {}).values()), {})
    starts = [base_model, ((first_stage.get("config") or {}).get("model") or {}).get("model_name_or_path")]
    card_data = ModelCardData(
        base_model=next((name for name in starts if hub_id(name)), None),
        library_name="peft" if is_adapter else "transformers", pipeline_tag="text-generation",
        tags=["affect-rl", "trl", *([kind] if kind else []), *(["lora"] if base_model else [])],
        datasets=[data["dataset"]] if hub_id(data.get("dataset")) else None,
    )
    origin = (f"stage `{provenance['stage']}` ({kind}) of the affect-rl run `{run_name}`" if provenance["stage"]
              else f"`{source.name}`, trained with affect-rl")
    lines = [f"# {Path(location).name}", "",
             f"Exported from {origin}" + (f", a LoRA adapter of `{base_model}`" if base_model else "")
             + (" merged into its base model." if base_model and not is_adapter else "."), ""]
    lines += usage_section(location, is_adapter)
    lines += data_section(data) + rewards_section(recipe.get("rewards") or [])
    lines += eval_section(provenance["report"], provenance["label"])
    lines += pipeline_section(provenance["manifest"]) + recipe_section(config, provenance["stage"])
    lines += versions_section(provenance["manifest"].get("packages") or {})
    return f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"


def hub_id(name: str | None) -> bool:
    """Whether ``name`` looks like a Hub model id (``owner/name``), not a local path."""
    return (bool(name) and name.count("/") == 1 and not name.startswith((".", "/")) and not Path(name).exists()
            and not name.endswith((".jsonl", ".json", ".csv", ".parquet")))


def usage_section(location: str, is_adapter: bool) -> list[str]:
    if is_adapter:
        load = f'from peft import AutoPeftModelForCausalLM\nmodel = AutoPeftModelForCausalLM.from_pretrained("{location}")'
    else:
        load = f'from transformers import pipeline\nchat = pipeline("text-generation", model="{location}")'
    lines = ["## Use", "", "```python", load, "```", ""]
    return lines + ([] if is_adapter else ["```bash", f"vllm serve {location}", "```", ""])


def data_section(data: dict) -> list[str]:
    if not data:
        return ["## Data", "", "Not recorded: this folder was not written by `affect-rl pipeline`.", ""]
    rows = [(key, json.dumps(value, ensure_ascii=False)) for key, value in data.items() if value not in (None, {}, [])]
    return ["## Data", "", "| key | value |", "| --- | --- |", *(f"| {k} | `{v}` |" for k, v in rows), ""]


def rewards_section(rewards: list[dict]) -> list[str]:
    if not rewards:
        return []
    lines = ["## Rewards", "", "| reward | weight | options |", "| --- | --- | --- |"]
    for spec in rewards:
        options = ", ".join(f"{k}={v}" for k, v in spec.items() if k not in ("name", "weight")) or "defaults"
        lines.append(f"| `{spec['name']}` | {spec.get('weight', 1.0)} | {options} |")
    return lines + [""]


def eval_section(report: dict | None, label: str | None) -> list[str]:
    from affect_rl.report import markdown_report

    if report is None:
        return ["## Evaluation", "", "No eval report found for this model (a pipeline's eval stage, or "
                "`affect-rl export --report report.json`).", ""]
    # The report's headings, one level down under this section.
    table = "\n".join("##" + line if line.startswith("#") else line for line in markdown_report(report).splitlines())
    which = f"This model is the row `{label}`." if label else ""
    return ["## Evaluation", "", which, "", table, ""]


def pipeline_section(manifest: dict) -> list[str]:
    if not manifest.get("stages"):
        return []
    lines = ["## Pipeline", "", f"Run `{manifest.get('run_name')}`, recipe `{Path(manifest.get('recipe', '')).name}`, "
             f"commit `{manifest.get('git_commit') or 'unknown'}`.", "",
             "| stage | kind | status | wall time (s) |", "| --- | --- | --- | --- |"]
    for name, record in manifest["stages"].items():
        lines.append(f"| {name} | {record.get('kind')} | {record.get('status')} | {record.get('wall_time_s', '')} |")
    return lines + [""]


def recipe_section(config: dict, stage: str | None) -> list[str]:
    if not config:
        return []
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return ["## Recipe", "", f"<details><summary>Resolved configuration of stage <code>{stage}</code></summary>", "",
            "```yaml", text.rstrip(), "```", "", "</details>", ""]


def versions_section(trained_with: dict) -> list[str]:
    lines = ["## Versions", "", "| package | trained with | exported with |", "| --- | --- | --- |"]
    for name in TRACKED_PACKAGES:
        lines.append(f"| {name} | {trained_with.get(name) or 'not recorded'} | {package_version(name) or 'absent'} |")
    return lines + [""]


def push_to_hub(folder: Path, repo_id: str, private: bool) -> None:
    """Create the Hub repository if needed and upload ``folder`` in one commit."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload affect-rl export")
    except Exception as error:  # the network boundary: auth, network, a bad repo id; the export is done
        raise EnvironmentProblem(
            f"Pushing {folder} to the Hub repository {repo_id!r} failed ({type(error).__name__}: {error}). "
            f"Log in with `hf auth login` (or set HF_TOKEN) and check the repository name, then re-run "
            f"with --output {folder} --overwrite --push {repo_id}."
        ) from None
    print(f"Pushed to https://huggingface.co/{repo_id} ({commit.commit_url})")
