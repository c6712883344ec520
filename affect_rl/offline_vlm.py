"""The offline vision-language model: SmolLM2-135M-Instruct's language weights in the Idefics3
(SmolVLM) architecture, with a small vision encoder and connector that start untrained.

No pretrained VLM can be downloaded at run time, so the alias ``smolvlm-faces-135m`` is built
once, deterministically (seeded), from the built-in text model and saved as a normal checkpoint
folder with its processor under ``$AFFECT_RL_CACHE/models/smolvlm-faces-135m-v<version>``. ``AutoModelForImageTextToText`` and
``AutoProcessor`` load it like any hub checkpoint (``Idefics3ForConditionalGeneration``, whose
text model is a Llama: SmolVLM is built the same way, HuggingFaceTB/SmolVLM-256M-Instruct).

- Language model: SmolLM2-135M-Instruct, weights copied unchanged; the embedding matrix grows
  by the four image tokens (``<fake_token_around_image>``, ``<image>``, ``<end_of_utterance>``,
  ``<global-img>``), initialised from the mean and covariance of the existing rows.
- Vision encoder: an Idefics3 (SigLIP-style) ViT, randomly initialised, sized for small faces
  (``VisionSpec``): 96 px images, 8 px patches (a 12 x 12 grid), one layer of width 192. Trained
  from scratch with a classification head of its own on the 480 demo:faces training images
  (``python bench/faces_vision.py``, measured on build version 2), one layer reached 0.73
  held-out accuracy after 180 steps of 8 faces, two layers 0.57, three 0.27.
- Connector: pixel shuffle by 12, the whole 12 x 12 grid, and a linear projection into the
  language model's width: one image token per image, a position-aware linear read-out of every
  patch. With pixel shuffle by 3 (16 tokens, each a 3 x 3 block of patches, build version 2), each
  token carries only its own region: aligned to the emotion's word with a read-out shared by all
  tokens, it reached 0.33 on the validation faces after 300 steps, where one token per image
  reached 0.75 (``affect_rl.align``'s loss, a scratch probe).
  Its weights are drawn so that image tokens start at the scale of the text embeddings (root mean
  square 0.14 for SmolLM2; the default initialisation made them 6 times larger).
- Processor: Idefics3's, resizing every image to 96 x 96 without splitting, and SmolLM2's ChatML
  chat template extended to content parts (``{"type": "image"}`` becomes ``<image>``).

The vision part knows nothing until trained: the faces demo trains it (its align stage trains the
vision encoder and connector, then SFT trains the language model with LoRA).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from affect_rl.files import staged_folder

logger = logging.getLogger(__name__)

IMAGE_TOKENS = ("<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>")

# SmolLM2's template (same default system turn), with list contents rendered part by part.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class VisionSpec:
    """The vision encoder and connector of a built VLM."""

    image_size: int = 96
    patch_size: int = 8
    hidden_size: int = 192
    num_layers: int = 1
    num_heads: int = 4
    scale_factor: int = 12  # pixel shuffle: image tokens = (image_size / patch_size / scale_factor) ** 2
    seed: int = 0

    @property
    def image_tokens(self) -> int:
        return (self.image_size // self.patch_size // self.scale_factor) ** 2


@dataclass(frozen=True)
class BuiltVLM:
    """A VLM alias: the text model whose weights it reuses, its vision spec, and a version that
    names its cache folder (raise it when the build changes, so old builds are not reused)."""

    text_model: str
    vision: VisionSpec
    version: int


def build_vlm(text_model_path: str, vision: VisionSpec, target: Path) -> None:
    """Build the VLM from the text checkpoint at ``text_model_path`` and save it (with its processor)
    at ``target``; written beside it and renamed into place, as the text model is."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Idefics3Config, Idefics3ForConditionalGeneration
    from transformers import Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    logger.info("Building the offline VLM from %s into %s (once)", text_model_path, target)
    torch.manual_seed(vision.seed)
    tokenizer = AutoTokenizer.from_pretrained(text_model_path)
    tokenizer.add_special_tokens({"additional_special_tokens": list(IMAGE_TOKENS)})
    text_model = AutoModelForCausalLM.from_pretrained(text_model_path, dtype=torch.float32)
    text_model.resize_token_embeddings(len(tokenizer))
    config = Idefics3Config(
        text_config=text_model.config.to_dict(),
        vision_config={"image_size": vision.image_size, "patch_size": vision.patch_size,
                       "hidden_size": vision.hidden_size, "intermediate_size": 2 * vision.hidden_size,
                       "num_hidden_layers": vision.num_layers, "num_attention_heads": vision.num_heads},
        scale_factor=vision.scale_factor,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=text_model.config.tie_word_embeddings,
    )  # fmt: skip
    model = Idefics3ForConditionalGeneration(config)
    model.model.text_model.load_state_dict(text_model.model.state_dict())
    # The vision encoder ends in a LayerNorm (unit variance per dimension), so a projection drawn with
    # std = rms(text embeddings) / sqrt(fan_in) gives image tokens the text embeddings' scale.
    projection = model.model.connector.modality_projection.proj.weight
    text_rms = text_model.get_input_embeddings().weight.detach().pow(2).mean().sqrt().item()
    torch.nn.init.normal_(projection, std=text_rms / projection.shape[1] ** 0.5)
    if not config.tie_word_embeddings:
        model.lm_head.load_state_dict(text_model.lm_head.state_dict())
    model.generation_config = text_model.generation_config
    image_processor = Idefics3ImageProcessorPil(
        do_resize=True, size={"longest_edge": vision.image_size}, max_image_size={"longest_edge": vision.image_size},
        do_image_splitting=False,
    )
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer,
                                  image_seq_len=vision.image_tokens, chat_template=CHAT_TEMPLATE)  # fmt: skip

    with staged_folder(target) as staging:  # kept as is if another process finished first
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
