"""Alpaca rows whose token lengths follow the v5 mixture, for timing the 70B recipe on synthetic weights.

Speed at micro-batch 1 depends on tokens per micro-step, so the rows must be as long as v5's are. The table
below is our estimate of each v5 source's length in Llama-2 tokens (template included), as a log-normal median
and spread, cut at the recipe's 1,024-token cutoff; row counts are Table 7's shares of data-sources.md's sizes.
Text is built from single-token words of the synthetic checkpoint's tokenizer, so a row of n words is ~n tokens.

    python bench/gpu/v5_shaped.py --tokenizer CKPT --rows 2000 --out data/v5-shaped.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import random
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
    """n (source, tokens) pairs drawn in v5's source proportions; `scale` shrinks lengths and cutoff alike, for a
    model whose context is shorter than the paper's 1,024 tokens (the tiny CPU Llama)."""
    rng = random.Random(seed)
    sources = list(V5_LENGTHS)
    weights = [V5_LENGTHS[s][0] for s in sources]
    out = []
    for source in rng.choices(sources, weights, k=n):
        _, median, sigma = V5_LENGTHS[source]
        tokens = min(CUTOFF, max(MIN_TOKENS, round(rng.lognormvariate(math.log(median), sigma))))
        out.append((source, round(tokens * scale)))
    return out


def single_token_words(tokenizer) -> list[str]:
    """Words that the tokenizer encodes, with their leading space, as exactly one token."""
    words = []
    for token in tokenizer.get_vocab():
        word = tokenizer.convert_tokens_to_string([token])
        if word.startswith(" ") and word[1:].isalpha() and len(tokenizer(word, add_special_tokens=False)["input_ids"]) == 1:
            words.append(word[1:])
    return sorted(words)


def make_rows(tokenizer, n: int, seed: int = 0, scale: float = 1.0, zipf: bool = False,
              tokens: int | None = None) -> list[dict]:
    """Rows of uniformly drawn words (timing needs only lengths); `zipf` draws word i with weight 1/(i+1), text with
    word frequencies a model can learn, for comparing loss curves. `tokens`: every row that long instead (the
    cutoff-4,096 tables measure the peak, which the longest row sets), sources still drawn in v5's proportions."""
    from axolotl_nextai.alpaca import PROMPT_NO_INPUT

    rng = random.Random(seed + 1)
    words = single_token_words(tokenizer)
    weights = [1 / (i + 1) for i in range(len(words))] if zipf else None
    template_tokens = len(tokenizer(PROMPT_NO_INPUT.format(instruction=""))["input_ids"]) + 1  # + EOS
    rows = []
    for source, length in sample_lengths(n, seed, scale):
        body = (tokens or length) - template_tokens
        instruction = max(4, body // 10)
        rows.append({
            "instruction": " ".join(rng.choices(words, weights, k=instruction)),
            "input": "",
            "output": " ".join(rng.choices(words, weights, k=body - instruction)),
            "source": source,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokens", type=int, help="every row this many tokens (template and EOS included)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = make_rows(tokenizer, args.rows, args.seed, tokens=args.tokens)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    shape = f"{args.tokens:,}-token" if args.tokens else "v5-shaped"
    print(f"{args.rows} {shape} rows -> {args.out} (v5 has ~{v5_rows():,} rows before dedup)")


if __name__ == "__main__":
    main()
