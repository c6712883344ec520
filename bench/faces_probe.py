"""Where a VLM loses what its images show: linear probes of the emotion on its hidden states.

For a checkpoint (a VLM, or a LoRA adapter on one), each demo:faces face is run through the
prompt the faces recipe uses, and a logistic-regression probe is fitted on the training faces to
read the emotion from two places at several layers: the mean of the image tokens, and the last
prompt position (where the first answer token is predicted). Its accuracy on the validation and
test faces (120, identities the probe never saw; chance 0.17) says how much of the image reaches
the point where the model must decide. A model that writes the same answer for every face while
a probe there reads the emotion well has the information and does not use it; a probe at chance
means the information never got there.

    python bench/faces_probe.py --model smolvlm-faces-135m [--model runs/faces/sft ...] [--train 240]
"""

from __future__ import annotations

import argparse
import json

import torch

from affect_rl.data.faces import EMOTIONS, faces_file
from affect_rl.data.media import multimodal_prompt
from affect_rl.data.rendering import render_prompt
from affect_rl.generation import prompt_images
from affect_rl.models import cache_dir, load_causal_lm, load_processing_class


def face_inputs(processor, rows, folder, answer_prefix: str = ""):
    """Processor inputs for demo:faces ``rows`` (images under ``folder``), in the faces recipe's
    prompt (facial task, r1 template), each followed by ``answer_prefix``; left-padded."""
    prompts = [multimodal_prompt(render_prompt(row, "facial", "r1"), [str(folder / row["image"])]) for row in rows]
    texts = [processor.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False) + answer_prefix
             for prompt in prompts]  # fmt: skip
    return processor(text=texts, images=[prompt_images(prompt) for prompt in prompts], return_tensors="pt",
                     padding=True, add_special_tokens=False)  # fmt: skip


@torch.inference_mode()
def hidden_states(model, processor, rows, folder, layers) -> dict[tuple[str, int], torch.Tensor]:
    """Per (place, layer): one row of features per face, in fp32, 32 faces per forward."""
    features = {}
    for start in range(0, len(rows), 32):
        inputs = face_inputs(processor, rows[start : start + 32], folder)
        output = model(**inputs, output_hidden_states=True)
        image_positions = (inputs["input_ids"] == model.config.image_token_id).unsqueeze(-1)
        for layer in layers:
            hidden = output.hidden_states[layer].float()
            pooled = (hidden * image_positions).sum(1) / image_positions.sum(1)
            features.setdefault(("image tokens", layer), []).append(pooled)
            features.setdefault(("last prompt position", layer), []).append(hidden[:, -1])
    return {key: torch.cat(parts) for key, parts in features.items()}


def probe_accuracy(train_x, train_y, test_x, test_y) -> float:
    """Held-out accuracy of an L2-regularised multinomial logistic regression (LBFGS, standardised inputs)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    weights = torch.zeros(train_x.shape[1], len(EMOTIONS), requires_grad=True)
    bias = torch.zeros(len(EMOTIONS), requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], max_iter=200)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(train_x @ weights + bias, train_y) + 1e-2 * weights.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return ((test_x @ weights + bias).argmax(1) == test_y).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="a VLM, alias or adapter folder (repeat)")
    parser.add_argument("--train", type=int, default=240, help="training faces the probe is fitted on")
    args = parser.parse_args()
    from trl import ModelConfig

    rows_file = faces_file(cache_dir())
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    train_rows = [row for row in rows if row["split"] == "train"][: args.train]
    test_rows = [row for row in rows if row["split"] != "train"]
    train_y = torch.tensor([EMOTIONS.index(row["emotion"]) for row in train_rows])
    test_y = torch.tensor([EMOTIONS.index(row["emotion"]) for row in test_rows])
    for name in args.model:
        model, _ = load_causal_lm(ModelConfig(model_name_or_path=name, dtype="float32"))
        model.eval()
        processor = load_processing_class(name, padding_side="left")
        depth = model.config.get_text_config().num_hidden_layers
        layers = sorted({0, 1, depth // 8, depth // 3, 2 * depth // 3, depth})
        train_x = hidden_states(model, processor, train_rows, rows_file.parent, layers)
        test_x = hidden_states(model, processor, test_rows, rows_file.parent, layers)
        print(f"{name}: held-out probe accuracy ({len(test_rows)} faces, chance {1 / len(EMOTIONS):.2f})")
        for place in ("image tokens", "last prompt position"):
            cells = [f"layer {layer} {probe_accuracy(train_x[place, layer], train_y, test_x[place, layer], test_y):.2f}"
                     for layer in layers]  # fmt: skip
            print(f"  {place:>20}: " + "  ".join(cells))


if __name__ == "__main__":
    main()
