"""How fast a from-scratch vision encoder learns demo:faces, without the language model.

The built-in VLM's vision encoder starts untrained, and the faces demo has a few minutes of CPU to
train it. This measures the easiest case: the same Idefics3 vision encoder (96 px, 8 px patches,
pixel shuffle by 3) with a small classification head of its own, trained with cross-entropy on
the emotion of the 480 training faces, batches of 8, AdamW; held-out accuracy on the validation
and test identities (120 faces) every 60 steps. It chose the encoder's depth (one layer) and
bounds what SFT through the language model can reach in the same number of steps. ``--aus``
adds each face's AUs to the head's targets; ``--save DIR`` writes the built VLM with the trained
one-layer encoder, for SFT runs that start from an encoder that already sees.

    python bench/faces_vision.py [--layers 1 2 3] [--steps 300] [--lr 1e-3] [--aus] [--save DIR]
"""

from __future__ import annotations

import argparse
import json

import torch
from PIL import Image
from transformers import AutoProcessor
from transformers.models.idefics3.configuration_idefics3 import Idefics3VisionConfig
from transformers.models.idefics3.modeling_idefics3 import Idefics3VisionTransformer

from affect_rl.data.faces import DRAWN_AUS, EMOTIONS, faces_file
from affect_rl.models import DEFAULT_VLM, BUILT_VLMS, cache_dir, resolve_model_path


def pixels(rows, folder, processor) -> torch.Tensor:
    images = [Image.open(folder / row["image"]).convert("RGB") for row in rows]
    return torch.cat([processor.image_processor([[image] for image in images[i : i + 64]], return_tensors="pt")
                      ["pixel_values"][:, 0] for i in range(0, len(images), 64)])  # fmt: skip


def train(layers: int, steps: int, lr: float, data, train_aus=None):
    """Held-out accuracy every 60 steps of an encoder with ``layers`` layers and its own head, and
    the trained encoder. With ``train_aus`` (faces x DRAWN_AUS, 0/1) the head also predicts each
    face's AUs (binary cross-entropy, added to the emotion's cross-entropy)."""
    train_pixels, train_labels, test_pixels, test_labels = data
    outputs = len(EMOTIONS) + (0 if train_aus is None else train_aus.shape[1])
    spec = BUILT_VLMS[DEFAULT_VLM].vision
    torch.manual_seed(0)
    encoder = Idefics3VisionTransformer(Idefics3VisionConfig(
        image_size=spec.image_size, patch_size=spec.patch_size, hidden_size=spec.hidden_size,
        intermediate_size=2 * spec.hidden_size, num_hidden_layers=layers, num_attention_heads=spec.num_heads))  # fmt: skip
    grid, scale = spec.image_size // spec.patch_size, spec.scale_factor
    tokens = (grid // scale) ** 2
    head = torch.nn.Sequential(torch.nn.Linear(spec.hidden_size * scale**2, 64), torch.nn.Flatten(),
                               torch.nn.Linear(64 * tokens, outputs))  # fmt: skip
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=lr)

    def logits(batch):
        mask = torch.ones(len(batch), grid, grid, dtype=torch.bool)
        hidden = encoder(pixel_values=batch, patch_attention_mask=mask).last_hidden_state
        size, _, width = hidden.shape  # the connector's pixel shuffle, as Idefics3Connector.pixel_shuffle
        hidden = hidden.view(size, grid, grid // scale, width * scale).permute(0, 2, 1, 3)
        hidden = hidden.reshape(size, grid // scale, grid // scale, width * scale**2).permute(0, 2, 1, 3)
        return head(hidden.reshape(size, tokens, width * scale**2))

    generator, accuracies = torch.Generator().manual_seed(0), []
    for step in range(1, steps + 1):
        batch = torch.randint(0, len(train_pixels), (8,), generator=generator)
        predicted = logits(train_pixels[batch])
        loss = torch.nn.functional.cross_entropy(predicted[:, : len(EMOTIONS)], train_labels[batch])
        if train_aus is not None:
            loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(predicted[:, len(EMOTIONS) :],
                                                                               train_aus[batch])  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 60 == 0:
            with torch.no_grad():
                emotion = logits(test_pixels)[:, : len(EMOTIONS)].argmax(1)
                accuracies.append((emotion == test_labels).float().mean().item())
    return accuracies, encoder


def save_with_encoder(encoder, target: str) -> None:
    """A copy of the built VLM whose vision encoder is ``encoder`` (the rest as built), with its processor."""
    from transformers import AutoModelForImageTextToText

    source = resolve_model_path(DEFAULT_VLM)
    model = AutoModelForImageTextToText.from_pretrained(source)
    model.model.vision_model.load_state_dict(encoder.state_dict())
    model.save_pretrained(target)
    AutoProcessor.from_pretrained(source).save_pretrained(target)
    print(f"saved {DEFAULT_VLM} with this encoder to {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--aus", action="store_true", help="the head also predicts each face's AUs")
    parser.add_argument("--save", metavar="DIR", help=f"save {DEFAULT_VLM} with the encoder trained at the built "
                        "depth to DIR (for SFT experiments that start from a vision encoder that already sees)")
    args = parser.parse_args()
    built_depth = BUILT_VLMS[DEFAULT_VLM].vision.num_layers
    if args.save and built_depth not in args.layers:
        parser.error(f"--save needs the built depth among --layers: add {built_depth}")
    rows_file = faces_file(cache_dir())
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    processor = AutoProcessor.from_pretrained(resolve_model_path(DEFAULT_VLM))
    train_rows = [row for row in rows if row["split"] == "train"]
    test_rows = [row for row in rows if row["split"] != "train"]
    data = (pixels(train_rows, rows_file.parent, processor), torch.tensor([EMOTIONS.index(r["emotion"]) for r in train_rows]),
            pixels(test_rows, rows_file.parent, processor), torch.tensor([EMOTIONS.index(r["emotion"]) for r in test_rows]))  # fmt: skip
    print(f"held-out accuracy ({len(test_rows)} faces, chance {1 / len(EMOTIONS):.2f}) every 60 steps of 8 faces:")
    train_aus = torch.tensor([[float(au in row["aus"]) for au in DRAWN_AUS] for row in train_rows]) if args.aus else None
    for layers in args.layers:
        accuracies, encoder = train(layers, args.steps, args.lr, data, train_aus)
        print(f"{layers} layer(s): " + " ".join(f"{accuracy:.2f}" for accuracy in accuracies))
        if args.save and layers == built_depth:
            save_with_encoder(encoder, args.save)


if __name__ == "__main__":
    main()
