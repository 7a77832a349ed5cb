"""nextai_mlp_chunks: the MLP run a chunk of intermediate features at a time gives the unchunked MLP's loss
and gradients on the tiny Llama in NF4 with LoRA on down_proj (checkpointed, so the recompute computes nothing
there, and no 4-bit matmul of the MLP runs: its weights are dequantized a chunk at a time), with dropout its
gradients are those of the forward that ran (a finite-difference check), and configs it cannot serve are
refused in one line."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from axolotl_nextai.levers.chunked_mlp import KEY, ChunkedMlp, chunk_bounds, chunked_mlp_problems


class FourBitMatmuls(TorchDispatchMode):
    """The 4-bit matmuls dispatched while active, by their weight's shape."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.bitsandbytes.gemm_4bit.default:
            self.shapes.append(tuple(args[2]))
        return func(*args, **(kwargs or {}))


def qlora_step(tiny_model, chunks):
    """One forward and backward of the tiny Llama in NF4 (fp32 compute) with LoRA on o_proj and down_proj,
    checkpointed: (loss, LoRA gradients, the 4-bit matmuls of forward and backward)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_model, quantization_config=quantization)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    torch.manual_seed(0)
    model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=16, lora_dropout=0.0, target_modules=["o_proj", "down_proj"])
    )
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    if chunks:
        assert (
            ChunkedMlp().install({KEY: chunks}, model)
            == f"{KEY}: 4 MLPs run in {chunks} chunks of intermediate "
            "features in training"
        )
    model.train()
    torch.manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (2, 24))
    with FourBitMatmuls() as matmuls:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}, matmuls.shapes


@pytest.mark.parametrize("chunks", [2, 3])
def test_same_loss_and_lora_gradients_and_no_4bit_matmul_of_the_mlp(tiny_model, chunks):
    plain, chunked = qlora_step(tiny_model, None), qlora_step(tiny_model, chunks)
    torch.testing.assert_close(chunked[0], plain[0], rtol=1e-5, atol=1e-6)
    assert chunked[1].keys() == plain[1].keys() and len(plain[1]) == 4 * 2 * 2
    for name, grad in plain[1].items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(chunked[1][name], grad, rtol=1e-4, atol=1e-6, msg=name)
    mlp_shapes = {(256, 128), (128, 256)}  # gate/up and down of the tiny model
    assert mlp_shapes <= set(plain[2]) and not mlp_shapes & set(chunked[2])


def test_with_dropout_the_gradient_is_that_of_the_forward_that_ran():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = LlamaMLP(
                LlamaConfig(
                    hidden_size=8,
                    intermediate_size=12,
                    num_attention_heads=2,
                    num_key_value_heads=2,
                    hidden_act="silu",
                )
            )

        def forward(self, x):
            return self.mlp(x)

    torch.manual_seed(0)
    model = (
        get_peft_model(
            Layer(),
            LoraConfig(
                r=2, lora_alpha=4, lora_dropout=0.5, target_modules=["down_proj"], init_lora_weights=False
            ),
        )
        .double()
        .train()
    )
    ChunkedMlp().install({KEY: 3}, model)

    def seeded(x, *lora):  # the same masks on every call, so that finite differences see one function
        torch.manual_seed(1234)
        return model(x)

    x = torch.randn(1, 5, 8, dtype=torch.double, requires_grad=True)
    lora = [p for p in model.parameters() if p.requires_grad]
    assert len(lora) == 2 and torch.autograd.gradcheck(seeded, (x, *lora), eps=1e-6, atol=1e-5)


def test_chunk_bounds_are_whole_blocks():
    assert chunk_bounds(28672, 8, 64) == [(i * 3584, (i + 1) * 3584) for i in range(8)]
    assert chunk_bounds(256, 3, 64) == [(0, 64), (64, 192), (192, 256)]
    assert chunk_bounds(12, 3, 1) == [(0, 4), (4, 8), (8, 12)]


@pytest.mark.parametrize(
    "overrides,named",
    [
        ({"lora_target_modules": ["o_proj", "gate_proj"]}, "adapts gate_proj"),
        ({"lora_target_linear": True}, "adapts every linear layer"),
        ({"nextai_tiled_mlp_shards": 8}, "both cut the MLP"),
        ({"nextai_saved_matmuls": ["up_proj", "q_proj"]}, "computes up_proj itself"),
    ],
)
def test_a_config_it_cannot_serve_is_refused_in_one_line(overrides, named):
    cfg = {KEY: 8, "lora_target_modules": ["o_proj", "down_proj"], **overrides}
    problems = chunked_mlp_problems(cfg)
    assert len(problems) == 1 and problems[0].startswith(f"`{KEY}`") and named in problems[0], problems
    assert chunked_mlp_problems({KEY: 8, "lora_target_modules": ["o_proj", "down_proj"]}) == []
