"""What a QLoRA recipe costs before any weight is downloaded: trainable parameters and GPU memory, in closed form.

`architecture` is the handful of `config.json` values of a Llama-family model (hidden_size, intermediate_size,
num_hidden_layers, num_attention_heads, num_key_value_heads, vocab_size). The parameter counts are checked against
peft on a meta-device model (tests/recipes/test_trainable_parameters.py); the memory estimate against the H100 measurements in
shared/notes/gpu-memory.md (Llama-2-70B: 33.87 GiB of weights, 36.25 GiB peak at 1,024 tokens).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

GIB = 2**30
BF16 = 2  # bytes
NF4_BLOCK = 64  # bitsandbytes: one absmax per 64 weights, 8-bit with double quant
DQ_BLOCK = 256  # double quant: one fp32 constant per 256 absmax values


def linear_shapes(arch: Mapping) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of each decoder-layer projection, by peft's module name."""
    hidden, inter = arch["hidden_size"], arch["intermediate_size"]
    head_dim = hidden // arch["num_attention_heads"]
    kv = arch["num_key_value_heads"] * head_dim
    return {
        "q_proj": (hidden, hidden),
        "k_proj": (hidden, kv),
        "v_proj": (hidden, kv),
        "o_proj": (hidden, hidden),
        "gate_proj": (hidden, inter),
        "up_proj": (hidden, inter),
        "down_proj": (inter, hidden),
    }


def lora_trainable(arch: Mapping, r: int, targets: Iterable[str]) -> int:
    """LoRA adds A (r x in) and B (out x r) to each targeted projection of every layer."""
    shapes = linear_shapes(arch)
    return arch["num_hidden_layers"] * sum(r * sum(shapes[name]) for name in targets)


def quantized_parameters(arch: Mapping) -> int:
    """Weights bitsandbytes stores in NF4: every decoder projection (lm_head and embeddings stay bf16)."""
    return arch["num_hidden_layers"] * sum(i * o for i, o in linear_shapes(arch).values())


def bf16_parameters(arch: Mapping) -> int:
    """Embeddings, lm_head unless tied to them, two RMSNorms per layer and the final norm."""
    hidden = arch["hidden_size"]
    matrices = 1 if arch.get("tie_word_embeddings") else 2
    return matrices * arch["vocab_size"] * hidden + (2 * arch["num_hidden_layers"] + 1) * hidden


def total_parameters(arch: Mapping) -> int:
    """The base model's parameter count, as `model.num_parameters()` gives it."""
    return quantized_parameters(arch) + bf16_parameters(arch)


def weight_bytes(arch: Mapping) -> float:
    """NF4 (4 bits) + double-quant constants (8-bit absmax per 64, fp32 per 256 of those) + bf16 rest."""
    q = quantized_parameters(arch)
    return q / 2 + q / NF4_BLOCK * (1 + 4 / DQ_BLOCK) + BF16 * bf16_parameters(arch)


def peak_estimate_bytes(
    arch: Mapping, seq: int, r: int, targets: Iterable[str], eager: bool = False
) -> float:
    """Weights + what micro-batch 1 with gradient checkpointing adds on top (bf16 norms, as Axolotl keeps them).

    Saved layer inputs (one hidden state per layer); one layer's recomputed activations and their gradients
    (q, k, v, attention, o, two norms, residual; gate, up, act, product); the largest weight dequantized to bf16;
    logits in bf16 and fp32; LoRA weights and gradients in fp32 (paged optimizer states live in managed memory,
    outside what torch counts). Eager attention adds one layer's score matrices (bf16 + fp32 softmax), twice.
    """
    hidden, inter, layers = arch["hidden_size"], arch["intermediate_size"], arch["num_hidden_layers"]
    kv = linear_shapes(arch)["k_proj"][1]
    saved = layers * seq * hidden * BF16
    one_layer = 2 * seq * (6 * hidden + 2 * kv + 4 * inter) * BF16
    dequantized = max(i * o for i, o in linear_shapes(arch).values()) * BF16
    logits = seq * arch["vocab_size"] * (BF16 + 4)
    lora = lora_trainable(arch, r, targets) * 8
    scores = 2 * arch["num_attention_heads"] * seq * seq * (BF16 + 4) if eager else 0
    return weight_bytes(arch) + saved + one_layer + dequantized + logits + lora + scores
