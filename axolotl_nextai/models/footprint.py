"""What a QLoRA recipe costs before any weight is downloaded: trainable parameters and GPU memory, in closed
form.

Every function takes the model's `Architecture` (models/architectures.py: its config.json values, typed). The
parameter counts are checked against peft on a meta-device model (tests/recipes/test_trainable_parameters.py);
the memory estimate (`peak_parts`, the memory levers included) against the peaks measured on H100 and H200
cards (tests/axolotl_nextai/checks/test_memory_budget.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from axolotl_nextai.models.architectures import Architecture

GIB = 2**30
GB = 1e9  # what card makers and nextai_gpu_memory_cap_gb call a GB
BF16 = 2  # bytes
NF4_BLOCK = 64  # bitsandbytes: one absmax per 64 weights, 8-bit with double quant
DQ_BLOCK = 256  # double quant: one fp32 constant per 256 absmax values
PAGED_MIN_ELEMENTS = 100_000  # bitsandbytes pages an optimizer state only for tensors this large
EIGHT_BIT_MIN_ELEMENTS = 4096  # bitsandbytes' min_8bit_size: smaller tensors get 32-bit states
OFFLOAD_IN_FLIGHT = 2  # Axolotl's hidden-states offload keeps this many layer inputs on the GPU while copying
OTHER_BYTES = 0.1 * GIB  # fitted: what the H100 token ladder leaves at zero tokens beyond the parts above
MLP_PROJECTIONS = ("gate_proj", "up_proj", "down_proj")
# A Llama decoder layer's projections whose output goes only into adds up to the layer's output (down_proj's
# is added to its adapter's and to the residual stream): a checkpoint's recompute needs no value of them.
LAYER_OUTPUT_PROJECTIONS = ("down_proj",)


def linear_shapes(arch: Architecture) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of each decoder-layer projection, by peft's module name."""
    hidden, inter = arch.hidden_size, arch.intermediate_size
    kv = arch.num_key_value_heads * arch.head_dim
    return {
        "q_proj": (hidden, hidden),
        "k_proj": (hidden, kv),
        "v_proj": (hidden, kv),
        "o_proj": (hidden, hidden),
        "gate_proj": (hidden, inter),
        "up_proj": (hidden, inter),
        "down_proj": (inter, hidden),
    }


def lora_trainable(arch: Architecture, r: int, targets: Iterable[str]) -> int:
    """LoRA adds A (r x in) and B (out x r) to each targeted projection of every layer."""
    shapes = linear_shapes(arch)
    return arch.num_hidden_layers * sum(r * sum(shapes[name]) for name in targets)


def quantized_parameters(arch: Architecture) -> int:
    """Weights bitsandbytes stores in NF4: every decoder projection (lm_head and embeddings stay bf16)."""
    return arch.num_hidden_layers * sum(i * o for i, o in linear_shapes(arch).values())


def bf16_parameters(arch: Architecture) -> int:
    """Embeddings, lm_head unless tied to them, two RMSNorms per layer and the final norm."""
    hidden = arch.hidden_size
    matrices = 1 if arch.tie_word_embeddings else 2
    return matrices * arch.vocab_size * hidden + (2 * arch.num_hidden_layers + 1) * hidden


def total_parameters(arch: Architecture) -> int:
    """The base model's parameter count, as `model.num_parameters()` gives it."""
    return quantized_parameters(arch) + bf16_parameters(arch)


def weight_bytes(arch: Architecture) -> float:
    """NF4 (4 bits) + double-quant constants (8-bit absmax per 64, fp32 per 256 of those) + bf16 rest."""
    q = quantized_parameters(arch)
    return q / 2 + q / NF4_BLOCK * (1 + 4 / DQ_BLOCK) + BF16 * bf16_parameters(arch)


def embedding_bytes(arch: Architecture) -> int:
    """The input embeddings in bf16 (what `nextai_embeddings_on_cpu` keeps off the GPU)."""
    return BF16 * arch.vocab_size * arch.hidden_size


def eager_attention_bytes(arch: Architecture, tokens: int) -> int:
    """What eager attention keeps for backward in one layer: every head's tokens x tokens probabilities, as
    the fp32 softmax output (4 bytes) and its bf16 copy (2 bytes). SDPA and FlashAttention keep none of it."""
    return arch.num_attention_heads * tokens * tokens * (4 + BF16)


