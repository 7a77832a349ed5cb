"""Alpaca rows whose token lengths follow the v5 mixture, for timing the 70B recipe on synthetic weights.

Speed at micro-batch 1 depends on tokens per micro-step, so the rows must be as long as v5's are. The table
below is our estimate of each v5 source's length in Llama-2 tokens (template included), as a log-normal median
and spread, cut at the recipe's 1,024-token cutoff; row counts are Table 7's shares of data-sources.md's
sizes. Text is built from single-token words of the synthetic checkpoint's tokenizer, so a row of n words is
~n tokens.

    python bench/gpu/v5_shaped.py --tokenizer CKPT --rows 2000 --out data/v5-shaped.jsonl
    python bench/gpu/v5_shaped.py --tokenizer CKPT --grouped 12 --out data/v5-grouped.jsonl  # 12 steps' rows
    # all 4,064 tokens
    python bench/gpu/v5_shaped.py --tokenizer CKPT --rows 64 --tokens 4064 --out data/v5-4096.jsonl

Without packing, what a step costs depends on its rows' lengths, and `group_by_length` serves each group of
200 rows longest first: a short run over random rows measures only long rows. `--grouped K` writes, in order,
a warm-up step of 4 rows at the cutoff (the report leaves the first step out: one-off costs), then the rows of
K optimizer steps of 4 picked at evenly spaced quantiles of step length among the steps `group_by_length`
forms over a whole v5 epoch: read in file order (Axolotl's `curriculum_sampling`), steps 2 to K + 1 see v5's
spread of step lengths, each step's rows as alike as in an epoch. `--tokens N` makes every row N tokens long
instead: the cutoff-4,096 tables measure the peak, which the longest row sets.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from pathlib import Path

# source: (rows in v5, median tokens, log-normal sigma)
V5_LENGTHS = {
    "dolly": (15011, 150, 0.8),
    "open_platypus": (20605, 280, 0.7),
    "codegen": (400, 300, 0.6),
    "faithdial": (3680, 170, 0.3),
    "multi_news": (4497, 2600, 0.5),  # articles far beyond the cutoff: nearly every row is cut at 1,024
    "lima": (1030, 650, 0.7),
}
CUTOFF = 1024
MIN_TOKENS = 48


def v5_rows() -> int:
    return sum(rows for rows, _, _ in V5_LENGTHS.values())


def sample_lengths(n: int, seed: int = 0, scale: float = 1.0) -> list[tuple[str, int]]:
    """n (source, tokens) pairs drawn in v5's source proportions; `scale` shrinks lengths and cutoff alike,
    for a model whose context is shorter than the paper's 1,024 tokens (the tiny CPU Llama)."""
    rng = random.Random(seed)
    sources = list(V5_LENGTHS)
    weights = [V5_LENGTHS[s][0] for s in sources]
    out = []
    for source in rng.choices(sources, weights, k=n):
        _, median, sigma = V5_LENGTHS[source]
        tokens = min(CUTOFF, max(MIN_TOKENS, round(rng.lognormvariate(math.log(median), sigma))))
        out.append((source, round(tokens * scale)))
    return out


def epoch_steps(seed: int = 0, batch: int = 4) -> list[list[tuple[str, int]]]:
    """A whole v5 epoch's rows, cut into optimizer steps of `batch` rows as `group_by_length` forms them
    (transformers' LengthGroupedSampler: shuffled, each group of 50 steps' rows sorted by length, then
    cut)."""
    rows = sample_lengths(v5_rows(), seed)
    order = random.Random(seed).sample(range(len(rows)), len(rows))
    group = 50 * batch
    steps = []
    for start in range(0, len(order), group):
        ranked = sorted(order[start : start + group], key=lambda i: -rows[i][1])
        steps += [[rows[i] for i in ranked[k : k + batch]] for k in range(0, len(ranked), batch)]
    return steps


def grouped_lengths(steps: int, seed: int = 0, batch: int = 4) -> list[tuple[str, int]]:
    """The rows of `steps` steps of `epoch_steps`, picked at evenly spaced quantiles of their mean row length;
    after a warm-up step of rows at the cutoff."""
    formed = sorted(
        (s for s in epoch_steps(seed, batch) if len(s) == batch),
        key=lambda step: statistics.fmean(tokens for _, tokens in step),
    )
    picked = [formed[int((k + 0.5) * len(formed) / steps)] for k in range(steps)]
    return [("warm-up", CUTOFF)] * batch + [row for step in picked for row in step]


def single_token_words(tokenizer) -> list[str]:
    """Words that the tokenizer encodes, with their leading space, as exactly one token."""
    words = []
    for token in tokenizer.get_vocab():
        word = tokenizer.convert_tokens_to_string([token])
        if (
            word.startswith(" ")
            and word[1:].isalpha()
            and len(tokenizer(word, add_special_tokens=False)["input_ids"]) == 1
        ):
            words.append(word[1:])
    return sorted(words)


def make_rows(
    tokenizer, n: int, seed: int = 0, scale: float = 1.0, zipf: bool = False, tokens: int | None = None
) -> list[dict]:
    """Rows of uniformly drawn words (timing needs only lengths); `zipf` draws word i with weight 1/(i+1),
    text with word frequencies a model can learn, for comparing loss curves. `tokens`: every row that long
    instead, sources still drawn in v5's proportions."""
    lengths = [(source, tokens or length) for source, length in sample_lengths(n, seed, scale)]
    return rows_of_lengths(tokenizer, lengths, seed, zipf)


def rows_of_lengths(
    tokenizer, lengths: list[tuple[str, int]], seed: int = 0, zipf: bool = False
) -> list[dict]:
    """One Alpaca row per (source, tokens) of `lengths`, as `make_rows` words them."""
    from data_builders.alpaca_prompt import PROMPT_NO_INPUT

    rng = random.Random(seed + 1)
    words = single_token_words(tokenizer)
    weights = [1 / (i + 1) for i in range(len(words))] if zipf else None
    template_tokens = len(tokenizer(PROMPT_NO_INPUT.format(instruction=""))["input_ids"]) + 1  # + EOS
    rows = []
    for source, tokens in lengths:
        body = tokens - template_tokens
        instruction = max(4, body // 10)
        rows.append(
            {
                "instruction": " ".join(rng.choices(words, weights, k=instruction)),
                "input": "",
                "output": " ".join(rng.choices(words, weights, k=body - instruction)),
                "source": source,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument(
        "--grouped",
        type=int,
        metavar="STEPS",
        help="instead of --rows random rows: the rows of STEPS representative steps of 4",
    )
    parser.add_argument("--tokens", type=int, help="every row this many tokens (template and EOS included)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.grouped and args.tokens:
        parser.error("--grouped takes its rows' lengths from v5: give --tokens only with --rows")
    from transformers import AutoTokenizer

    from data_builders.atomic import atomic_write

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    if args.grouped:
        rows = rows_of_lengths(tokenizer, grouped_lengths(args.grouped, args.seed), args.seed)
    else:
        rows = make_rows(tokenizer, args.rows, args.seed, tokens=args.tokens)
    with atomic_write(args.out) as out:  # a call cut off mid-write leaves no half file for the next to reuse
        out.write("".join(json.dumps(r) + "\n" for r in rows))
    shape = f"{args.tokens:,}-token" if args.tokens else "v5-shaped"
    print(f"{len(rows)} {shape} rows -> {args.out} (v5 has ~{v5_rows():,} rows before dedup)")


if __name__ == "__main__":
    main()
