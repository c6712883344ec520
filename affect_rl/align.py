"""Align stage: teach a VLM's vision encoder and projector to say each image's label as a word.

    affect-rl align --config recipes/faces/align.yaml [--key value ...]

A vision part that starts untrained (the built-in ``smolvlm-faces-135m``) gives the language model
image tokens it cannot read, and SFT through the language model does not teach it to read them
in minutes on a CPU (the closing notes of issue 11: SFT's loss is the same with the right images
and with shuffled ones). This stage trains the vision encoder and projector alone, with the
language model's own word embeddings as targets: every image token of a training row is pulled
towards the input embedding ``e(y)`` of the first token of its gold label ``y`` (`` happiness``),
with the loss

    L = CE(s * cos(h, e(c)) over the label set's words c, y) + w * ||h - e(y)||^2 / mean(e^2)

for each image token ``h`` (``s`` = ``SIMILARITY_SCALE``, ``w`` = ``embedding_loss_weight``): the
cross-entropy makes the token point at its own label's word rather than another label's, and the
squared distance, in units of the embeddings' mean square, brings it onto that word. The language
model then reads the image as that word, and SFT can copy it. This is LLaVA's first stage (train the
projector on paired data before instruction tuning) with a regression target in the embedding
space instead of a captioning loss through the language model.

The projector learns with its own, much smaller rate (``mm_projector_lr``, the name LLaVA's and
Qwen2.5-VL's training scripts use): it maps thousands of layer-normed features onto embeddings
whose root mean square is about 0.14, so one AdamW step at the encoder's rate would move its outputs
many times further than the target scale.

Like SFT and GRPO, it locks its output folder and refuses one that another config wrote. The
stage writes a full checkpoint (model and processor) that later stages start from with
``model_from: align``, the held-out rows as SFT does, ``summary.json`` and ``alignment.png``
(the training loss, and how often each image's tokens sit nearest their own label's word).
"""

from __future__ import annotations

import json
import math
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from affect_rl.errors import ConfigError

SIMILARITY_SCALE = 10.0  # cosines lie in [-1, 1]; x10 lets the cross-entropy reach confident choices


