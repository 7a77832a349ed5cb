"""How fast is near-dedup (MiniLM cosine > 0.9, first seen wins) by each method, and does it keep the same
rows?

Real text with real near-duplicates: BBQ contexts + questions (template-generated: dense clusters), MMLU
questions with their lettered choices, LIMA prompts, Multi-News articles as the multi_news source words them.
A v5-sized set (--rows 45000) is every BBQ, MMLU and LIMA row plus the first 4,500 Multi-News rows (v5's 10
%), topped up with rows made from them: half light edits of a random real row (one or two of: drop, repeat or
swap a word, flip a word's capital, change the end punctuation: planted near-duplicates), half splices (the
start of one real row joined to the end of another: mostly new text). A smaller --rows samples the real rows
in the same proportion; everything is shuffled with a fixed seed. Each method runs in its own process (a
build's model load included, peak RSS its own) on the same rows; `exact` is the brute-force MiniLM pass on
torch the others must agree with. A method ending in `-openvino` (`exact-openvino`) runs MiniLM through
OpenVINO instead of torch; one with `-screen-fp16` or `-screen-bf16` (`exact-screen-fp16`,
`exact-screen-bf16-openvino`) embeds every row in that precision and only the rows low precision cannot decide
in fp32 (dedup/screen.py): fp32's kept set by construction. Prints the table and writes
bench/results/near_dedup-<date>-<rows>-<device>[-<tag>].md.

    .venv/bin/python bench/near_dedup.py --bbq DIR --mmlu DIR --lima FILE --multi-news FILE.jsonl.gz \\
        [--rows 45000] [--methods exact,prefilter,exact-openvino] [--device cpu|cuda] [--tag NAME]

Needs only numpy, sentence-transformers (+ torch), model2vec for the prefilter, openvino for `-openvino` and
this repository's data_builders/dedup: it runs on a machine without the rest of the package's dependencies.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import json
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # data_builders without installing the package

V5_ROWS = 45_000
SCREEN = "-screen-"  # method part: a low-precision screen (dedup/screen.py), e.g. exact-screen-fp16
ROOT = Path(__file__).resolve().parents[1]
# BBQ, the paper's 17 MMLU subjects (SOURCES.md there)
ITEMS = ROOT / "data_builders" / "benchmark_items" / "full"
REAL = ROOT / "data_builders" / "real" / "rows"  # real LIMA and Multi-News rows (README.md there)
OPENVINO = "-openvino"  # method suffix: MiniLM on OpenVINO fp32 instead of torch
MULTI_NEWS_ROWS = 4_500  # v5 takes 10 % of Multi-News' 44,972 rows
MULTI_NEWS_INSTRUCTION = "Summarize the following news articles in one paragraph."  # as sources/multi_news.py


def lettered(question: str, choices: list[str]) -> str:
    return question + "".join(f"\n{chr(65 + i)}. {c}" for i, c in enumerate(choices))


def json_lines(path: Path) -> list[dict]:
    """The rows of a JSONL file, gzipped or not."""
    data = path.read_bytes()
    return [
        json.loads(line) for line in (gzip.decompress(data) if path.suffix == ".gz" else data).splitlines()
    ]


def real_rows(args) -> list[tuple[str, str]]:
    """(source, text) of every real row, source by source: the repository's own converted items unless a
    folder or file of the originals is given."""
    bbq = (
        [r for path in sorted(args.bbq.glob("*.jsonl")) for r in json_lines(path)]
        if args.bbq
        else json_lines(ITEMS / "bbq.jsonl.gz")
    )  # BBQ's data/ folder: <Category>.jsonl
    rows = [("bbq", f"{r['context']}\n{r['question']}") for r in bbq]
    if args.mmlu:  # MMLU's data/ folder: dev, val, test CSVs without a header (question, A-D, answer)
        rows += [
            ("mmlu", lettered(r[0], r[1:5]))
            for path in sorted(args.mmlu.glob("*/*.csv"))
            for r in csv.reader(io.StringIO(path.read_text(), newline=""))
        ]
    else:  # the paper's 17 subjects, test items (benchmark_releases.py converted them from the same CSVs)
        rows += [
            ("mmlu", lettered(r["question"], r["choices"]))
            for path in sorted(ITEMS.glob("mmlu_*.jsonl.gz"))
            for r in json_lines(path)
        ]
    rows += [("lima", r["conversations"][0]) for r in json_lines(args.lima or REAL / "lima.jsonl.gz")]
    for r in json_lines(args.multi_news or REAL / "multi_news.jsonl.gz")[:MULTI_NEWS_ROWS]:
        articles = [a.strip() for a in r["document"].split("|||||") if a.strip()]
        text = "\n\n".join(f"Article {i}:\n{a}" for i, a in enumerate(articles, start=1))
        rows.append(("multi_news", f"{MULTI_NEWS_INSTRUCTION}\n{text}"))
    return rows


def edit(text: str, rng: random.Random) -> str:
    """A light edit: one or two of drop / repeat / swap a word, flip a word's capital, change end
    punctuation."""
    words = text.split(" ")
    for _ in range(rng.choice((1, 2))):
        i, kind = rng.randrange(len(words)), rng.randrange(5)
        if kind == 0 and len(words) > 3:
            del words[i]
        elif kind == 1:
            words.insert(i, words[i])
        elif kind == 2 and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
        elif kind == 3:
            words[i] = words[i].lower() if words[i][:1].isupper() else words[i].capitalize()
        else:
            words[-1] = words[-1].rstrip(".?!") + rng.choice(("", ".", "?", "!"))
    return " ".join(words)


def splice(a: str, b: str, rng: random.Random) -> str:
    """The start of `a` joined to the end of `b`, cut at random words: mostly a new text."""
    wa, wb = a.split(" "), b.split(" ")
    return " ".join(wa[: rng.randint(1, len(wa))] + wb[rng.randint(0, len(wb) - 1) :])


def make_set(
    real: list[tuple[str, str]], rows: int, edit_share: float, seed: int = 0
) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    base = real if rows >= V5_ROWS else rng.sample(real, round(rows * len(real) / V5_ROWS))
    out = list(base)
    while len(out) < rows:
        source, text = rng.choice(base)
        if rng.random() < edit_share:
            out.append((f"{source}+edit", edit(text, rng)))
        else:
            out.append((f"{source}+splice", splice(text, rng.choice(base)[1], rng)))
    rng.shuffle(out)
    return out[:rows]


def save_model(folder: Path) -> None:
    """The bundled MiniLM, weights rounded to fp16 to halve the file, config saying float32 so it loads (and
    runs) in fp32: the same compute and time as the real one, cosines within ~5e-4 of it."""
    from sentence_transformers import SentenceTransformer

    from data_builders.dedup.embed import DEFAULT_MODEL, resolve_model

    SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu").half().save(str(folder))
    config = json.loads((folder / "config.json").read_text())
    config.update({key: "float32" for key in ("dtype", "torch_dtype") if key in config})
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def save_skeleton(folder: Path) -> None:
    """The bundled MiniLM without its weights (~1 MB: config, tokenizer, pooling): what a GPU call can carry
    beside everything else. `fill_random_weights` completes it there for a timing-only run."""
    save_model(folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()


def fill_random_weights(folder: Path) -> bool:
    """Give a skeleton folder random weights of MiniLM's shape (the same compute, so the same time; decisions
    meaningless). False when the folder already has weights."""
    if any(folder.glob("*.safetensors")):
        return False
    from transformers import AutoConfig, AutoModel

    AutoModel.from_config(AutoConfig.from_pretrained(folder)).save_pretrained(folder)
    return True


def save_rows(rows: list[tuple[str, str]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps({"source": s, "text": t}) + "\n" for s, t in rows)
    return path


def worker(
    method: str, corpus: Path, device: str, out: Path, model: str | None, batch_size: int | None
) -> None:
    """One method on the saved rows, in this process: keep mask and numbers to `out`."""
    from data_builders.dedup.embed import DEFAULT_MODEL
    from data_builders.dedup.stage import near_dedup

    with gzip.open(corpus, "rt") as f:
        texts = [json.loads(line)["text"] for line in f]
    wall, cpu = time.perf_counter(), time.process_time()
    if method == "prefilter-stage":
        found = prefilter_stage(texts, model or DEFAULT_MODEL, device)
    else:
        encoder = "openvino" if method.endswith(OPENVINO) else "torch"
        name, _, screen = method.removesuffix(OPENVINO).partition(SCREEN)
        found = near_dedup(
            texts,
            model=model or DEFAULT_MODEL,
            method=name,
            device=device,
            encoder=encoder,
            batch_size=batch_size,
            screen=screen or "off",
        )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    gpu_mib = None
    if found.stats["device"].startswith("cuda"):
        import torch

        gpu_mib = torch.cuda.max_memory_allocated() / 2**20
    np.save(out.with_suffix(".npy"), found.keep)
    out.write_text(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "gpu_mib": gpu_mib,
                "stats": found.stats,
            }
        )
    )


def prefilter_stage(texts: list[str], model: str, device: str, sample: int = 5000):
    """The prefilter alone (static embeddings + neighbour search: HNSW above 200k rows), to size what MiniLM
    would then embed at scale; and how many of `sample` random rows' exact static neighbours it found."""
    from data_builders.dedup import prefilter
    from data_builders.dedup.stage import NearDedup

    vectors = prefilter.static_embed(texts, prefilter.static_model(model, device=device))
    flagged = prefilter.with_neighbour(vectors)
    rows = np.random.default_rng(0).choice(len(texts), min(sample, len(texts)), replace=False)
    best = np.full(len(rows), -1.0, dtype=np.float32)
    for c in range(0, len(texts), 8192):
        sims = vectors[rows] @ vectors[c : c + 8192].T
        sims[rows[:, None] == np.arange(c, c + sims.shape[1])[None, :]] = -1  # not the row itself
        best = np.maximum(best, sims.max(axis=1))
    truth = best >= prefilter.THRESHOLD
    stats = {
        "device": device,
        "rows_embedded": 0,
        "rows_with_a_neighbour": int(flagged.sum()),
        "sample_recall": f"{int((flagged[rows] & truth).sum())} of {int(truth.sum())} sampled rows with a "
        f"neighbour found (exact search over all rows)",
    }
    return NearDedup(np.ones(len(texts), dtype=bool), [], vectors[:0], flagged, stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bbq",
        type=Path,
        help="folder of BBQ <Category>.jsonl files (default: the repository's "
        "data_builders/benchmark_items/full/bbq.jsonl.gz, the same 6 categories)",
    )
    parser.add_argument(
        "--mmlu",
        type=Path,
        help="MMLU data/ folder, dev/ val/ test/ CSVs of all 57 subjects "
        "(default: the repository's test items of the paper's 17 subjects)",
    )
    parser.add_argument(
        "--lima",
        type=Path,
        help="LIMA JSONL with `conversations` (default: the repository's "
        "data_builders/real/rows/lima.jsonl.gz, 979 rows)",
    )
    parser.add_argument(
        "--multi-news",
        type=Path,
        help="Multi-News JSONL.gz with `document` (default: the "
        "repository's data_builders/real/rows/multi_news.jsonl.gz, 1,000 rows)",
    )
    parser.add_argument(
        "--rows-file", type=Path, help="read the rows a --save-rows run wrote instead of the sources"
    )
    parser.add_argument(
        "--save-rows", type=Path, help="write the rows (JSONL.gz) for a later --rows-file run, and stop"
    )
    parser.add_argument("--model", help="MiniLM folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument(
        "--save-model",
        type=Path,
        help="write the bundled MiniLM with its weights stored in fp16 "
        "(45 MB, loads as fp32) for a machine its 87 MB will not travel to, and stop",
    )
    parser.add_argument(
        "--save-skeleton",
        type=Path,
        help="write the bundled MiniLM without weights (~1 MB); a "
        "--model run on it fills random weights: timing only, for a GPU call's size limit",
    )
    parser.add_argument(
        "--rows", type=int, default=V5_ROWS, help="rows to make (or to read from --rows-file)"
    )
    parser.add_argument(
        "--edit-share", type=float, default=0.5, help="share of added rows that are light edits"
    )
    parser.add_argument("--methods", default="exact,prefilter")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--batch-size",
        type=int,
        help="MiniLM rows per forward pass (default: a build's, 32 on a CPU, 128 on a GPU)",
    )
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--tag", help="appended to the report's name, so a second run of a day keeps the first"
    )
    parser.add_argument("--worker", nargs=3, metavar=("METHOD", "CORPUS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.save_model:
        return save_model(args.save_model)
    if args.save_skeleton:
        return save_skeleton(args.save_skeleton)
    if args.worker:
        return worker(
            args.worker[0],
            Path(args.worker[1]),
            args.device,
            Path(args.worker[2]),
            args.model,
            args.batch_size,
        )
    log: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        log.append(line)

    if args.rows_file:
        with gzip.open(args.rows_file, "rt") as f:
            rows = [(r["source"], r["text"]) for r in map(json.loads, f)][: args.rows]
    else:
        rows = make_set(real_rows(args), args.rows, args.edit_share)
    if args.save_rows:
        return save_rows(rows, args.save_rows)
    counts: dict[str, int] = {}
    for source, _ in rows:
        counts[source] = counts.get(source, 0) + 1
    if args.model and fill_random_weights(Path(args.model)):
        say(f"{args.model}: random weights of MiniLM's shape (timing only: its decisions mean nothing)")
    say(f"rows {len(rows)}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    methods = args.methods.split(",")
    if "prefilter" in methods:  # distilled once per machine, then cached: not part of a build's time
        from data_builders.dedup.embed import DEFAULT_MODEL
        from data_builders.dedup.prefilter import static_model

        t0 = time.perf_counter()
        static_model(DEFAULT_MODEL, device=args.device)
        say(f"static model ready in {time.perf_counter() - t0:.1f} s (distilled on first use, then cached)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = save_rows(rows, Path(tmp) / "rows.jsonl.gz")
        for method in methods:
            out = Path(tmp) / f"{method}.json"
            model = ["--model", args.model] if args.model else []
            batch = ["--batch-size", str(args.batch_size)] if args.batch_size else []
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--device",
                    args.device,
                    *model,
                    *batch,
                    "--worker",
                    method,
                    str(corpus),
                    str(out),
                ],
                check=True,
            )
            results[method] = {**json.loads(out.read_text()), "keep": np.load(out.with_suffix(".npy"))}
    say(table(results, len(rows), args.device))
    for method, r in results.items():
        if "screen_stats" in r["stats"]:
            say(f"{method}: " + ", ".join(f"{k} {v}" for k, v in r["stats"]["screen_stats"].items()))
        if "seconds" in r["stats"]:
            say(
                f"{method}: near-dedup stage {r['stats']['seconds']} s wall, of which embedding "
                f"{r['stats'].get('embed_seconds', '-')} s"
            )
        if "rows_with_a_neighbour" in r["stats"]:
            say(
                f"{method}: {r['stats']['rows_with_a_neighbour']} rows with a static neighbour at >= the "
                "prefilter threshold"
                + (f"; {r['stats']['sample_recall']}" if "sample_recall" in r["stats"] else "")
            )
    if "exact" in results:
        for method, r in results.items():
            diff = np.flatnonzero(r["keep"] != results["exact"]["keep"])
            for i in diff[:20]:
                say(
                    f"  {method} disagrees on row {i} ({rows[i][0]}, exact keeps it: "
                    f"{results['exact']['keep'][i]}): {rows[i][1][:100]!r}"
                )
        base = results["exact"]
        if len(results) > 1:
            say(
                "ratios to exact: "
                + ", ".join(
                    f"{m} {base['wall'] / r['wall']:.2f}x wall, {base['cpu'] / r['cpu']:.2f}x CPU"
                    for m, r in results.items()
                    if m != "exact"
                )
            )
    write_report(args, log)


def table(results: dict, n: int, device: str) -> str:
    head = (
        f"{'rows':>8} {'method':14} {'device':6} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>12} "
        f"{'GPU MiB':>8} {'MiniLM rows':>11} {'kept':>7}  agreement with exact"
    )
    lines = [head]
    for method, r in results.items():
        agree = (
            "-"
            if "exact" not in results
            else f"{np.mean(r['keep'] == results['exact']['keep']):.4%} "
            f"({int((r['keep'] != results['exact']['keep']).sum())} rows differ)"
        )
        gpu = f"{r['gpu_mib']:.0f}" if r["gpu_mib"] else "-"
        lines.append(
            f"{n:>8} {method:14} {r['stats']['device']:6} {r['wall']:>8.1f} {r['cpu']:>8.1f} "
            f"{r['rss_mib']:>12.0f} {gpu:>8} {r['stats']['rows_embedded']:>11} "
            f"{int(r['keep'].sum()):>7}  {agree}"
        )
    return "\n".join(lines)


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
    for package in (
        "sentence-transformers",
        "torch",
        "transformers",
        "numpy",
        "model2vec",
        "usearch",
        "openvino",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    today = dt.date.today().isoformat()
    path = (
        args.results / f"near_dedup-{today}-{args.rows}-{args.device}{'-' + args.tag if args.tag else ''}.md"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# Near-dedup by method, {args.rows} rows, {today}\n\n"
        f"- Machine: {cpu}, {torch.get_num_threads()} torch threads\n"
        f"- Python {platform.python_version()}; " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "\n"
        f"- Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n\n```\n"
        + "\n".join(log)
        + "\n```\n"
    )
    print(f"report: {path}")


if __name__ == "__main__":
    main()
