"""nextai_saved_matmuls on the tiny Llama loaded in NF4 with LoRA, on the CPU (and on CUDA where there is one:
the GPU machine runs this file before the 70B runs): the same loss and LoRA gradients with the lever on and
off (LoRA dropout on: the recompute replays its masks), a backward that recomputes every 4-bit matmul but the
kept and skipped ones, down_proj skipped rather than kept (a NaN placeholder that nothing reads), outputs of a
forward whose backward never ran dropped rather than handed to the next step, and each config the lever cannot
serve refused in one line naming the key."""

import logging

import pytest
import torch
import yaml
from axolotl_launch import ROOT
from torch.utils._python_dispatch import TorchDispatchMode

from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.levers.saved_matmuls import KEY, PinnedPool, SavedMatmuls
from axolotl_nextai.plugin import NextAIPlugin

LEVER = SavedMatmuls()

KEPT = ["gate_proj", "up_proj"]
# gate_proj kept and adapted: its LoRA matmuls still recomputed
LORA_TARGETS = ["gate_proj", "o_proj", "down_proj"]
# (out, in) of the tiny model's gate_proj and up_proj weights: no other projection has it
GATE_UP = (256, 128)
DOWN = (128, 256)  # (out, in) of its down_proj
MLP = ["gate_proj", "up_proj", "down_proj"]


class DispatchedMatmuls(TorchDispatchMode):
    """The 4-bit matmuls dispatched while active, each by its weight's shape (out, in), and the plain ones
    (LoRA's, the head's) by count."""

    def __init__(self):
        super().__init__()
        self.shapes, self.plain = [], 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.bitsandbytes.gemm_4bit.default:
            self.shapes.append(tuple(args[2]))
        elif func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
            self.plain += 1
        return func(*args, **(kwargs or {}))


def qlora_step(tiny_model, kept, lora_targets=LORA_TARGETS, steps=1, device="cpu", dangling_forward=False):
    """`steps` forwards and backwards of the tiny Llama in NF4 with LoRA (dropout 0.1), the lever on for
    `kept` (`dangling_forward`: first a training forward whose backward never runs): the last step's (loss,
    LoRA gradients, the matmuls its backward ran)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from axolotl_nextai.models.checkpoint import qlora_quantization

    model = AutoModelForCausalLM.from_pretrained(
        tiny_model, quantization_config=qlora_quantization(), device_map=device
    )
    if kept:
        LEVER.install({KEY: kept}, model)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    torch.manual_seed(0)
    model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=16, lora_dropout=0.1, target_modules=lora_targets)
    )
    for name, param in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero, which would hide a wrong gradient for A
            torch.nn.init.normal_(param, std=0.1)
    model.train()
    if dangling_forward:
        model(input_ids=torch.randint(0, model.config.vocab_size, (2, 24), device=device))
    for step in range(steps):
        model.zero_grad()
        torch.manual_seed(1 + step)
        ids = torch.randint(0, model.config.vocab_size, (2, 24), device=device)
        loss = model(input_ids=ids, labels=ids).loss
        with DispatchedMatmuls() as backward:
            loss.backward()
    grads = {name: param.grad for name, param in model.named_parameters() if param.requires_grad}
    return loss.detach(), grads, backward


@pytest.fixture(scope="module")
def runs(tiny_model):
    return {
        "off": qlora_step(tiny_model, None),
        "on": qlora_step(tiny_model, KEPT),
        "mlp": qlora_step(tiny_model, MLP),
    }


def assert_same_training(run, reference, tolerance=None):
    """Bit for bit by default; on CUDA attention's backward accumulates in a varying order."""
    tolerance = tolerance or {"rtol": 0, "atol": 0}
    torch.testing.assert_close(run[0], reference[0], **tolerance)
    assert run[1].keys() == reference[1].keys()
    for name, grad in reference[1].items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(run[1][name], grad, **tolerance, msg=name)