def lora_matrix_sizes(arch: Architecture, r: int, targets: Iterable[str]) -> list[int]:
    """Elements of each LoRA matrix of one layer: A (r x in) and B (out x r) per target."""
    shapes = linear_shapes(arch)
    return [size for name in targets for size in (r * shapes[name][0], shapes[name][1] * r)]


def optimizer_state_bytes(
    arch: Architecture, r: int, targets: Iterable[str], optimizer: str
) -> tuple[int, int]:
    """(in PyTorch's allocator, in CUDA managed memory) bytes of AdamW's two states for the LoRA matrices.

    bitsandbytes' paged optimizers put a state in managed memory only for tensors of at least 1e5 elements
    (the rest are ordinary CUDA tensors); managed memory is outside PyTorch's counters and the memory cap, and
    the driver may page it to the CPU. 8-bit states are 1 byte per element each (tensors under 4,096 elements:
    32-bit).
    """
    paged, eight_bit = "paged" in optimizer, "8bit" in optimizer
    in_torch = managed = 0
    for size in lora_matrix_sizes(arch, r, targets):
        state = size * (2 if eight_bit and size >= EIGHT_BIT_MIN_ELEMENTS else 8)
        if paged and size >= PAGED_MIN_ELEMENTS:
            managed += state
        else:
            in_torch += state
    return arch.num_hidden_layers * in_torch, arch.num_hidden_layers * managed


def activation_bytes_per_token(arch: Architecture, targets: Iterable[str], cfg: Mapping) -> float:
    """One decoder layer's recomputed activations and their gradients while its backward runs, per token.

    Attention: q, attention output, o_proj input and output, k and v (bf16). Norms: HF's RMSNorm keeps an fp32
    copy of its input, Liger's only bf16. MLP: gate, SiLU(gate) and up plus one gradient of that size (Liger's
    SwiGLU recomputes SiLU: one fewer). LoRA dropout: a bf16 copy and a bool mask of each target's input. With
    `nextai_tiled_mlp_shards` the MLP's part is one shard's, plus the MLP input kept for the recompute; with
    `nextai_mlp_chunks` one chunk's, plus the input and an fp32 sum over chunks.
    Fitted on two measurements: stock HF + PEFT on an H100, 1.70 MiB a token with the saved layer inputs
    (256-4,096 tokens); Axolotl on an H200, 36.27 GiB at r 8 and ~4,000 tokens with Liger and offload.
    """
    hidden, inter, shapes = arch.hidden_size, arch.intermediate_size, linear_shapes(arch)
    attention = BF16 * (4 * hidden + 2 * shapes["k_proj"][1])
    norms = 2 * hidden * (BF16 if cfg.get("liger_rms_norm") else 4)
    mlp = BF16 * inter * (3 if cfg.get("liger_glu_activation") else 4)
    dropout = {name: 3 * shapes[name][0] for name in targets}  # bf16 copy + bool mask of the input
    mlp += sum(dropout.get(name, 0) for name in MLP_PROJECTIONS)
    attention += sum(size for name, size in dropout.items() if name not in MLP_PROJECTIONS)
    shards = cfg.get("nextai_tiled_mlp_shards") or 1
    if shards > 1:
        mlp = mlp / shards + BF16 * hidden
    chunks = cfg.get("nextai_mlp_chunks") or 1
    if chunks > 1:  # one chunk's activations, the input kept, the output (or input gradient) added up in fp32
        mlp = mlp / chunks + BF16 * hidden + 4 * hidden
    return attention + norms + mlp


def micro_step_tokens(cfg: Mapping) -> int:
    """Tokens in one forward pass at the recipe's longest: micro_batch_size rows (or packs) of sequence_len;
    with `nextai_fuse_accumulation`, its token budget a pass (default sequence_len; a row longer than the
    budget gets a pass of its own), at most the accumulation window's rows."""
    tokens = cfg["sequence_len"] * (cfg.get("micro_batch_size") or 1)
    accumulation = cfg.get("gradient_accumulation_steps") or 1
    if cfg.get("nextai_fuse_accumulation") and accumulation > 1:
        budget = max(
            cfg.get("nextai_fuse_accumulation_max_tokens") or cfg["sequence_len"], cfg["sequence_len"]
        )
        return min(budget, tokens * accumulation)
    return tokens


