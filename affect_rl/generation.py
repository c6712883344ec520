"""Generation for evaluation and data stages: completions of chat prompts, in order.

Greedy by default (evaluation); ``Sampling`` draws several completions per prompt (the select
and synthesize stages). vLLM when it is installed and a CUDA GPU is visible, otherwise batched
HF decoding: left padding, prompts of similar length batched together, bf16 weights on GPUs
and CPUs with native bf16; greedy rows leave the batch as they end (``greedy_decoding``), and
sampling runs ``generate``. ``Completions`` carries, beside the texts, each completion's token
count and whether it was cut at ``max_new_tokens``.

Prompts with images (a vision-language model) go through the model's processor: the images become
content parts of the first user turn (as TRL's trainers build them), and the processor tokenises
and resizes them. On vLLM each prompt is passed as TRL passes rollouts
(``trl/generation/vllm_generation.py``, colocate mode): the processor's token ids as
``prompt_token_ids`` and the PIL images as ``multi_modal_data={"image": image or [images]}``.
"""

from __future__ import annotations

import gc
import importlib.util
from dataclasses import dataclass
from typing import Sequence

import torch
from tqdm.auto import tqdm

from affect_rl.data.media import multimodal_prompt
from affect_rl.errors import DataError
from affect_rl.greedy_decoding import greedy_decode
from affect_rl.hardware import cpu_supports_bf16, cuda_available, cuda_supports_bf16
from affect_rl.models import (
    is_adapter_folder,
    is_vision_language,
    load_causal_lm,
    load_processing_class,
    resolve_model_path,
)


class Completions(list):
    """Decoded completions (a ``list[str]``, one per prompt) with, per completion, the number of
    generated tokens (end-of-turn token included) and whether it hit ``max_new_tokens`` before
    ending (``truncated``)."""

    def __init__(self, texts: Sequence[str], num_tokens: Sequence[int], truncated: Sequence[bool]):
        super().__init__(texts)
        self.num_tokens = list(num_tokens)
        self.truncated = list(truncated)


