"""The FlashAttention-2 fallback: the pure decision, then one real launch of the CLI without flash_attn."""

import pytest
import yaml
from axolotl_launch import ROOT, tiny_cpu_config

from axolotl_nextai.checks.attention import apply_changes, flash_attn_installed, resolve_attention
from axolotl_nextai.checks.config_checks import ConfigError
from axolotl_nextai.checks.recipe_check import check_config

WARNING = "the config asks for flash_attention_2 but the `flash_attn` package is not installed"


@pytest.mark.parametrize(
    "cfg,changes",
    [
        ({"attn_implementation": "flash_attention_2"}, {"attn_implementation": "sdpa"}),
        ({"flash_attention": True}, {"attn_implementation": "sdpa", "flash_attention": None}),
        ({"attn_implementation": "eager"}, {}),
        ({"attn_implementation": "sdpa", "flash_attention": False}, {}),
        ({}, {}),
    ],
    ids=["fa2", "deprecated-flag", "eager", "sdpa", "unset"],
)
def test_without_flash_attn_only_flash_requests_change(cfg, changes):
    got, warning = resolve_attention(cfg, flash_available=False)
    assert got == changes
    assert (warning is not None) == bool(changes)
    if warning:
        assert WARNING in warning and "nextai_require_flash_attention" in warning


def test_with_flash_attn_nothing_changes():
    assert resolve_attention({"attn_implementation": "flash_attention_2"}, flash_available=True) == ({}, None)
    assert resolve_attention({"flash_attention": True}, flash_available=True, require=True) == ({}, None)


def test_require_makes_missing_flash_attn_an_error_naming_the_key():
    with pytest.raises(ConfigError, match="`nextai_require_flash_attention` is true"):
        resolve_attention({"attn_implementation": "flash_attention_2"}, flash_available=False, require=True)


def test_apply_changes_sets_and_removes_keys():
    cfg = {"flash_attention": True, "lora_r": 4}
    apply_changes(cfg, resolve_attention(cfg, flash_available=False)[0])
    assert cfg == {"attn_implementation": "sdpa", "lora_r": 4}


@pytest.mark.slow
@pytest.mark.skipif(flash_attn_installed(), reason="needs a machine without flash_attn")
def test_cli_falls_back_to_sdpa_with_one_warning(memorised):
    """The run: `memorised` in tests/conftest.py, which asks for flash_attention_2 on this machine."""
    tmp_path, result = memorised
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert log.count(WARNING) == 1
    assert '"attn_implementation": "sdpa"' in log  # Axolotl's own dump of the config it trained with
    assert (tmp_path / "out" / "adapter_model.safetensors").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.skipif(flash_attn_installed(), reason="needs a machine without flash_attn")
def test_cli_refuses_when_flash_attention_is_required(tiny_model, tmp_path, run_axolotl):
    cfg = tiny_cpu_config(
        tiny_model,
        tmp_path,
        attn_implementation="flash_attention_2",
        nextai_require_flash_attention=True,
        nextai_check_datasets=False,
    )
    result = run_axolotl(cfg, tmp_path)
    assert result.returncode != 0
    assert "`nextai_require_flash_attention` is true" in result.stdout + result.stderr


@pytest.mark.skipif(flash_attn_installed(), reason="needs a machine without flash_attn")
@pytest.mark.parametrize("ask", [{"attn_implementation": "flash_attention_2"}, {"flash_attention": True}])
def test_axolotl_validates_the_fallback_of_either_spelling(ask, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load((ROOT / "recipes" / "llama2-70b-v5.yml").read_text())
    del raw["attn_implementation"]
    cfg = check_config({**raw, **ask, "nextai_check_datasets": False})
    assert cfg["attn_implementation"] == "sdpa" and not cfg.get("flash_attention")