def test_same_loss_and_lora_gradients(runs):
    assert len(runs["off"][1]) == 4 * len(LORA_TARGETS) * 2  # lora_A and lora_B of each target in 4 layers
    assert_same_training(runs["on"], runs["off"])
    assert_same_training(runs["mlp"], runs["off"])  # down_proj's NaN placeholder reached no gradient


def test_kept_matmuls_under_chunked_dequantization(tiny_model):
    """nextai_dequant_chunk_mib's matmul saves nothing through autograd, as bitsandbytes' does: checkpointing
    counts saved tensors, and a replayed output saves none (the two together once raised CheckpointError)."""
    from axolotl_nextai.levers.chunked_dequant import ChunkedDequant

    chunked = ChunkedDequant()
    chunked.install({chunked.key: 0.001})
    try:
        assert_same_training(qlora_step(tiny_model, KEPT), qlora_step(tiny_model, None))
    finally:
        chunked.uninstall()


def test_backward_recomputes_every_4bit_matmul_but_the_kept_ones(runs):
    recomputed, kept = runs["off"][2].shapes, runs["on"][2].shapes
    # 7 projections, 2 of them gate and up
    assert len(recomputed) == 4 * 7 and recomputed.count(GATE_UP) == 4 * 2
    assert GATE_UP not in kept
    assert sorted(kept) == sorted(shape for shape in recomputed if shape != GATE_UP)


def test_lora_matmuls_of_a_kept_projection_are_still_recomputed(runs):
    assert runs["on"][2].plain == runs["off"][2].plain > 0


def test_down_proj_is_skipped_not_kept_and_its_recompute_never_runs(runs, tiny_model, caplog):
    """down_proj's output only feeds the layer's output: the recompute gets a placeholder and nothing is
    copied. With an adapter on down_proj the recompute runs past it (to its LoRA input); without one it stops
    before it."""
    from transformers import AutoModelForCausalLM

    from axolotl_nextai.models.checkpoint import qlora_quantization

    assert DOWN not in runs["mlp"][2].shapes and GATE_UP not in runs["mlp"][2].shapes
    assert sorted(runs["mlp"][2].shapes) == sorted(
        s for s in runs["off"][2].shapes if s not in (GATE_UP, DOWN)
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_model, quantization_config=qlora_quantization())
    assert LEVER.install({KEY: MLP}, model) == (
        f"{KEY}: not recomputed in 4 layers: gate_proj, up_proj kept from the forward "
        "(where they are: not on CUDA); down_proj skipped (its output only feeds the "
        "layer's output)"
    )
    with caplog.at_level(logging.WARNING):
        no_adapter = qlora_step(tiny_model, MLP, lora_targets=["o_proj"], steps=2)
    assert_same_training(no_adapter, qlora_step(tiny_model, None, lora_targets=["o_proj"], steps=2))
    assert "kept outputs" not in caplog.text  # the recompute asked for every kept output


def test_outputs_of_a_forward_whose_backward_never_ran_are_dropped(tiny_model, caplog):
    with caplog.at_level(logging.WARNING):
        run = qlora_step(tiny_model, KEPT, dangling_forward=True)
    assert_same_training(run, qlora_step(tiny_model, None))
    # gate, up x 4 layers
    assert "8 kept outputs were left by a forward whose backward never ran" in caplog.text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the pinned-memory path needs CUDA")
def test_on_cuda_the_outputs_travel_through_pinned_memory_and_train_the_same(tiny_model):
    kept = ["gate_proj", "up_proj", "down_proj"]
    reference = qlora_step(tiny_model, None, steps=3, device="cuda")
    run = qlora_step(tiny_model, kept, steps=3, device="cuda")
    assert_same_training(run, reference, {"rtol": 1e-4, "atol": 1e-6})
    assert GATE_UP not in run[2].shapes and len(run[2].shapes) == len(reference[2].shapes) - 4 * 3


# --- Config checks: one line each, naming the key -----------------------------------------------------------


@pytest.fixture(scope="module")
def fast_recipe():
    cfg = yaml.safe_load((ROOT / "recipes" / "llama2-70b-v5-fast.yml").read_text())
    return {**cfg, KEY: KEPT}