@dataclass(frozen=True)
class Sampling:
    """How completions are drawn: ``n`` per prompt at ``temperature`` (0: greedy) and ``top_p``."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


GREEDY = Sampling()


def vllm_usable() -> bool:
    """True when vLLM is importable and torch sees a CUDA GPU (vLLM's only supported setup here)."""
    return importlib.util.find_spec("vllm") is not None and cuda_available()


def generate_completions(
    model_name_or_path: str,
    prompts: Sequence[list[dict]],
    batch_size: int = 16,
    max_new_tokens: int = 256,
    progress: bool = True,
    sampling: Sampling = GREEDY,
    images: Sequence[list] | None = None,
    dtype: str = "auto",
) -> Completions:
    """Completions of chat ``prompts`` (message lists), ``sampling.n`` per prompt, prompt-major
    (prompt i's completions at ``i * n ... i * n + n - 1``); greedy unless ``sampling`` samples.
    ``dtype`` is the weights' dtype: "float32", "bfloat16", or "auto" for ``generation_dtype``'s choice.

    ``images``: per prompt, its image values (paths, Image features or PIL images; see
    ``affect_rl.data.media``), for a vision-language model. vLLM when ``vllm_usable()``, else HF
    ``generate`` in batches of ``batch_size`` prompts.
    """
    if not prompts:
        return Completions([], [], [])
    if images is not None and any(images) and not is_vision_language(model_name_or_path):
        raise DataError(f"the rows have images, but {model_name_or_path} is a text model, which cannot take them; "
                        "evaluate a vision-language model, or set ignore_media: true")  # fmt: skip
    if is_vision_language(model_name_or_path):
        prompts = [multimodal_prompt(prompt, images[i] if images else []) for i, prompt in enumerate(prompts)]
    if vllm_usable() and not is_adapter_folder(resolve_model_path(model_name_or_path)):
        return _generate_vllm(model_name_or_path, prompts, max_new_tokens, progress, sampling, dtype)
    return _generate_hf(model_name_or_path, prompts, batch_size, max_new_tokens, progress, sampling, dtype)


@torch.inference_mode()
def _generate_hf(model_name_or_path, prompts, batch_size, max_new_tokens, progress, sampling, dtype) -> Completions:
    from transformers import GenerationConfig
    from trl import ModelConfig

    device = "cuda" if cuda_available() else "cpu"
    dtype = generation_dtype(device) if dtype == "auto" else dtype
    processing_class = load_processing_class(model_name_or_path, padding_side="left")
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    # A LoRA adapter checkpoint is merged into its base model for generation.
    model, _ = load_causal_lm(ModelConfig(model_name_or_path=model_name_or_path, dtype=dtype), merge_adapter=True)
    model.to(device).eval()
    eos_ids = _eos_token_ids(model, tokenizer)
    sampled = {} if sampling.greedy else {"temperature": sampling.temperature, "top_p": sampling.top_p}
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=not sampling.greedy, num_return_sequences=sampling.n,
        eos_token_id=eos_ids, pad_token_id=tokenizer.pad_token_id, **sampled,
    )  # fmt: skip
    # Greedy text generation shares the prompts' prefix and drops each row as it ends
    # (affect_rl/greedy_decoding.py); sampling and images go through ``generate``.
    greedy_text = sampling.greedy and not is_vision_language(model_name_or_path)
    torch.manual_seed(sampling.seed)
    texts = [processing_class.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
             for chat in prompts]  # fmt: skip
    # Prompts of similar length share a batch, so little compute goes to padding.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    total = len(texts) * sampling.n
    decoded, num_tokens, truncated = [""] * total, [0] * total, [False] * total
    with tqdm(total=len(texts), desc=f"generate {model_name_or_path}", disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            batch_images = [prompt_images(prompts[i]) for i in batch]
            inputs = processing_class(
                text=[texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False,
                **({"images": batch_images} if any(batch_images) else {}),
            ).to(device)  # fmt: skip
            if greedy_text:
                generated = greedy_decode(model, inputs["input_ids"], inputs["attention_mask"], config, eos_ids)
            else:
                output = model.generate(**inputs, generation_config=config)
                generated = output[:, inputs["input_ids"].shape[1] :].tolist()
            for position, tokens in enumerate(generated):  # generate returns each prompt's n in a row
                slot = batch[position // sampling.n] * sampling.n + position % sampling.n
                end = next((k + 1 for k, token in enumerate(tokens) if token in eos_ids), None)
                truncated[slot] = end is None
                num_tokens[slot] = len(tokens) if end is None else end
                decoded[slot] = tokenizer.decode(tokens[: num_tokens[slot]], skip_special_tokens=True)
            bar.update(len(batch))
    del model
    gc.collect()
    return Completions(decoded, num_tokens, truncated)


def generation_dtype(device: str) -> str:
    """bf16 where the device runs it natively, else fp32.

    bf16 weights rather than fp32 weights under autocast: autocast casts every weight again at
    each forward, that is at every generated token. On a 2-core CPU with avx512_bf16 a decoding
    step of SmolLM2-135M at batch 32 took 178 ms under autocast and 133 ms with bf16 weights
    (``python bench/eval_dtype.py``). Either bf16 setting changes some greedy completions
    against fp32 (17 and 14 of 32 stayed identical there).

    Rounding to bf16 also hides or magnifies small weight changes: the demo's SFT model with
    Gaussian noise of GRPO's update size (RMS 6e-5 against weights of RMS 0.18) changed 51-63 of
    160 greedy validation completions and moved EW F by +0.015 to +0.037 in bf16, and changed
    3-5 of them (EW F within 0.002) in fp32. Compare such checkpoints with ``dtype: float32``.
    """
    native_bf16 = cuda_supports_bf16() if device == "cuda" else cpu_supports_bf16()
    return "bfloat16" if native_bf16 else "float32"


def _eos_token_ids(model, tokenizer) -> list[int]:
    """Every token that ends a turn: the model's generation config may list several."""
    configured = model.generation_config.eos_token_id
    configured = configured if isinstance(configured, list) else [configured]
    return sorted({token for token in [*configured, tokenizer.eos_token_id] if token is not None})


def prompt_images(prompt: list[dict]) -> list:
    """The images placed in a prompt's content parts, in order."""
    return [part["image"] for message in prompt if isinstance(message["content"], list)
            for part in message["content"] if part.get("type") == "image"]  # fmt: skip


def vllm_image_inputs(processor, prompts: Sequence[list[dict]]) -> list[dict]:
    """vLLM inputs for chat prompts with image parts, as TRL builds them for rollouts
    (``trl/generation/vllm_generation.py``, colocate mode): ``{"prompt_token_ids": ids,
    "multi_modal_data": {"image": image}}`` (a list when the prompt has several images)."""
    inputs = []
    for prompt in prompts:
        ids = processor.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
        row = {"prompt_token_ids": list(ids["input_ids"][0])}
        images = prompt_images(prompt)
        if images:
            row["multi_modal_data"] = {"image": images if len(images) > 1 else images[0]}
        inputs.append(row)
    return inputs


def _generate_vllm(model_name_or_path, prompts, max_new_tokens, progress, sampling, dtype) -> Completions:
    from vllm import LLM, SamplingParams

    path = resolve_model_path(model_name_or_path)
    params = SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                            max_tokens=max_new_tokens, skip_special_tokens=True, seed=sampling.seed)  # fmt: skip
    if is_vision_language(model_name_or_path):
        most_images = max(len(prompt_images(prompt)) for prompt in prompts)
        llm = LLM(model=path, seed=sampling.seed, dtype=dtype, limit_mm_per_prompt={"image": max(1, most_images)})
        results = llm.generate(vllm_image_inputs(load_processing_class(model_name_or_path), prompts), params,
                               use_tqdm=progress)  # fmt: skip
    else:
        llm = LLM(model=path, seed=sampling.seed, dtype=dtype)
        results = llm.chat(list(prompts), params, use_tqdm=progress)
    outputs = [output for result in results for output in result.outputs]
    # Free the GPU before the next checkpoint of the same report loads.
    del llm
    gc.collect()
    torch.cuda.empty_cache()
    return Completions(
        [output.text for output in outputs],
        [len(output.token_ids) for output in outputs],
        [output.finish_reason == "length" for output in outputs],
    )
