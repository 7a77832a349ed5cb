"""A tiny random-init Llama with a real trained BPE tokenizer, built offline and deterministically.

The demo and the tests need a model that Axolotl loads like any Hugging Face checkpoint, with no download:
a byte-level BPE trained on the bundled sample text, and a 4-layer Llama small enough to train on 2 CPU cores.
Same arguments give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from data_builders.atomic import is_empty_dir, out_folder_problem, replace_dir, same_files, staging_dir
from data_builders.boundary import Guarded
from data_builders.records import Record
from data_builders.sources import sample_records

SPECIAL_TOKENS = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}

# Shaped like Llama-2 (GQA, SiLU MLP, RMSNorm, RoPE), sized so hidden is a multiple of bitsandbytes' NF4
# blocksize (64).
TINY_LLAMA = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
TINY_VOCAB_SIZE = 2048  # BPE vocabulary of the tiny model (special tokens included)


def tokenizer_corpus(rows: Iterable[Record]) -> list[str]:
    """Every text field of `rows`: what the tokenizer learns its merges from. The tiny model's rows are the
    bundled sample (`sample_records()`, all sources): same package files, same list, same tokenizer."""
    return [text for r in rows for text in (r.instruction, r.input, r.output) if text]


def train_tokenizer(corpus: Iterable[str], vocab_size: int):
    """A byte-level BPE (no unknown bytes, like Llama-3; Llama-2 uses SentencePiece BPE) as a fast HF
    tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    bos = SPECIAL_TOKENS["bos_token"]
    # Llama prepends BOS and appends nothing; the prompt strategy adds EOS itself.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=TINY_LLAMA["max_position_embeddings"], **SPECIAL_TOKENS
    )


def build_tiny_llama(
    out: Path, vocab_size: int = TINY_VOCAB_SIZE, seed: int = 0, overwrite: bool = False
) -> Path:
    """Write tokenizer + random-init LlamaForCausalLM (float32 safetensors) to `out`, as one folder. An `out`
    that already holds exactly these files is left as it is; anything else in a non-empty `out` is replaced
    only with `overwrite` (FileExistsError)."""
    with staging_dir(out) as staged:
        write_tiny_llama(staged, vocab_size, seed)
        if not same_files(staged, out):
            if out.exists() and not is_empty_dir(out) and not overwrite:
                raise FileExistsError(f"{out} holds something else; choose another --out or pass --overwrite")
            replace_dir(staged, out)
    return out


def write_tiny_llama(out: Path, vocab_size: int, seed: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(tokenizer_corpus(sample_records()), vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
        **TINY_LLAMA,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


@click.command(cls=Guarded)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write the model into.")
@click.option(
    "--vocab-size",
    type=click.IntRange(min=1),
    default=TINY_VOCAB_SIZE,
    show_default=True,
    help="BPE vocabulary size (special tokens included; at least the 256 bytes + 4 specials result).",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed for the random weights."
)
@click.option("--overwrite", is_flag=True, help="Replace --out if it holds anything else.")
def main(out: Path, vocab_size: int, seed: int, overwrite: bool) -> None:
    """Build a tiny random Llama + BPE tokenizer for CPU demos and tests (offline, deterministic: run again
    with the same arguments, it finds the same files and leaves them)."""
    from data_builders.quiet import silence_known_noise

    silence_known_noise()
    problem = out_folder_problem(out, overwrite=True)  # a folder holding these very files is left as it is
    if problem:
        raise click.BadParameter(f"{out}: {problem}", param_hint="--out")
    try:
        build_tiny_llama(out, vocab_size, seed, overwrite)
    except FileExistsError as err:
        raise click.BadParameter(str(err), param_hint="--out") from None
    click.echo(f"tiny Llama written to {out}")


if __name__ == "__main__":
    main()
