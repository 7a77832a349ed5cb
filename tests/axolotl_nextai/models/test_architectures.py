"""One typed Architecture from a config.json (a folder, or the Hub cache) or the table; SmolLM2's tied head
counted once."""

import json

import pytest

from axolotl_nextai.models.architectures import ARCHITECTURES, Architecture, architecture_of
from axolotl_nextai.models.footprint import total_parameters

LLAMA2_70B = ARCHITECTURES["meta-llama/Llama-2-70b-hf"]


def test_a_local_config_keeps_tied_embeddings_and_the_head_is_counted_once(real_model):
    from axolotl_nextai.models.real_model import MANIFEST

    arch = architecture_of(str(real_model))
    assert arch == ARCHITECTURES[".real-model/SmolLM2-135M-Instruct"] and arch.tie_word_embeddings
    manifest = json.loads((real_model / MANIFEST).read_text())
    assert total_parameters(arch) == manifest["parameters"] == 134_515_008


def test_a_hub_id_from_its_cached_config_then_the_table_then_none(tmp_path, monkeypatch):
    from huggingface_hub import constants

    snapshot = tmp_path / "models--NousResearch--Llama-2-70b-hf" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(LLAMA2_70B.config_values()))
    (tmp_path / "models--NousResearch--Llama-2-70b-hf" / "refs").mkdir()
    (tmp_path / "models--NousResearch--Llama-2-70b-hf" / "refs" / "main").write_text("abc")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert architecture_of("NousResearch/Llama-2-70b-hf") == LLAMA2_70B  # a mirror, downloaded before
    assert architecture_of("meta-llama/Llama-2-70b-hf") == LLAMA2_70B  # not downloaded: the table
    assert architecture_of("someone/unknown-model") is None
    assert architecture_of(str(tmp_path)) is None  # a folder without config.json


def test_from_config_names_what_is_missing_or_wrong():
    values = LLAMA2_70B.config_values()
    del values["num_key_value_heads"]  # older configs: every head has its own keys and values
    assert Architecture.from_config(values).num_key_value_heads == 64
    with pytest.raises(ValueError, match="missing intermediate_size, num_hidden_layers"):
        Architecture.from_config({"hidden_size": 8})
    with pytest.raises(ValueError, match=r"hidden_size must be a positive integer \(got '8'\)"):
        Architecture.from_config({**values, "hidden_size": "8"})
    with pytest.raises(AttributeError):
        LLAMA2_70B.hidden_size = 1  # frozen