@dataclass
class AlignArguments:
    """The align stage's own settings (model and data come from the usual recipe keys)."""

    output_dir: str = field(default="runs/align", metadata={"help": "Where the aligned checkpoint goes."})
    max_steps: int = field(default=300, metadata={"help": "Optimizer steps."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Images per step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW rate of the vision encoder."})
    mm_projector_lr: float = field(default=1e-5, metadata={"help": "AdamW rate of the projector (connector)."})
    embedding_loss_weight: float = field(
        default=10.0, metadata={"help": "w: weight of the squared distance to the label's word embedding."}
    )
    logging_steps: int = field(default=50, metadata={"help": "Log the loss and accuracy every this many steps."})
    seed: int = field(default=42, metadata={"help": "Seeds the batches and the vision part's dropout."})

    def __post_init__(self):
        for key in ("max_steps", "per_device_train_batch_size", "logging_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be a positive integer; got {getattr(self, key)}")
        for key in ("learning_rate", "mm_projector_lr", "embedding_loss_weight"):
            if not (math.isfinite(getattr(self, key)) and getattr(self, key) >= 0):
                raise ConfigError(f"{key} must be a finite number >= 0; got {getattr(self, key)}")


def label_token_ids(tokenizer, labels: list[str]) -> list[int]:
    """The first token of `` label`` for each label; ConfigError when two labels share it."""
    ids = [tokenizer(" " + label, add_special_tokens=False)["input_ids"][0] for label in labels]
    shared = [label for label, token in zip(labels, ids) if ids.count(token) > 1]
    if shared:
        raise ConfigError(f"align: the labels {', '.join(shared)} start with the same token, so one word embedding "
                          "cannot tell them apart; set label_set to labels whose first tokens differ.")  # fmt: skip
    return ids


def image_tokens(model, image_inputs):
    """The projector's output for a batch of one-image rows: (images, tokens per image, width)."""
    import torch

    output = model.get_image_features(**image_inputs)
    features = getattr(output, "pooler_output", output)
    return torch.stack(list(features)) if isinstance(features, (list, tuple)) else features


def alignment_loss(tokens, targets, label_embeddings, gold, weight: float):
    """``L`` of the module docstring, averaged over images and tokens.

    tokens: (images, T, D); targets: (images, D), each image's label embedding; label_embeddings:
    (labels, D); gold: (images,) indices into the labels.
    """
    import torch

    cosines = torch.nn.functional.cosine_similarity(tokens[:, :, None], label_embeddings[None, None], dim=-1)
    choice = torch.nn.functional.cross_entropy((SIMILARITY_SCALE * cosines).flatten(0, 1),
                                               gold.repeat_interleave(tokens.shape[1]))  # fmt: skip
    distance = (tokens - targets[:, None]).pow(2).mean() / label_embeddings.pow(2).mean()
    return choice + weight * distance


def nearest_label_accuracy(tokens, label_embeddings, gold) -> float:
    """The share of images whose mean image token is most similar (cosine) to its own label's word."""
    import torch

    cosines = torch.nn.functional.cosine_similarity(tokens.mean(1)[:, None], label_embeddings[None], dim=-1)
    return (cosines.argmax(1) == gold).float().mean().item()


def run(cfg) -> dict:
    """Align the vision part of ``cfg.model`` on the recipe's training images; returns the summary."""
    import torch
    from tqdm.auto import tqdm

    from affect_rl.data.heldout import save_stage_rows
    from affect_rl.data.media import open_image
    from affect_rl.data_stage import load_stage_rows
    from affect_rl.eval_records import gold_label
    from affect_rl.files import publish_folder
    from affect_rl.models import load_causal_lm, load_processing_class, vision_parts
    from affect_rl.stage import FINAL_STAGING, begin_stage, end_stage

    args, output_dir = cfg.training, Path(cfg.training.output_dir)
    begin_stage(cfg)  # lock the folder; refuse one another config wrote
    rows = load_stage_rows(cfg)
    if rows.images is None or any(len(images) != 1 for images in rows.images):
        raise ConfigError(f"align trains the vision part of a vision-language model on rows with one image each; "
                          f"{cfg.data.dataset!r} with {cfg.model.model_name_or_path!r} gives none")  # fmt: skip
    gold_names = [gold_label(row, cfg.data.task) for row in rows.train]
    labels = list(cfg.data.label_set or sorted(set(gold_names)))
    unknown = sorted(set(gold_names) - set(labels))
    if unknown:
        raise ConfigError(f"align: training rows are labelled {', '.join(unknown)}, which label_set lacks")
    gold = torch.tensor([labels.index(name) for name in gold_names])

    torch.manual_seed(args.seed)
    model, _ = load_causal_lm(cfg.model, merge_adapter=True)
    processor = load_processing_class(cfg.model.model_name_or_path)
    embeddings = model.get_input_embeddings().weight.detach()
    label_embeddings = embeddings[label_token_ids(processor.tokenizer, labels)].float()
    parts = vision_parts(model)
    model.requires_grad_(False)
    tower = [p for name in parts["vision_tower"] for p in model.get_submodule(name).parameters()]
    projector = [p for name in parts["projector"] for p in model.get_submodule(name).parameters()]
    for parameter in tower + projector:
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW([{"params": tower, "lr": args.learning_rate},
                                   {"params": projector, "lr": args.mm_projector_lr}])  # fmt: skip

    def inputs(indices):  # opened as generation opens them (affect_rl.data.media.multimodal_prompt)
        images = [open_image(rows.images[i][0]).convert("RGB") for i in indices]
        return processor.image_processor([[image] for image in images], return_tensors="pt")

    model.train()
    sampler, history = random.Random(args.seed), []
    progress = tqdm(range(1, args.max_steps + 1), desc="align", unit="step")
    for step in progress:
        batch = sampler.sample(range(len(rows.train)), min(args.per_device_train_batch_size, len(rows.train)))
        tokens = image_tokens(model, inputs(batch))
        loss = alignment_loss(tokens, label_embeddings[gold[batch]], label_embeddings, gold[batch],
                              args.embedding_loss_weight)  # fmt: skip
        if not torch.isfinite(loss):
            raise ConfigError(f"align: the loss became {loss.item()} at step {step}; lower learning_rate "
                              f"({args.learning_rate}) or mm_projector_lr ({args.mm_projector_lr})")  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({"step": step, "loss": loss.item(),
                        "accuracy": nearest_label_accuracy(tokens.detach(), label_embeddings, gold[batch])})  # fmt: skip
        if step % args.logging_steps == 0:
            recent = history[-args.logging_steps :]
            progress.set_postfix(loss=f"{sum(h['loss'] for h in recent) / len(recent):.3f}",
                                 accuracy=f"{sum(h['accuracy'] for h in recent) / len(recent):.2f}")  # fmt: skip

    model.eval()
    staging = output_dir / FINAL_STAGING
    shutil.rmtree(staging, ignore_errors=True)  # left by a save that was interrupted
    model.save_pretrained(staging)
    processor.save_pretrained(staging)
    publish_folder(staging, output_dir)  # config.json last: the folder is never a half-written model
    save_stage_rows(rows.train, rows.heldout, output_dir)
    window = history[-args.logging_steps :]
    summary = {"steps": args.max_steps, "labels": labels, "training_rows": len(rows.train),
               "final_loss": sum(h["loss"] for h in window) / len(window),
               "final_accuracy": sum(h["accuracy"] for h in window) / len(window),
               "plot": str(plot_alignment(history, args.logging_steps, output_dir / "alignment.png"))}  # fmt: skip
    (output_dir / "summary.json").write_text(json.dumps({**summary, "history": history}, indent=2) + "\n")
    end_stage(cfg)
    print(f"align: {len(rows.train)} training images, {args.max_steps} steps; last {len(window)} steps: loss "
          f"{summary['final_loss']:.3f}, image tokens nearest their own label's word {summary['final_accuracy']:.2f} "
          f"(chance {1 / len(labels):.2f}). Saved the aligned model to {output_dir}")  # fmt: skip
    return summary


def plot_alignment(history: list[dict], window: int, out_png: Path) -> Path:
    """The training loss and nearest-label accuracy per step, with their running means over ``window``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    panels = ((axes[0], "loss", "alignment loss"),
              (axes[1], "accuracy", "image tokens nearest their label's word (training batches)"))
    for axis, key, title in panels:
        values = [h[key] for h in history]
        running = [sum(values[max(0, i - window + 1) : i + 1]) / len(values[max(0, i - window + 1) : i + 1])
                   for i in range(len(values))]  # fmt: skip
        axis.plot(steps, values, alpha=0.3, label="per step")
        axis.plot(steps, running, label=f"mean of {window}")
        axis.set_xlabel("step")
        axis.set_title(title, fontsize=10)
        axis.legend()
    figure.tight_layout()
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
    return out_png