def test_the_fast_recipe_can_keep_gate_and_up(fast_recipe):
    assert LEVER.problems(fast_recipe, Launch(cuda=True)) == []


@pytest.mark.parametrize(
    "overrides,named",
    [
        ({"gradient_checkpointing": False}, "needs gradient_checkpointing: true"),
        ({"gradient_checkpointing": "offload"}, "needs gradient_checkpointing: true (got 'offload')"),
        ({"gradient_checkpointing_kwargs": {"use_reentrant": True}}, "needs non-reentrant checkpointing"),
        ({"activation_offloading": True}, "activation_offloading: hidden_states or false, not True"),
        ({"activation_offloading": "disk"}, "not 'disk'"),
        ({"load_in_4bit": False}, "needs load_in_4bit: true"),
        ({"nextai_tiled_mlp_shards": 4}, "gate_proj, up_proj with nextai_tiled_mlp_shards"),
        ({KEY: ["o_proj"]}, "lora_o_kernel computes o_proj without calling the modules"),
        ({"lora_target_linear": True}, "set lora_mlp_kernel: false"),
        (
            {"lora_target_modules": "all-linear"},
            "lora_mlp_kernel computes gate_proj, up_proj without calling",
        ),
    ],
)
def test_a_config_the_lever_cannot_serve_is_one_line_naming_the_key(fast_recipe, overrides, named):
    problems = LEVER.problems({**fast_recipe, **overrides}, Launch(cuda=True))
    assert len(problems) == 1 and problems[0].startswith(f"`{KEY}`") and named in problems[0], problems


@pytest.mark.parametrize(
    "overrides,cuda_available",
    [
        ({KEY: ["o_proj"], "lora_o_kernel": False}, True),
        ({KEY: ["o_proj"]}, False),  # without CUDA the plugin turns the kernels off
        (
            {KEY: ["q_proj", "k_proj"]},
            True,
        ),  # the QKV kernel needs adapters on all three: q, k, v stay modules
        ({KEY: ["q_proj"], "nextai_tiled_mlp_shards": 4}, True),  # the MLP is tiled, attention is not
        (
            {"nextai_dequant_chunk_mib": 64},
            True,
        ),  # the forward's chunked matmul output is kept like any other
    ],
)
def test_configs_the_lever_serves(fast_recipe, overrides, cuda_available):
    assert LEVER.problems({**fast_recipe, **overrides}, Launch(cuda=cuda_available)) == []


def test_the_plugin_refuses_before_anything_loads():
    from axolotl_nextai.checks.config_checks import ConfigError

    cfg = {
        "plugins": ["axolotl_nextai.NextAIPlugin"],
        KEY: ["down_proj"],
        "load_in_4bit": True,
        "nextai_check_datasets": False,
    }
    with pytest.raises(ConfigError, match=f"`{KEY}` changes what gradient checkpointing recomputes"):
        NextAIPlugin().register(cfg)


class Done:
    """A finished copy's event, as torch.cuda.Event.query() reports it."""

    def query(self):
        return True


def test_pinned_pool_reuses_the_smallest_buffer_that_fits_whatever_its_last_dtype():
    pool = PinnedPool(pin_memory=False)
    big, big_view = pool.take(torch.empty(4, 6, dtype=torch.bfloat16))
    small, small_view = pool.take(torch.empty(3, dtype=torch.float32))
    assert (big_view.shape, big_view.dtype, small_view.shape) == ((4, 6), torch.bfloat16, (3,))
    pool.give_back(big, Done())
    pool.give_back(small, Done())
    reused, view = pool.take(torch.empty(2, 4, dtype=torch.bfloat16))  # 16 bytes: the 48-byte buffer, not 12
    assert reused is big and view.shape == (2, 4) and view.dtype == torch.bfloat16
    assert view.data_ptr() == big.data_ptr()
    fresh, _ = pool.take(torch.empty(100, dtype=torch.uint8))  # nothing free fits: a new one
    assert fresh is not small and fresh.numel() == 100 and pool.free == [small]
