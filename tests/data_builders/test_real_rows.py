"""The real rows vendored in data_builders/real/rows/: held-out rows are in no training pool, and the mixtures
built from the pools load."""

from __future__ import annotations

from axolotl_launch import ROOT, read_jsonl

from data_builders.mixing import load_mixture
from data_builders.real_rows import cut
from data_builders.sources import lima, multi_news
from data_builders.sources.base import load

ROWS = ROOT / "data_builders" / "real" / "rows"


def test_heldout_rows_are_in_no_training_pool():
    heldout = read_jsonl(ROWS / "heldout.jsonl")
    assert (
        [r["source"] for r in heldout].count("lima")
        == [r["source"] for r in heldout].count("multi_news")
        == 50
    )
    pools = [
        r.prompt_text
        for spec, name in ((lima.SPEC, "lima"), (multi_news.SPEC, "multi_news"))
        for r in load(spec, ROWS / f"{name}.jsonl.gz").records
    ]
    assert len(pools) >= 979 + 1000
    trained = set(pools)
    assert not [
        r["id"] for r in heldout if (r["instruction"] + ("\n" + r["input"] if r["input"] else "")) in trained
    ]


def test_the_cut_is_reproducible_from_copies(tmp_path, jsonl):
    """A tiny LIMA and Multi-News copy cut the same way: v5's 10 % of Multi-News, seeded held-out rows."""
    lima_copy = jsonl("lima", [{"conversations": [f"Question {i}?", f"Answer {i}."]} for i in range(30)])
    news_copy = jsonl(
        "news", [{"document": f"Story {i}. ||||| More {i}.", "summary": f"Sum {i}."} for i in range(40)]
    )
    counts = cut(lima_copy, news_copy, tmp_path / "rows", heldout=5)
    assert counts == {"lima": 25, "multi_news": 4, "heldout": 10}
    again = cut(lima_copy, news_copy, tmp_path / "again", heldout=5)
    assert again == counts
    assert (tmp_path / "rows" / "heldout.jsonl").read_bytes() == (
        tmp_path / "again" / "heldout.jsonl"
    ).read_bytes()


def test_the_real_mixtures_name_the_vendored_rows_and_every_real_benchmark():
    for name in ("v5-demo", "v5-real"):
        mixture = load_mixture(str(ROOT / "data_builders" / "real" / f"{name}.yaml"))
        assert {e.source for e in mixture.sources} == {
            "dolly",
            "open_platypus",
            "codegen",
            "faithdial",
            "multi_news",
            "lima",
        }
        assert len(mixture.decontaminate.benchmarks) == 19  # the paper's 20 less CNN/DM (no real copy)
