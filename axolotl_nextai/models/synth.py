"""`nextai-synth`: a random-weight Llama checkpoint, pre-quantized to NF4 + double quant, for any config.

"Will this recipe fit my card, and how fast will it run?" can be answered before downloading 130 GB: memory
and speed of QLoRA do not depend on the weights' values. The checkpoint is written layer by layer (one decoder
layer's bf16 weights exist at a time, on the GPU when there is one), in bitsandbytes' serialized 4-bit format
with `quantization_config` in `config.json`, so transformers and Axolotl load it like any pre-quantized model.
`--dtype bf16` writes plain weights instead (small configs, CPU tests of the same path).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click

from axolotl_nextai.models.architectures import ARCHITECTURES, Architecture
from axolotl_nextai.models.checkpoint import qlora_quantization
from axolotl_nextai.models.footprint import MLP_PROJECTIONS, linear_shapes
from axolotl_nextai.models.tiny_model import TINY_LLAMA, TINY_VOCAB_SIZE, tokenizer_corpus, train_tokenizer
from data_builders.atomic import is_empty_dir, out_folder_problem, replace_dir, staging_dir
from data_builders.boundary import Guarded
from data_builders.files import InputFile
from data_builders.sources import sample_records

# Short names for the base models of our recipes, plus the tiny CPU model.
PRESETS = {
    **{
        name: ARCHITECTURES[hub_id]
        for name, hub_id in (
            ("llama2-70b", "meta-llama/Llama-2-70b-hf"),
            ("llama2-13b", "meta-llama/Llama-2-13b-hf"),
            ("llama2-7b", "meta-llama/Llama-2-7b-hf"),
        )
    },
    "tiny": Architecture.from_config(dict(TINY_LLAMA, vocab_size=TINY_VOCAB_SIZE)),
}
INIT_STD = 0.02  # LlamaConfig.initializer_range
NF4_BLOCKSIZE = 64  # bitsandbytes' default for 4-bit weights


def layer_linears(arch: Architecture, layer: int) -> Iterator[tuple[str, tuple[int, int]]]:
    """(parameter name, (out, in)) of one decoder layer's seven projections, in `linear_shapes`' order
    (q, k, v, o, gate, up, down); a weight is stored (out_features, in_features)."""
    for name, (in_features, out_features) in linear_shapes(arch).items():
        block = "mlp" if name in MLP_PROJECTIONS else "self_attn"
        yield f"model.layers.{layer}.{block}.{name}.weight", (out_features, in_features)


def quantize_nf4(weight, storage: str = "uint8") -> dict:
    """bitsandbytes' on-disk form of one Linear4bit weight: packed data (viewed as `storage`: bfloat16 for
    FSDP to shard it) plus its quant-state tensors."""
    import torch
    from bitsandbytes.functional import quantize_4bit

    packed, state = quantize_4bit(
        weight,
        blocksize=NF4_BLOCKSIZE,
        compress_statistics=True,
        quant_type="nf4",
        quant_storage=getattr(torch, storage),
    )
    return {"": packed, **{f".{key}": value for key, value in state.as_dict(packed=True).items()}}


def quantization_config(storage: str = "uint8") -> dict:
    """What `BitsAndBytesConfig` serializes for the paper's QLoRA: NF4, double quant, bf16 compute, stored as
    `storage`."""
    return {**qlora_quantization().to_dict(), "bnb_4bit_quant_storage": storage}


def synth_tokenizer(vocab_size: int):
    """The BPE of the tiny model, padded with filler tokens to exactly `vocab_size` (the model's embedding
    rows)."""
    tokenizer = train_tokenizer(tokenizer_corpus(sample_records()), min(vocab_size, TINY_VOCAB_SIZE))
    filler = [f"<filler_{i}>" for i in range(vocab_size - len(tokenizer))]
    tokenizer.add_tokens(filler)
    assert len(tokenizer) == vocab_size, (len(tokenizer), vocab_size)
    return tokenizer


def write_synthetic_llama(
    arch: Architecture,
    out: Path,
    quantize: bool = True,
    seed: int = 0,
    device: str | None = None,
    overwrite: bool = False,
    quant_storage: str = "uint8",
) -> Path:
    """Write config, tokenizer and one safetensors shard per decoder layer (+ one for embeddings and head), as
    one folder: it appears as `out` only once complete. A non-empty `out` is replaced only with
    `overwrite`."""
    if out.exists() and not is_empty_dir(out) and not overwrite:
        raise FileExistsError(
            f"{out} exists and is not empty; remove it, choose another --out or pass --overwrite"
        )
    with staging_dir(out) as staged:
        _write_checkpoint(arch, staged, quantize, seed, device, quant_storage)
        replace_dir(staged, out)
    return out


def _write_checkpoint(
    arch: Architecture, out: Path, quantize: bool, seed: int, device: str | None, quant_storage: str
) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = synth_tokenizer(arch.vocab_size)
    config = LlamaConfig(
        **{"rms_norm_eps": 1e-5, **arch.config_values(), "tie_word_embeddings": False, "model_type": "llama"},
        torch_dtype="bfloat16",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config_dict = config.to_dict()
    if quantize:
        config_dict["quantization_config"] = quantization_config(quant_storage)

    generator = torch.Generator(device).manual_seed(seed)

    def random_weight(shape):
        return (torch.randn(shape, generator=generator, device=device, dtype=torch.float32) * INIT_STD).to(
            torch.bfloat16
        )

    n_layers, hidden = arch.num_hidden_layers, arch.hidden_size
    shard_names = [f"model-{i + 1:05d}-of-{n_layers + 1:05d}.safetensors" for i in range(n_layers + 1)]
    weight_map: dict[str, str] = {}
    total_bytes = 0

    def save_shard(index: int, tensors: dict) -> None:
        nonlocal total_bytes
        tensors = {name: t.contiguous().cpu() for name, t in tensors.items()}
        save_file(tensors, out / shard_names[index], metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, shard_names[index]))
        total_bytes += sum(t.numel() * t.element_size() for t in tensors.values())

    def norm_weight():
        return torch.ones(hidden, dtype=torch.bfloat16)

    for layer in range(n_layers):
        tensors = {
            f"model.layers.{layer}.input_layernorm.weight": norm_weight(),
            f"model.layers.{layer}.post_attention_layernorm.weight": norm_weight(),
        }
        for name, shape in layer_linears(arch, layer):
            weight = random_weight(shape)
            if quantize:
                tensors.update(
                    {name + suffix: t for suffix, t in quantize_nf4(weight, quant_storage).items()}
                )
            else:
                tensors[name] = weight
            del weight
        save_shard(layer, tensors)
    save_shard(
        n_layers,
        {
            "model.embed_tokens.weight": random_weight((arch.vocab_size, hidden)),
            "model.norm.weight": norm_weight(),
            "lm_head.weight": random_weight((arch.vocab_size, hidden)),
        },
    )

    (out / "config.json").write_text(json.dumps(config_dict, indent=2, sort_keys=True) + "\n")
    index = {"metadata": {"total_size": total_bytes}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    tokenizer.save_pretrained(out)


def read_config(path: Path) -> Architecture:
    """The architecture of a Llama-family config.json (written untied, as every synthetic checkpoint is);
    click.UsageError naming the file and the key."""
    from data_builders.errors import DataError
    from data_builders.files import read_text
    from data_builders.json_text import loads

    try:
        raw = loads(read_text(path), str(path))
    except DataError as err:
        raise click.UsageError(str(err)) from None
    if not isinstance(raw, dict):
        raise click.UsageError(f"{path}: expected a JSON object (a model's config.json)")
    try:
        return Architecture.from_config({**raw, "tie_word_embeddings": False, "model_type": "llama"})
    except ValueError as err:
        raise click.UsageError(f"{path}: {err}") from None


@click.command(cls=Guarded)
@click.option("--preset", type=click.Choice(sorted(PRESETS)), help="A known architecture.")
@click.option(
    "--config", "config_path", type=InputFile(), help="A Llama-family config.json instead of a preset."
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Folder to write the checkpoint into."
)
@click.option("--overwrite", is_flag=True, help="Replace --out if it is not empty.")
@click.option(
    "--dtype",
    type=click.Choice(["nf4", "nf4-bf16", "bf16"]),
    default="nf4",
    show_default=True,
    help="nf4: NF4 packed in uint8 (bitsandbytes' default); nf4-bf16: the same bytes stored as bfloat16, "
    "which FSDP can shard (several GPUs); bf16: not quantized.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--device", default=None, help="Where weights are drawn and quantized (default: cuda if present)."
)
def main(preset, config_path, out, overwrite, dtype, seed, device) -> None:
    """Write a random-weight Llama checkpoint (pre-quantized NF4 by default) that loads like a real one."""
    from data_builders.quiet import silence_known_noise

    silence_known_noise()
    if bool(preset) == bool(config_path):
        raise click.UsageError("give exactly one of --preset or --config")
    arch = PRESETS[preset] if preset else read_config(config_path)
    problem = out_folder_problem(out, overwrite)
    if problem:
        raise click.BadParameter(f"{out}: {problem}", param_hint="--out")
    if device is not None:
        import torch

        try:
            if torch.device(device).type == "cuda" and not torch.cuda.is_available():
                raise click.BadParameter(f"{device}: no CUDA device here", param_hint="--device")
        except RuntimeError as err:
            raise click.BadParameter(f"{device}: {err}", param_hint="--device") from None
    write_synthetic_llama(
        arch,
        out,
        quantize=dtype.startswith("nf4"),
        seed=seed,
        device=device,
        overwrite=overwrite,
        quant_storage="bfloat16" if dtype == "nf4-bf16" else "uint8",
    )
    click.echo(f"synthetic {preset or config_path} ({dtype}) written to {out}")


if __name__ == "__main__":
    main()
