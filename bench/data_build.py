"""How long does `nextai-data build --mixture v5` take at full size on this machine, and what does the blocked
near-dedup buy over Platypus' keep-loop?

Writes every v5 source at its real row count and roughly its real text lengths (word salad drawn from the
shipped sample's vocabulary, 1 % of rows planted as light edits of an earlier row), builds v5 from them
through `build()`'s own stages (`load_sources`, `filter_and_select`, `embed`), timed one by one, embedding
(no cache, so cold) only the first --embed-rows selected rows and extrapolating the rest, then runs
the dedup step twice on those rows: `near_dup.keep_first_seen` and the loop of Platypus'
`data_similarity.ipynb` (sklearn cosine of each item against the list of kept vectors). Same kept set
required. Prints one line per stage and writes bench/results/data_build-<date>.md.

    .venv/bin/python bench/data_build.py [--scale 1.0] [--embed-rows 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from data_builders.build import Build, filter_and_select, filter_rules, load_sources
from data_builders.dedup import near_dup
from data_builders.dedup.embed import DEFAULT_MODEL, embed, load_embedding_model
from data_builders.mixing import load_mixture
from data_builders.sources import sample_dir
from data_builders.sources.base import find_source_file
from data_builders.writers import write_build

# Real row counts (data_builders/README.md, Sources); mean words per field, roughly as in each dataset.
PLATYPUS_SUBSETS = {"MATH/PRM-800K": 12298, "ARB": 713, "scienceqa": 1317, "scibench": 616, "theoremqa": 564,
                    "reclor": 4530, "tigerbot-kaggle": 386, "leetcode_ne": 1100, "airoboros": 2605, "guanaco": 797}
ROWS = {"dolly": 15011, "faithdial": 18357, "multi_news": 44972, "lima": 1030, "codegen": 4000,
        "flan_v2_cot": 183848, "alpaca_2k_test": 2000}
PLANTED = 0.01


def vocabulary() -> list[str]:
    words = set()
    for path in sample_dir().glob("*.jsonl"):
        for line in path.read_text().splitlines():
            words.update(w.lower() for v in json.loads(line).values() if isinstance(v, str) for w in v.split()
                         if w.isalpha())  # plain words tokenize like English prose (~1.3 word pieces each)
    return sorted(words)


def write_sources(folder: Path, scale: float, seed: int = 0) -> dict[str, int]:
    rng = random.Random(seed)
    vocab = vocabulary()

    def words(mean: int) -> str:
        return " ".join(rng.choices(vocab, k=max(1, int(rng.expovariate(1 / mean)) + mean // 4)))

    def rows(n: int, make, planted_key: str) -> list[dict]:
        out = []
        for i in range(max(1, int(n * scale))):
            row = make()
            if out and rng.random() < PLANTED:  # a light edit of an earlier row's prompt
                row[planted_key] = out[rng.randrange(len(out))][planted_key].rstrip(".?") + "?"
            out.append(row)
        return out

    subsets = [s for s, n in PLATYPUS_SUBSETS.items() for _ in range(n)]
    rng.shuffle(subsets)
    sources = {
        "open_platypus": rows(len(subsets), lambda: {"instruction": words(60), "input": "", "output": words(120),
                                                     "data_source": subsets[rng.randrange(len(subsets))]},
                              "instruction"),
        "dolly": rows(ROWS["dolly"], lambda: {"instruction": words(12), "context": words(90) if rng.random() < 0.3
                                              else "", "response": words(50), "category": "open_qa"},
                      "instruction"),
        "faithdial": rows(ROWS["faithdial"], lambda: {"history": [words(15) for _ in range(rng.choice([1, 3, 5]))],
                                                      "knowledge": words(25), "response": words(20),
                                                      "original_response": words(20), "BEGIN": [], "VRM": [],
                                                      "dialog_idx": 0}, "knowledge"),
        "multi_news": rows(ROWS["multi_news"], lambda: {"document": " ||||| ".join(words(500) for _ in range(4)),
                                                        "summary": "– " + words(260)}, "document"),
        "lima": rows(ROWS["lima"], lambda: {"conversations": [words(40), words(330)], "source": "stackexchange"},
                     "source"),
        "codegen": rows(ROWS["codegen"], lambda: {"instruction": words(20), "input": "", "output": words(80)},
                        "instruction"),
        "flan_v2_cot": rows(ROWS["flan_v2_cot"], lambda: {"inputs": words(70), "targets": words(40),
                                                          "task_source": "CoT", "task_name": "cot_gsm8k",
                                                          "template_type": "zs_opt"}, "inputs"),
        "alpaca_2k_test": rows(ROWS["alpaca_2k_test"], lambda: {"instruction": words(13), "input": words(10)
                                                                if rng.random() < 0.4 else "", "output": words(45)},
                               "instruction"),
    }
    for name, data in sources.items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    return {name: len(data) for name, data in sources.items()}


def platypus_keep_loop(vectors: np.ndarray, threshold: float) -> list[int]:
    """Platypus' `data_similarity.ipynb` loop: each item against the list of kept vectors, first seen wins."""
    from sklearn.metrics.pairwise import cosine_similarity

    kept, existing = [], []
    for i, v in enumerate(vectors):
        if not kept or np.max(cosine_similarity([v], existing)) <= threshold:
            kept.append(i)
            existing.append(v)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the real row counts")
    parser.add_argument("--embed-rows", type=int, default=20000, help="rows embedded for real (and deduped)")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    log = []

    def say(line: str) -> None:
        print(line, flush=True)
        log.append(line)

    def timed(stage: str, fn):
        t0 = time.perf_counter()
        out = fn()
        times[stage] = time.perf_counter() - t0
        say(f"stage {stage:24s} {times[stage]:8.1f} s")
        return out

    times: dict[str, float] = {}
    mixture = load_mixture("v5")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        counts = timed("write synthetic sources", lambda: write_sources(src, args.scale))
        say(f"rows per source: {counts}")
        # The stages of build.build(), called one by one so each is timed (and embedding can stop at --embed-rows).
        paths = {e.source: find_source_file(e.source, src) for e in mixture.sources}
        loaded = timed("load", lambda: load_sources(mixture, paths).records)
        selected = timed("filter+select", lambda: filter_and_select(mixture, loaded, filter_rules()).records)
        timed("load embedding model", lambda: load_embedding_model(DEFAULT_MODEL))  # once per process, not per build row
        n = min(args.embed_rows, len(selected))
        real = timed(f"embed first {n} rows", lambda: embed([r.prompt_text for r in selected[:n]]))
        rate = n / times[f"embed first {n} rows"]
        say(f"embeddings/s {rate:.1f}; all {len(selected)} selected rows: {len(selected) / rate:.0f} s (extrapolated)")

        keep, _ = timed(f"near-dedup blocked, {n} rows", lambda: near_dup.keep_first_seen(real, 0.9))
        kept_loop = timed(f"near-dedup keep-loop, {n} rows", lambda: platypus_keep_loop(real, 0.9))
        same = np.flatnonzero(keep).tolist() == kept_loop
        ratio = times[f"near-dedup keep-loop, {n} rows"] / times[f"near-dedup blocked, {n} rows"]
        say(f"dedup ratio {ratio:.0f}x, identical kept set: {same} ({int(keep.sum())} of {n} kept)")

        # Dedup at full size: the real vectors plus random unit vectors for the rest (cost depends on n, not text).
        rng = np.random.default_rng(0)
        rest = rng.standard_normal((len(selected) - n, real.shape[1])).astype(np.float32)
        full = np.concatenate([real, rest / np.linalg.norm(rest, axis=1, keepdims=True)])
        timed(f"near-dedup blocked, {len(full)} rows", lambda: near_dup.keep_first_seen(full, 0.9))
        out = Build(selected, {"bench": True})
        timed("write", lambda: write_build(out, src / "v5.jsonl"))
        measured = sum(t for k, t in times.items() if k in ("load", "filter+select", "write")
                       or k == f"near-dedup blocked, {len(full)} rows")
        say(f"whole v5: {measured:.0f} s measured stages + {len(selected) / rate:.0f} s embedding (extrapolated) "
            f"= {measured + len(selected) / rate:.0f} s")
    write_report(args, log)


def write_report(args, log: list[str]) -> None:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    versions = {p: metadata.version(p) for p in ("axolotl-nextai", "sentence-transformers", "torch", "numpy",
                                                "scikit-learn")}
    today = dt.date.today().isoformat()
    path = args.results / f"data_build-{today}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# v5 data build at full size, {today}\n\n"
        f"- CPU: {cpu}, {torch.get_num_threads()} torch threads, shared with other developers' jobs\n"
        f"- Python {platform.python_version()}; " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "\n"
        f"- Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n\n```\n" + "\n".join(log) + "\n```\n")
    print(f"report: {path}")


if __name__ == "__main__":
    main()
