"""nextai_tiled_mlp_shards: the MLP run shard by shard gives the untiled MLP's output and gradients, LoRA's
included, and with dropout its gradients are those of the forward that ran (a finite-difference check)."""

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaMLP

from axolotl_nextai.levers.tiled_mlp import TiledMlp, tiled_forward

HIDDEN, INTER = 16, 40


class DropoutMLP(torch.nn.Module):
    """A SwiGLU MLP with dropout on the down projection's input, as LoRA dropout has it."""

    def __init__(self):
        super().__init__()
        self.gate_proj = torch.nn.Linear(HIDDEN, INTER, bias=False)
        self.up_proj = torch.nn.Linear(HIDDEN, INTER, bias=False)
        self.down_proj = torch.nn.Linear(INTER, HIDDEN, bias=False)
        self.dropout = torch.nn.Dropout(0.5)

    def forward(self, x):
        return self.down_proj(self.dropout(torch.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x)))


def lora_mlp():
    from peft import LoraConfig, get_peft_model

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = LlamaMLP(
                LlamaConfig(
                    hidden_size=HIDDEN,
                    intermediate_size=INTER,
                    num_attention_heads=2,
                    num_key_value_heads=2,
                    hidden_act="silu",
                )
            )

        def forward(self, x):
            return self.mlp(x)

    torch.manual_seed(0)
    model = get_peft_model(
        Layer(), LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["down_proj"])
    )
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    return model.train()


def run(model, x, grad):
    x = x.detach().requires_grad_(True)
    out = model(x)
    out.backward(grad)
    return out.detach(), x.grad, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("shards", [2, 3, 7])
def test_lora_mlp_same_output_and_gradients_as_untiled(shards):
    x, grad = torch.randn(2, 7, HIDDEN), torch.randn(2, 7, HIDDEN)
    plain = run(lora_mlp(), x, grad)
    model = lora_mlp()
    log = TiledMlp().install({"nextai_tiled_mlp_shards": shards}, model)
    assert log == f"nextai_tiled_mlp_shards: 1 MLPs run in {shards} shards in training"
    tiled = run(model, x, grad)
    torch.testing.assert_close(tiled[0], plain[0])
    torch.testing.assert_close(tiled[1], plain[1])
    assert set(tiled[2]) == set(plain[2]) and len(plain[2]) == 2  # lora_A and lora_B of down_proj
    for name in plain[2]:
        torch.testing.assert_close(tiled[2][name], plain[2][name])


def test_with_dropout_the_gradient_is_that_of_the_forward_that_ran():
    torch.manual_seed(0)
    mlp = DropoutMLP().double().train()
    mlp.forward = tiled_forward(mlp, 3)

    def seeded(x):  # the same masks on every call, so that finite differences see one function
        torch.manual_seed(1234)
        return mlp(x)

    x = torch.randn(1, 6, HIDDEN, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(seeded, (x,), eps=1e-6, atol=1e-5)
    # and the parameters' gradients (they reach autograd as inputs of the tiled function)
    weight = mlp.down_proj.weight
    out = seeded(x)
    (grad_weight,) = torch.autograd.grad(out.sum(), weight)
    delta = torch.zeros_like(weight)
    delta[3, 5] = 1e-6
    with torch.no_grad():
        weight += delta
        plus = seeded(x).sum()
        weight -= 2 * delta
        minus = seeded(x).sum()
        weight += delta
    assert torch.isclose(grad_weight[3, 5], (plus - minus) / 2e-6, atol=1e-5)


def test_a_no_grad_training_forward_draws_the_masks_the_recompute_draws():
    """A checkpointed layer runs its MLP once without autograd and again, from the same RNG state, with it:
    both must give the same output for the gradients to belong to the loss."""
    mlp = DropoutMLP().train()
    mlp.forward = tiled_forward(mlp, 3)
    x = torch.randn(1, 6, HIDDEN, requires_grad=True)
    torch.manual_seed(7)
    with torch.no_grad():
        first = mlp(x)
    torch.manual_seed(7)
    again = mlp(x)
    torch.testing.assert_close(again.detach(), first, rtol=0, atol=0)


def test_eval_and_short_inputs_take_the_plain_forward():
    mlp = DropoutMLP().eval()
    mlp.forward = tiled_forward(mlp, 4)
    x = torch.randn(1, 6, HIDDEN)
    torch.testing.assert_close(
        mlp(x), mlp.down_proj(torch.nn.functional.silu(mlp.gate_proj(x)) * mlp.up_proj(x))
    )
    mlp.train()
    assert mlp(torch.randn(1, 3, HIDDEN)).shape == (1, 3, HIDDEN)  # fewer tokens than shards


@pytest.mark.parametrize(
    "reentrant,shard_calls",
    [(False, [False] * 3 + [True] * 3), (True, [False] * 3 + [False] * 3 + [True] * 3)],
)
def test_inside_a_checkpointed_layer_the_recompute_runs_no_shard(reentrant, shard_calls):
    """The MLP's output only feeds the layer's output, which a non-reentrant checkpoint's recompute throws
    away: the MLP runs once in the forward and once, shard by shard, in its backward. A reentrant checkpoint
    backpropagates through its recompute, which must then run the shards. Either way, the untiled
    gradients."""
    from torch.utils.checkpoint import checkpoint

    def layer(model, x):
        return x + model(torch.nn.functional.layer_norm(x, (HIDDEN,)))

    x, grad = torch.randn(2, 7, HIDDEN), torch.randn(2, 7, HIDDEN)
    plain = lora_mlp()
    x_plain = x.clone().requires_grad_(True)
    checkpoint(layer, plain, x_plain, use_reentrant=reentrant).backward(grad)
    tiled = lora_mlp()
    TiledMlp().install({"nextai_tiled_mlp_shards": 3}, tiled)
    gate = tiled.base_model.model.mlp.gate_proj
    calls = []
    gate.register_forward_hook(lambda module, args, out: calls.append(torch.is_grad_enabled()))
    x_tiled = x.clone().requires_grad_(True)
    checkpoint(layer, tiled, x_tiled, use_reentrant=reentrant).backward(grad)
    # no autograd in the forward's shards (and the reentrant recompute's), then backward's
    assert calls == shard_calls
    torch.testing.assert_close(x_tiled.grad, x_plain.grad)
    for (name, param), reference in zip(tiled.named_parameters(), plain.parameters(), strict=True):
        if param.requires_grad:
            torch.testing.assert_close(param.grad, reference.grad, msg=name)
