"""Can the VLM's vision part learn the faces through its frozen language model?

The shortest path a gradient has from the answer to the image: the built VLM, language model
frozen, vision encoder and connector trained (AdamW, batches of 8 training faces, bf16 autocast),
with one loss, the cross-entropy of the emotion's first answer token among the six emotions' first
tokens, at the position after ``<think>The face shows it.</think>\\n<answer>``. Prints the mean
training loss (chance: ln 6 = 1.79) and the accuracy of that 6-way choice on the 48 validation
faces every 20 steps. Compare ``bench/faces_vision.py``, the same encoder with a head of its own.

    python bench/faces_readout.py [--steps 120] [--lr 1e-3] [--model smolvlm-faces-135m]
"""

from __future__ import annotations

import argparse
import json
import random

import torch
from faces_probe import face_inputs

from affect_rl.data.faces import EMOTIONS, faces_file
from affect_rl.models import DEFAULT_VLM, cache_dir, load_processing_class, resolve_model_path

ANSWER_PREFIX = "<think>The face shows it.</think>\n<answer>"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--model", default=DEFAULT_VLM, help="a VLM checkpoint or alias")
    args = parser.parse_args()
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    sampler = random.Random(0)
    model = AutoModelForImageTextToText.from_pretrained(resolve_model_path(args.model), dtype=torch.float32)
    processor = load_processing_class(args.model, padding_side="left")
    tokenizer = processor.tokenizer
    rows_file = faces_file(cache_dir())
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    train_rows = [row for row in rows if row["split"] == "train"]
    validation_rows = [row for row in rows if row["split"] == "validation"]
    prefix_length = len(tokenizer(ANSWER_PREFIX, add_special_tokens=False)["input_ids"])
    candidates = torch.tensor([tokenizer(ANSWER_PREFIX + emotion, add_special_tokens=False)["input_ids"][prefix_length]
                               for emotion in EMOTIONS])  # fmt: skip
    assert len(set(candidates.tolist())) == len(EMOTIONS), "two emotions share a first token"

    def scores(batch_rows):
        inputs = face_inputs(processor, batch_rows, rows_file.parent, ANSWER_PREFIX)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(**inputs).logits
        return logits[:, -1].float()[:, candidates]

    def labels(batch_rows):
        return torch.tensor([EMOTIONS.index(row["emotion"]) for row in batch_rows])

    for name, parameter in model.named_parameters():
        parameter.requires_grad_("vision_model" in name or "connector" in name)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    losses = []
    print(f"language model frozen; loss at the answer token (chance {torch.log(torch.tensor(6.0)):.2f}):")
    for step in range(1, args.steps + 1):
        batch_rows = sampler.sample(train_rows, 8)
        loss = torch.nn.functional.cross_entropy(scores(batch_rows), labels(batch_rows))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 20 == 0:
            with torch.no_grad():
                right = sum((scores(validation_rows[i : i + 24]).argmax(1) == labels(validation_rows[i : i + 24])).sum()
                            .item() for i in range(0, len(validation_rows), 24))  # fmt: skip
            print(f"step {step}: training loss {sum(losses[-20:]) / 20:.3f}, "
                  f"validation accuracy {right / len(validation_rows):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
