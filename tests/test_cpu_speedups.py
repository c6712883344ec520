import torch
import trl.trainer.utils as trl_utils
from transformers import AutoModelForCausalLM

from affect_rl.cpu_speedups import score_labelled_positions_only


def fused_pass(model_dir):
    """Log-probs, entropies and parameter gradients of one fused-LM-head pass on a padded batch
    whose first 6 positions are prompt (label -100), and the labels."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    input_ids = torch.randint(10, 1000, (3, 14))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, :2] = 0  # left padding
    attention_mask[2, -3:] = 0  # right padding
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    labels[:, :6] = -100
    output = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True)
    (output.log_probs.sum() + output.entropy.sum()).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return output.log_probs.detach(), output.entropy.detach(), grads, labels


def count_projected_rows(monkeypatch):
    """Record the number of positions handed to TRL's chunked log-prob function."""
    rows = []
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counting_apply(hidden, *args):
        rows.append(hidden.shape[0])
        return apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting_apply)
    return rows


def trl_as_shipped(monkeypatch):
    """Put TRL's own decision back (an earlier stage may have changed it), undone after the test."""
    shipped = getattr(trl_utils._use_triton, "as_shipped", trl_utils._use_triton)
    monkeypatch.setattr(trl_utils, "_use_triton", shipped)
    return shipped


def test_cpu_patch_scores_only_labelled_positions_with_identical_results(tiny_model_dir, monkeypatch):
    trl_as_shipped(monkeypatch)
    rows = count_projected_rows(monkeypatch)

    log_probs, entropy, grads, labels = fused_pass(tiny_model_dir)
    assert score_labelled_positions_only() is True
    compact_log_probs, compact_entropy, compact_grads, _ = fused_pass(tiny_model_dir)

    labelled = int((labels[:, 1:] != -100).sum())
    assert rows == [3 * 13, labelled]  # every shifted position before, the labelled ones after
    torch.testing.assert_close(compact_log_probs, log_probs)
    torch.testing.assert_close(compact_entropy, entropy)
    assert (compact_log_probs[labels[:, 1:] == -100] == 0).all()
    for name, grad in grads.items():
        torch.testing.assert_close(compact_grads[name], grad, msg=name)


def test_cpu_patch_is_applied_once_and_leaves_other_devices_to_trl(monkeypatch):
    original = trl_as_shipped(monkeypatch)
    assert score_labelled_positions_only() is True
    patched = trl_utils._use_triton
    assert patched is not original and patched.as_shipped is original
    assert patched(torch.device("cpu")) is True
    assert patched(torch.device("meta")) == original(torch.device("meta"))
    # A second call does not wrap the wrapper.
    assert score_labelled_positions_only() is True
    assert trl_utils._use_triton is patched


def test_without_the_hook_trl_runs_as_shipped(monkeypatch):
    monkeypatch.delattr(trl_utils, "_use_triton")
    assert score_labelled_positions_only() is False
    assert not hasattr(trl_utils, "_use_triton")
