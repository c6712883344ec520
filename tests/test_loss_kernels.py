import pytest
import torch
from tiny_recipes import FIXED_COMPLETIONS, tiny_grpo_trainer
from trl.kernels import ChunkedLogProbFunction

from affect_rl import loss_kernels
from affect_rl.loss_kernels import VocabLogProbs

OUTPUTS = ("entropy", "log_sum_sq_probs", "mean_logits", "is_top1")


def head_problem(dtype=torch.float32):
    """Hidden states, an LM head and targets, a third of them the argmax (is_top1 true)."""
    torch.manual_seed(0)
    hidden = torch.randn(30, 16, dtype=dtype, requires_grad=True)
    weight = torch.randn(50, 16, dtype=dtype).requires_grad_()
    targets = torch.randint(0, 50, (30,))
    targets[::3] = (hidden @ weight.t()).argmax(-1)[::3]
    return hidden, weight, targets


def outputs_and_grads(function, hidden, weight, targets, autocast=False):
    """All outputs, and the gradients of hidden and weight for sum(a * log p) + sum(b * entropy)."""
    hidden.grad = weight.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        results = function(hidden, weight, targets)
    coefficients = torch.linspace(-1, 1, len(targets))
    (results[0] * coefficients).sum().add((results[1] * coefficients.flip(0)).sum()).backward()
    return [result.detach() for result in results], hidden.grad.clone(), weight.grad.clone()


def trls(hidden, weight, targets):
    return ChunkedLogProbFunction.apply(hidden, weight, None, targets, 0.7, 16, None, 1.5, OUTPUTS)


def ours(hidden, weight, targets):
    return VocabLogProbs.apply(hidden, weight, targets, 1.5 / 0.7, OUTPUTS)


@pytest.mark.parametrize("keep", [True, False], ids=["kept", "recomputed"])
def test_vocab_log_probs_and_gradients_equal_trls_in_fp32(keep, monkeypatch):
    monkeypatch.setattr(loss_kernels, "BLOCK_ELEMENTS", 50 * 7)  # blocks of 7 tokens: 5 blocks, the last short
    if not keep:
        monkeypatch.setattr(loss_kernels, "KEEP_BYTES", 0)
    problem = head_problem()
    (expected, hidden_grad, weight_grad), (found, our_hidden_grad, our_weight_grad) = (
        outputs_and_grads(function, *problem) for function in (trls, ours))
    for name, value, reference in zip(("log_probs", *OUTPUTS), found, expected):
        if name == "is_top1":
            assert torch.equal(value, reference) and 0 < value.sum() < len(value)
        else:
            torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-5, msg=name)
    for grad, reference in ((our_hidden_grad, hidden_grad), (our_weight_grad, weight_grad)):
        torch.testing.assert_close(grad, reference, rtol=1e-5, atol=1e-5 * reference.abs().max().item())
    assert hidden_grad.abs().max() > 1e-2 and weight_grad.abs().max() > 1e-2


def test_vocab_log_probs_under_bf16_autocast_stay_within_bf16_rounding_of_trls():
    problem = head_problem()
    (expected, hidden_grad, weight_grad), (found, our_hidden_grad, our_weight_grad) = (
        outputs_and_grads(function, *problem, autocast=True) for function in (trls, ours))
    # Both run the GEMM in bf16 with fp32 logits: the same log-probabilities; the gradient GEMMs round to bf16 here.
    torch.testing.assert_close(found[0], expected[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(found[1], expected[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(our_hidden_grad, hidden_grad, rtol=2e-2, atol=2e-2 * hidden_grad.abs().max().item())
    torch.testing.assert_close(our_weight_grad, weight_grad, rtol=2e-2, atol=2e-2 * weight_grad.abs().max().item())


def test_a_bias_or_a_softcap_goes_to_trls_function(monkeypatch):
    calls = []
    monkeypatch.setattr(loss_kernels.VocabLogProbs, "apply", lambda *args: calls.append("ours"))
    shipped = type("Shipped", (), {"apply": staticmethod(lambda *args: calls.append("trl"))})
    dispatch = loss_kernels._VocabLogProbsOnCpu(shipped)
    hidden, weight, targets = head_problem()
    dispatch.apply(hidden, weight, None, targets, 1.0, 16, None, 1.0, OUTPUTS)
    dispatch.apply(hidden, weight, torch.zeros(50), targets, 1.0, 16, None, 1.0, OUTPUTS)
    dispatch.apply(hidden, weight, None, targets, 1.0, 16, 30.0, 1.0, OUTPUTS)
    assert calls == ["ours", "trl", "trl"]


def test_grpo_loss_and_gradients_match_trls_with_the_cpu_loss_kernels(tiny_model_dir, emotion_file, tmp_path):
    """Eager attention and VocabLogProbs (prompts shared, as shipped) against SDPA and TRL's chunked function."""
    kernels = tiny_grpo_trainer(tiny_model_dir, emotion_file, tmp_path / "a", **FIXED_COMPLETIONS)
    shipped = tiny_grpo_trainer(tiny_model_dir, emotion_file, tmp_path / "b", cpu_loss_kernels=False,
                                **FIXED_COMPLETIONS)
    batch = [kernels.train_dataset[index] for index in (0, 1) for _ in range(4)]
    completions = [[11 + row] * (2 + row % 5) + [2] * (row % 2) for row in range(8)]  # ragged, some end at EOS
    attention_seen, calls = [], []
    kernels.model.model.layers[0].self_attn.register_forward_pre_hook(
        lambda module, args: attention_seen.append(module.config._attn_implementation))
    apply = VocabLogProbs.apply
    losses = []
    for trainer in (kernels, shipped):
        trainer._generate_single_turn = lambda *args, **kwargs: (completions, None)
        inputs = trainer._generate_and_score_completions([dict(row) for row in batch])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(VocabLogProbs, "apply", lambda *args: calls.append(trainer is kernels) or apply(*args))
            loss = trainer.compute_loss(trainer.model, inputs)
        loss.backward()
        losses.append(loss.detach())
    assert calls == [True] and "eager" in attention_seen
    assert kernels.model.config._attn_implementation == "sdpa"  # restored after the loss's forward
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    shipped_params = dict(shipped.model.named_parameters())
    assert kernels.model.lm_head.weight.grad.abs().sum() > 0
    for name, param in kernels.model.named_parameters():
        grad = shipped_params[name].grad
        torch.testing.assert_close(param.grad, grad, rtol=1e-5, atol=1e-5 * grad.abs().max().item(), msg=name)


def test_a_recipes_attention_choice_is_kept(tiny_model_dir, emotion_file, tmp_path):
    trainer = tiny_grpo_trainer(tiny_model_dir, emotion_file, tmp_path, attn_implementation="sdpa")
    seen = []
    trainer.model.model.layers[0].self_attn.register_forward_pre_hook(
        lambda module, args: seen.append(module.config._attn_implementation))
    ids = torch.tensor([[5, 6, 7, 8]])
    trainer.model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids, fused_lm_head=True)
    assert seen == ["sdpa"] and getattr(trainer.model.forward, "shares_prompts", False)
