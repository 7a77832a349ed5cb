"""Every YAML key the nextAI plugin reads, with its default. Axolotl merges this model into its own config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Projection = Literal["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class NextAIArgs(BaseModel):
    """Keys of `plugins: [axolotl_nextai.NextAIPlugin]`; all prefixed `nextai_`."""

    nextai_report: bool = Field(
        default=True,
        description="Write <output_dir>/nextai_report.json, nextai_report.md (a Table 9 row) and "
        "nextai_report.png: loss, trainable parameters, peak GPU memory, real tokens/s, MFU, wall time, "
        "projected epoch time.",
    )
    nextai_report_every_steps: int = Field(
        default=10,
        ge=1,
        description="Every this many optimizer steps, log a progress line and rewrite nextai_report.json.",
    )
    nextai_peak_tflops: float = Field(
        default=312.0,
        gt=0,
        description="Peak dense bf16 TFLOP/s of the card, the MFU denominator: 312 for the paper's A100; "
        "989 for an H100 SXM datasheet; a real card reaches less (docs/gpu-memory.md).",
    )
    nextai_check_datasets: bool = Field(
        default=True,
        description="Before anything loads, fail if a local path the run reads is missing (a dataset file, "
        "naming how to build it; a base model folder; resume_from_checkpoint) or a row of an "
        "axolotl_nextai.alpaca file lacks a string instruction or output, naming file:line.",
    )
    nextai_content_keyed_prepared_data: bool = Field(
        default=True,
        description="Put prepared (tokenized) data under a subfolder of dataset_prepared_path named after "
        "the sha256 of every local dataset file, so that a regenerated file is tokenized again.",
    )
    nextai_time_budget_hours: float | None = Field(
        default=None,
        gt=0,
        description="Wall-clock budget of this process, from its launch (24 in the challenge). After "
        "warm-up, project the finish and warn (or stop) if it overruns; always checkpoint and stop before "
        "it is spent. None: off. A resumed run gets a fresh budget: give it what is left.",
    )
    nextai_time_budget_margin_minutes: float = Field(
        default=10.0,
        ge=0,
        description="Stop this long before the budget is spent, leaving time to save the "
        "checkpoint and adapter.",
    )
    nextai_time_budget_warmup_steps: int = Field(
        default=10,
        ge=1,
        description="Optimizer steps to run before projecting the finish (the first steps "
        "pay one-off costs).",
    )
    nextai_time_budget_action: Literal["warn", "stop"] = Field(
        default="warn",
        description="When the projected finish overruns the budget: `warn` (train on, stop at the budget) or "
        "`stop` (checkpoint and stop right after warm-up).",
    )
    nextai_checkpoint_on_signal: bool = Field(
        default=True,
        description="On SIGTERM or SIGINT, or when the `accelerate launch` process exits (SIGTERM to it), "
        "finish the current step, save a checkpoint and stop cleanly; a second signal stops at once, after "
        "any save in progress. Resume with `resume_from_checkpoint: <output_dir>/checkpoint-N`.",
    )
    nextai_gpu_memory_cap_gb: float | None = Field(
        default=None,
        gt=0,
        description="Cap PyTorch's allocator at this many GB (1e9 bytes) per process before the model loads, "
        "e.g. 40 to simulate the challenge's A100 40GB on an 80 GB card. None: no cap. No "
        "effect without CUDA.",
    )
    nextai_gc_freeze: bool = Field(
        default=True,
        description="At train start, move every object then alive (the model's modules and weights, the "
        "data) out of the reach of Python's garbage collector (gc.freeze): on Llama-2-70B each full "
        "collection over them stalled training ~1.3 s every few steps. Objects created later are "
        "collected as usual.",
    )
    nextai_require_flash_attention: bool = Field(
        default=False,
        description="Fail when the config asks for flash_attention_2 and flash_attn is missing, instead of "
        "falling back to sdpa with a warning.",
    )

    # --- Fused accumulation: speed with the unfused recipe's math -------------------------------------------
    nextai_fuse_accumulation: bool = Field(
        default=False,
        description="Draw each optimizer step's micro_batch_size x gradient_accumulation_steps rows as one "
        "batch and train them in as few forward passes as nextai_fuse_accumulation_max_tokens allows, each "
        "row's loss weighted as in its own micro-batch: the same rows, order, optimizer steps, schedule and "
        "loss (padding and LoRA dropout's random masks aside), less fixed cost per row. Needs unpacked rows "
        "(sample_packing false) and the model's own loss (no fused cross-entropy kernel). See "
        "axolotl_nextai/levers/fused_accumulation.py.",
    )
    nextai_fuse_accumulation_max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Padded tokens (rows x padded width) per forward pass of a fused batch; a row longer "
        "than this still gets a pass of its own. None: sequence_len, so that no pass is larger than the "
        "unfused recipe's longest micro-step and peak memory stays where it was.",
    )

    # --- Memory levers: change no training semantics; what lets cutoff 4,096 train under 40 GB --------------
    nextai_dequant_chunk_mib: float | None = Field(
        default=None,
        gt=0,
        description="Dequantize every 4-bit weight larger than this many MiB (in bf16) this much at a time, "
        "in the forward (by rows) and the input gradient (by columns), instead of whole: Llama-2-70B's MLP "
        "weights are 448 MiB each. Same results up to matmul rounding. None: bitsandbytes' own path.",
    )
    nextai_tiled_mlp_shards: int | None = Field(
        default=None,
        ge=2,
        description="Run each decoder layer's MLP over the sequence in this many shards in training, "
        "recomputing one shard at a time in backward (dropout masks and autocast replayed), so only one "
        "shard's MLP activations exist at once; costs one more MLP forward per step. None: off.",
    )
    nextai_mlp_chunks: int | None = Field(
        default=None,
        ge=2,
        description="Run each decoder layer's MLP over its intermediate features (28,672 for Llama-2-70B) in "
        "this many chunks in training: each NF4 weight dequantized once a pass, a chunk at a time, only one "
        "chunk's activations at once and the MLP's input kept for backward; the checkpoint's recompute "
        "skips the MLP. The same values up to the matmuls' rounding; a LoRA adapter on down_proj only (its "
        "dropout masks drawn per chunk and replayed). Where nextai_tiled_mlp_shards cuts the tokens and "
        "dequantizes every weight once per shard. None: off. See axolotl_nextai/levers/chunked_mlp.py.",
    )
    nextai_expandable_segments: bool = Field(
        default=False,
        description="Before the model loads, switch PyTorch's CUDA allocator to expandable segments (what "
        "`axolotl train` sets through PYTORCH_ALLOC_CONF, and `accelerate launch -m axolotl.cli.train` does "
        "not): less memory lost to fragmentation under a tight cap. No effect without CUDA.",
    )
    nextai_prefetch_offloaded_inputs: bool = Field(
        default=False,
        description="With activation_offloading: hidden_states, copy each checkpointed layer's offloaded "
        "input back to the GPU one layer ahead in backward, instead of when its recompute asks for it "
        "(Axolotl's way, which leaves the GPU waiting for the copy once a layer: ~0.1 s a step for "
        "Llama-2-70B at 4,096 tokens). The same values; one more layer input on the GPU. A marked patch of "
        "Axolotl's offloader, see axolotl_nextai/levers/offload_prefetch.py.",
    )
    nextai_nf4_dequant_kernel: Literal["bitsandbytes", "triton"] | None = Field(
        default=None,
        description="Which kernel dequantizes the NF4 weights before each 4-bit matmul on CUDA: "
        "bitsandbytes' own (None or `bitsandbytes`), or `triton`, a Triton kernel that gives the same bf16 "
        "values bit for bit at the card's streaming rate (bitsandbytes' runs well below it: "
        "bench/results/gpu70b-fast-2026-12-01.md). A marked patch of "
        "bitsandbytes.functional.dequantize_4bit, see axolotl_nextai/levers/nf4_dequant.py.",
    )
    nextai_embeddings_on_cpu: bool = Field(
        default=False,
        description="Keep the frozen input embeddings in CPU memory and look tokens up there (Llama-2-70B: "
        "500 MiB less on the GPU, the same values; a 64 MiB copy per micro-step at 4,096 tokens).",
    )

    # --- Recompute lever: fewer FLOPs for PCIe traffic; the same values -------------------------------------
    nextai_saved_matmuls: list[Projection] | None = Field(
        default=None,
        description="Within each gradient-checkpointed decoder layer, keep the output of these projections' "
        "4-bit matmuls from the forward (in pinned CPU memory, copied on a side stream; where it is without "
        "CUDA) instead of recomputing them in backward: the same values, fewer FLOPs (the dequantization is "
        "skipped too), PCIe traffic instead. Llama-2-70B at 4,096 tokens a micro-step: gate_proj and "
        "up_proj are 55 % of a layer's matmul FLOPs and 37.6 GB of pinned memory; down_proj 27 % for none: "
        "its output only feeds the layer's output, so the recompute skips it and nothing is copied (the "
        "fast recipe lists all three; what that gains: bench/results/gpu70b-fast-2026-12-01.md). Needs "
        "non-reentrant gradient_checkpointing; a projection an Axolotl LoRA kernel computes needs that "
        "kernel off (it calls no module). None: off. See axolotl_nextai/levers/saved_matmuls.py.",
    )