def kept_output_bytes(arch: Architecture, cfg: Mapping) -> float:
    """Host memory that `nextai_saved_matmuls` fills in a micro-step: every layer's kept projection outputs
    (bf16); down_proj's is skipped, not kept (its output only feeds the layer's output)."""
    tokens = micro_step_tokens(cfg)
    kept = set(cfg.get("nextai_saved_matmuls") or []) - set(LAYER_OUTPUT_PROJECTIONS)
    width = sum(linear_shapes(arch)[name][1] for name in kept)
    return arch.num_hidden_layers * tokens * width * BF16


def layer_weight_bytes(arch: Architecture) -> float:
    """One decoder layer's NF4 weights as FSDP gathers them (the packed 4 bits; their quantization constants
    are kept whole on every rank)."""
    return sum(i * o for i, o in linear_shapes(arch).values()) / 2


def sharded_ranks(cfg: Mapping, world_size: int) -> int:
    """Over how many ranks FSDP splits the weights, LoRA and optimizer state: `world_size` under FSDP, else
    1."""
    return world_size if cfg.get("fsdp_config") or cfg.get("fsdp") else 1


def peak_parts(arch: Architecture, cfg: Mapping, world_size: int = 1) -> dict[str, float]:
    """Bytes of each part of a QLoRA run's peak GPU allocation (micro-batch x sequence_len tokens, gradient
    checkpointing, bf16 norms as Axolotl keeps them), by the recipe's keys: an estimate, within ~0.3 GiB of
    the measurements in docs/gpu-memory.md (`peak_estimate_bytes` is their sum). Under FSDP on `world_size`
    GPUs, a GPU's: 1/N of the weights, LoRA and optimizer state, plus what FSDP2 gathers whole while a step
    runs: two decoder layers' 4-bit weights (the one computing, the next prefetched) and the root's
    embeddings, lm_head and norm (kept gathered through the step). Not measured on several GPUs yet."""
    ranks = sharded_ranks(cfg, world_size)
    tokens = micro_step_tokens(cfg)
    r, targets = cfg.get("lora_r") or 0, cfg.get("lora_target_modules") or []
    hidden, layers = arch.hidden_size, arch.num_hidden_layers
    chunk = cfg.get("nextai_dequant_chunk_mib")
    # the chunked MLP dequantizes a chunk of each MLP weight itself
    chunks = cfg.get("nextai_mlp_chunks") or 1

    def dequantized(name: str, size: float) -> float:
        if chunks > 1 and name in MLP_PROJECTIONS:
            return size / chunks
        return min(size, chunk * 2**20) if chunk else size

    offloaded = cfg.get("activation_offloading") == "hidden_states"
    eager = cfg.get("attn_implementation") == "eager"
    weights = weight_bytes(arch) - (embedding_bytes(arch) if cfg.get("nextai_embeddings_on_cpu") else 0)
    constants = weight_bytes(arch) - quantized_parameters(arch) / 2 - BF16 * bf16_parameters(arch)
    return {
        "weights": weights if ranks == 1 else (weights - constants) / ranks + constants,
        "weights gathered by FSDP": 0
        if ranks == 1
        else 2 * layer_weight_bytes(arch) + BF16 * bf16_parameters(arch),
        "LoRA weights and gradients (fp32)": 8 * lora_trainable(arch, r, targets) / ranks,
        "optimizer state in PyTorch's memory": optimizer_state_bytes(
            arch, r, targets, cfg.get("optimizer") or ""
        )[0]
        / ranks,
        "dequantized weight": max(
            dequantized(name, i * o * BF16) for name, (i, o) in linear_shapes(arch).items()
        ),
        "saved layer inputs": (OFFLOAD_IN_FLIGHT if offloaded else layers) * tokens * hidden * BF16,
        "one layer's activations": tokens * activation_bytes_per_token(arch, targets, cfg),
        "eager attention (forward and backward)": 2 * eager_attention_bytes(arch, tokens) if eager else 0,
        # nextai_saved_matmuls: the layer below's kept outputs arrive while this layer's backward runs
        "kept matmul outputs prefetched": kept_output_bytes(arch, cfg) / layers,
        "other (fitted)": OTHER_BYTES,
    }


def peak_estimate_bytes(arch: Architecture, cfg: Mapping, world_size: int = 1) -> float:
    return sum(peak_parts(arch, cfg, world_size).values())
