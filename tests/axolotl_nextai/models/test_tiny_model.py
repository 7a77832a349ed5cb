"""The tiny-model builder: offline, deterministic, loadable by transformers."""

import hashlib

from click.testing import CliRunner

from axolotl_nextai.models.tiny_model import build_tiny_llama, main


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_arguments_give_identical_files(tiny_model, tmp_path):
    again = build_tiny_llama(tmp_path / "again")
    assert _digests(again) == _digests(tiny_model)
    other_seed = build_tiny_llama(tmp_path / "seed1", seed=1)
    assert _digests(other_seed)["model.safetensors"] != _digests(tiny_model)["model.safetensors"]


def test_loads_as_llama_with_special_tokens(tiny_model, tiny_tokenizer):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model)
    assert config.model_type == "llama"
    assert config.vocab_size == len(tiny_tokenizer)
    assert config.eos_token_id == tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.pad_token == "<pad>"
    ids = tiny_tokenizer("### Response:\nJupiter.")["input_ids"]
    assert ids[0] == tiny_tokenizer.bos_token_id and tiny_tokenizer.unk_token_id not in ids
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == "### Response:\nJupiter."


def test_the_cli_run_twice_leaves_the_model_and_refuses_other_content(tmp_path):
    """`make demo` runs `nextai-tiny-model --out .tiny/model` every time: same arguments, same files, exit 0;
    a folder holding anything else is replaced only with --overwrite."""
    out = tmp_path / "model"
    assert CliRunner().invoke(main, ["--out", str(out)]).exit_code == 0
    first = _digests(out)
    again = CliRunner().invoke(main, ["--out", str(out)])
    assert again.exit_code == 0 and _digests(out) == first
    other = CliRunner().invoke(main, ["--out", str(out), "--seed", "1"])
    assert other.exit_code == 2 and "holds something else" in other.output and _digests(out) == first
    replaced = CliRunner().invoke(main, ["--out", str(out), "--seed", "1", "--overwrite"])
    assert replaced.exit_code == 0 and _digests(out)["model.safetensors"] != first["model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left
