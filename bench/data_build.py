"""How long does `nextai-data build` take at full size, from reading the sources to the written set, on this
machine's CPU or GPU; does another device keep the same rows; and how much does a second mixture gain from the
first one's embedding cache?

Writes every v5 source at its real row count and roughly its real text lengths (word salad drawn from the
shipped sample's vocabulary, 1 % of rows planted as light edits of an earlier row), then builds each
--mixtures entry from them through `build()` and `write_build()`, the command's own code, timing each (wall
and CPU) and printing the near-dedup stage's own split (embedding, selection, the low-precision screen). With
--cache-dir, the mixtures share one embedding cache, so the second build embeds only rows the first did not.
With --compare-device, the first mixture is built again there and the two written sets must be byte-identical.
Prints one line per build and writes bench/results/data_build-<date>-<device>[-<tag>].md.

    python bench/data_build.py [--scale 1.0] [--mixtures v5,v4] [--device cpu|cuda] [--compare-device cpu] \
        [--cache-dir DIR] [--model DIR] [--screen auto|off|fp16|bf16] [--tag NAME]

Needs this repository's data_builders, pydantic and PyYAML (no `datasets`: the sources are local files),
numpy, torch and sentence-transformers (openvino on a CPU where installed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import resource
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # data_builders without installing the package

from data_builders.build import BuildOptions, build
from data_builders.mixing import load_mixture
from data_builders.sources import sample_dir
from data_builders.writers import write_build

# Real row counts (data_builders/README.md, Sources); mean words per field, roughly as in each dataset.
PLATYPUS_SUBSETS = {
    "MATH/PRM-800K": 12298,
    "ARB": 713,
    "scienceqa": 1317,
    "scibench": 616,
    "theoremqa": 564,
    "reclor": 4530,
    "tigerbot-kaggle": 386,
    "leetcode_ne": 1100,
    "airoboros": 2605,
    "guanaco": 797,
}
ROWS = {
    "dolly": 15011,
    "faithdial": 18357,
    "multi_news": 44972,
    "lima": 1030,
    "codegen": 4000,
    "flan_v2_cot": 183848,
    "alpaca_2k_test": 2000,
}
PLANTED = 0.01


def vocabulary() -> list[str]:
    words = set()
    for path in sample_dir().glob("*.jsonl"):
        for line in path.read_text().splitlines():
            words.update(
                w.lower()
                for v in json.loads(line).values()
                if isinstance(v, str)
                for w in v.split()
                if w.isalpha()
            )  # plain words tokenize like English prose (~1.3 word pieces each)
    return sorted(words)


def write_sources(folder: Path, scale: float, seed: int = 0) -> dict[str, int]:
    rng = random.Random(seed)
    vocab = vocabulary()

    def words(mean: int) -> str:
        return " ".join(rng.choices(vocab, k=max(1, int(rng.expovariate(1 / mean)) + mean // 4)))

    def rows(n: int, make, planted_key: str) -> list[dict]:
        out = []
        for _ in range(max(1, int(n * scale))):
            row = make()
            if out and rng.random() < PLANTED:  # a light edit of an earlier row's prompt
                row[planted_key] = out[rng.randrange(len(out))][planted_key].rstrip(".?") + "?"
            out.append(row)
        return out

    subsets = [s for s, n in PLATYPUS_SUBSETS.items() for _ in range(n)]
    rng.shuffle(subsets)
    sources = {
        "open_platypus": rows(
            len(subsets),
            lambda: {
                "instruction": words(60),
                "input": "",
                "output": words(120),
                "data_source": subsets[rng.randrange(len(subsets))],
            },
            "instruction",
        ),
        "dolly": rows(
            ROWS["dolly"],
            lambda: {
                "instruction": words(12),
                "context": words(90) if rng.random() < 0.3 else "",
                "response": words(50),
                "category": "open_qa",
            },
            "instruction",
        ),
        "faithdial": rows(
            ROWS["faithdial"],
            lambda: {
                "history": [words(15) for _ in range(rng.choice([1, 3, 5]))],
                "knowledge": words(25),
                "response": words(20),
                "original_response": words(20),
                "BEGIN": [],
                "VRM": [],
                "dialog_idx": 0,
            },
            "knowledge",
        ),
        "multi_news": rows(
            ROWS["multi_news"],
            lambda: {"document": " ||||| ".join(words(500) for _ in range(4)), "summary": "– " + words(260)},
            "document",
        ),
        "lima": rows(
            ROWS["lima"],
            lambda: {"conversations": [words(40), words(330)], "source": "stackexchange"},
            "source",
        ),
        "codegen": rows(
            ROWS["codegen"],
            lambda: {"instruction": words(20), "input": "", "output": words(80)},
            "instruction",
        ),
        "flan_v2_cot": rows(
            ROWS["flan_v2_cot"],
            lambda: {
                "inputs": words(70),
                "targets": words(40),
                "task_source": "CoT",
                "task_name": "cot_gsm8k",
                "template_type": "zs_opt",
            },
            "inputs",
        ),
        "alpaca_2k_test": rows(
            ROWS["alpaca_2k_test"],
            lambda: {
                "instruction": words(13),
                "input": words(10) if rng.random() < 0.4 else "",
                "output": words(45),
            },
            "instruction",
        ),
    }
    for name, data in sources.items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    return {name: len(data) for name, data in sources.items()}


def timed_build(mixture: str, src: Path, out: Path, options: BuildOptions) -> dict:
    """One build, as `nextai-data build --source-dir SRC` runs it; its times and the near-dedup stage's
    stats."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = build(load_mixture(mixture), options)
    write_build(result, out)
    stages = result.manifest["stages"]
    return {
        "mixture": mixture,
        "device": stages["near_dedup"]["device"],
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "rows": stages["select"]["out"],
        "kept": stages["near_dedup"]["out"],
        "near_dedup": stages["near_dedup"],
        "out": out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the real row counts")
    parser.add_argument("--mixtures", default="v5", help="comma-separated, built in order (e.g. v5,v4)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compare-device", help="build the first mixture again on this device: same files?")
    parser.add_argument("--cache-dir", type=Path, help="share one embedding cache between the mixtures")
    parser.add_argument("--model", help="embedding model folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--screen", default="auto", help="near-dedup's low-precision screen (dedup/stage.py)")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--tag", help="appended to the report's name")
    args = parser.parse_args()
    log: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        log.append(line)

    options = {
        "device": args.device,
        "cache_dir": args.cache_dir,
        "screen": args.screen,
        **({"model": args.model} if args.model else {}),
    }
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "sources"
        src.mkdir()
        t0 = time.perf_counter()
        counts = write_sources(src, args.scale)
        say(f"synthetic sources in {time.perf_counter() - t0:.1f} s: {counts}")
        runs = [
            timed_build(m, src, Path(tmp) / m / f"{m}.jsonl", BuildOptions(source_dir=src, **options))
            for m in args.mixtures.split(",")
        ]
        if args.compare_device:
            other = {**options, "device": args.compare_device, "cache_dir": None}
            runs.append(
                timed_build(
                    runs[0]["mixture"],
                    src,
                    Path(tmp) / "compare" / f"{runs[0]['mixture']}.jsonl",
                    BuildOptions(source_dir=src, **other),
                )
            )
        say(
            f"{'mixture':8} {'device':7} {'rows':>7} {'kept':>7} {'wall s':>8} {'CPU s':>8} {'fp32 rows':>9} "
            f"{'of which cached':>15} {'near-dedup s':>12}  screen"
        )
        for r in runs:
            nd = r["near_dedup"]
            screen = nd.get("screen_stats")
            say(
                f"{r['mixture']:8} {r['device']:7} {r['rows']:>7} {r['kept']:>7} {r['wall']:>8.1f} "
                f"{r['cpu']:>8.1f} {nd['rows_embedded']:>9} {nd.get('fp32_from_cache', '-'):>15} "
                f"{nd['seconds']:>12}  "
                + (
                    f"{nd['screen']}: " + ", ".join(f"{k} {v}" for k, v in screen.items())
                    if screen
                    else "off"
                )
            )
        if args.compare_device:
            same = all(
                (
                    runs[0]["out"].with_name(runs[0]["out"].name.replace(".jsonl", s)).read_bytes()
                    == runs[-1]["out"].with_name(runs[-1]["out"].name.replace(".jsonl", s)).read_bytes()
                )
                for s in (".jsonl", ".dropped.jsonl")
            )
            say(f"{runs[0]['device']} vs {runs[-1]['device']}: written rows byte-identical: {same}")
        import torch

        if torch.cuda.is_available():
            say(f"peak GPU memory allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
        say(f"peak host RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    write_report(args, log)


def write_report(args, log: list[str]) -> None:
    import torch

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    if args.device.startswith("cuda"):
        cpu += f"; GPU {torch.cuda.get_device_name()}"
    versions = {}
    for package in ("sentence-transformers", "torch", "transformers", "numpy", "openvino"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    today = dt.date.today().isoformat()
    path = args.results / f"data_build-{today}-{args.device}{'-' + args.tag if args.tag else ''}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# Data build at scale {args.scale}, {today}\n\n"
        f"- Machine: {cpu}, {torch.get_num_threads()} torch threads\n"
        f"- Python {platform.python_version()}; " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "\n"
        f"- Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n\n```\n"
        + "\n".join(log)
        + "\n```\n"
    )
    print(f"report: {path}")


if __name__ == "__main__":
    main()
