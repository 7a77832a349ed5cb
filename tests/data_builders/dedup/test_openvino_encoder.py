"""The OpenVINO encoder on real rows (tests/assets/near_dup): torch's cosines within 1e-5 and the same kept
set; which encoder `auto` picks, and the errors for one that cannot run."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from data_builders.dedup import embed as embed_module
from data_builders.dedup.embed import embed, openvino_fallback, resolve_encoder
from data_builders.dedup.near_dup import keep_first_seen
from data_builders.dedup.stage import near_dedup
from data_builders.errors import DataError

TEXTS = [
    json.loads(line)["text"] for line in (Path(__file__).parents[2] / "assets/near_dup/rows.jsonl").open()
]


@pytest.fixture(scope="module")
def vectors():
    """Both encoders' vectors of the rows (each model loaded once per process: embed.load_encoder)."""
    return embed(TEXTS, encoder="torch"), embed(TEXTS, encoder="openvino")


def test_cosines_match_torch_within_1e_5(vectors):
    torch_vectors, openvino_vectors = vectors
    assert np.allclose(np.linalg.norm(openvino_vectors, axis=1), 1, atol=1e-6)
    assert np.abs(openvino_vectors @ openvino_vectors.T - torch_vectors @ torch_vectors.T).max() < 1e-5


def test_kept_set_and_pairs_are_torch_s(vectors):
    (torch_keep, torch_removals), (keep, removals) = (keep_first_seen(v) for v in vectors)
    assert keep.tolist() == torch_keep.tolist() and (~keep).sum() > 0
    assert [(r.removed, r.kept) for r in removals] == [(r.removed, r.kept) for r in torch_removals]


def test_a_row_alone_matches_it_in_a_padded_batch(vectors):
    """The graph was traced on a padded batch; a batch of one (no padding) must take the same path."""
    _, openvino_vectors = vectors
    longest = int(np.argmax([len(t) for t in TEXTS]))
    shortest = int(np.argmin([len(t) for t in TEXTS]))
    for i in (longest, shortest):
        assert np.allclose(embed([TEXTS[i]], encoder="openvino")[0], openvino_vectors[i], atol=1e-6)


def test_near_dedup_records_the_encoder_and_batch_it_picks():
    stats = near_dedup(TEXTS[:4], device="cpu").stats
    assert (stats["encoder"], stats["batch_size"]) == ("openvino", 32)
    assert near_dedup(TEXTS[:4], device="cpu", batch_size=128).stats["batch_size"] == 128
    assert near_dedup(TEXTS[:4], device="cpu", encoder="torch").stats["encoder"] == "torch"


def test_auto_is_openvino_on_a_cpu_only_and_openvino_is_checked(monkeypatch):
    assert resolve_encoder("auto", "cpu") == "openvino"
    assert resolve_encoder("auto", "cuda") == "torch"
    with pytest.raises(DataError, match="runs on the CPU, not cuda"):
        resolve_encoder("openvino", "cuda")
    with pytest.raises(DataError, match="unknown encoder 'onnx'"):
        resolve_encoder("onnx", "cpu")
    assert openvino_fallback("auto", "cpu") is None
    monkeypatch.setitem(sys.modules, "openvino", None)  # as when not installed: find_spec finds nothing
    assert resolve_encoder("auto", "cpu") == "torch"
    with pytest.raises(DataError, match=r"pip install 'axolotl-nextai\[dedup-fast\]'"):
        resolve_encoder("openvino", "cpu")


def test_auto_without_openvino_falls_back_to_torch_and_the_manifest_says_so(monkeypatch, vectors):
    monkeypatch.setitem(sys.modules, "openvino", None)
    stats = near_dedup(TEXTS[:4], device="cpu").stats
    assert stats["encoder"] == "torch"
    assert stats["encoder_fallback"] == openvino_fallback("auto", "cpu")
    assert "pip install 'axolotl-nextai[dedup-fast]'" in stats["encoder_fallback"]
    assert openvino_fallback("auto", "cuda") is openvino_fallback("torch", "cpu") is None


def test_the_converter_sends_no_usage_events(vectors):
    """After a conversion (the fixture's), OpenVINO's converter holds its no-op telemetry stub, not the
    sender."""
    from openvino.tools.ovc import convert_impl, telemetry_utils

    assert convert_impl.tm.__name__ == telemetry_utils.tm.__name__ == "openvino.tools.ovc.telemetry_stub"


def test_a_model_openvino_cannot_convert_is_one_line_before_any_row(monkeypatch):
    """OpenVINO's converter failing (made to fail here: MiniLM converts) is a DataError naming the option."""
    import openvino

    def fail(*args, **kwargs):
        raise RuntimeError("Cannot convert operation aten::mystery\nmore detail")

    from data_builders.dedup.openvino_encoder import converted

    monkeypatch.setattr(openvino, "convert_model", fail)
    embed_module.load_encoder.cache_clear()
    converted.cache_clear()
    try:
        with pytest.raises(
            DataError,
            match=r"^--encoder openvino: OpenVINO cannot convert .*all-MiniLM-L6-v2 "
            r"\(RuntimeError: Cannot convert operation aten::mystery\); use --encoder torch$",
        ):
            embed_module.check_embedding(embed_module.DEFAULT_MODEL, None, "cpu", "openvino")
    finally:
        embed_module.load_encoder.cache_clear()
        converted.cache_clear()
