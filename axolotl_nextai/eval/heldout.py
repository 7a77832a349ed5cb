"""`--heldout`: the loss per response token on Alpaca rows never trained on, tokenized and masked as training
does; read and checked before the model loads, scored with plain torch (no lm-eval)."""

from __future__ import annotations

from pathlib import Path

from axolotl_nextai.eval.errors import EvalInputError


def read_heldout(path: Path) -> list[dict]:
    """The Alpaca rows of a held-out file; an EvalInputError naming file:line and the field on a bad one."""
    from data_builders.decontaminate import read_training_rows
    from data_builders.errors import DataError

    try:
        rows, _ = read_training_rows(path)
    except DataError as err:
        raise EvalInputError(str(err)) from None
    if not rows:
        raise EvalInputError(f"{path}: no rows")
    return rows


def heldout_examples(tokenizer, rows: list[dict], cutoff: int) -> tuple[list[dict], int]:
    """`rows` tokenized and masked as training does (prompt masked, EOS appended, cut at `cutoff`): those left
    with a response token inside the cutoff, and how many are not."""
    from axolotl_nextai.alpaca import tokenize_example

    examples = [
        tokenize_example(
            tokenizer,
            row["instruction"],
            row.get("input") or "",
            row["output"],
            cutoff,
            train_on_inputs=False,
        )
        for row in rows
    ]
    scored = [example for example in examples if any(label != -100 for label in example["labels"][1:])]
    return scored, len(examples) - len(scored)


def check_heldout_cutoff(base_model: str, rows: list[dict], cutoff: int) -> None:
    """An EvalInputError, before the model loads, when `cutoff` leaves no held-out row a response token to
    score."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base_model)
    except (OSError, ValueError):
        return  # transformers' "cannot load": loading the model says why, naming --base-model
    if not heldout_examples(tokenizer, rows, cutoff)[0]:
        raise EvalInputError(
            f"--heldout-cutoff {cutoff}: no held-out row keeps a response token within {cutoff} "
            f"tokens (the prompt fills all {len(rows)}); raise it to the recipe's sequence_len"
        )


def heldout_loss(model, tokenizer, rows: list[dict], cutoff: int) -> dict:
    """Mean loss per response token on Alpaca `rows` (see `heldout_examples`); each row's own mean kept for
    pairing. Rows left with no response token inside the cutoff are counted, not scored."""
    import torch

    total, tokens, per_row = 0.0, 0, []
    examples, skipped = heldout_examples(tokenizer, rows, cutoff)
    for example in examples:
        labels = torch.tensor(example["labels"][1:])
        n = int((labels != -100).sum())
        ids = torch.tensor([example["input_ids"]], device=model.device)
        with torch.inference_mode():
            logits = model(input_ids=ids).logits[0, :-1].float()
        loss = torch.nn.functional.cross_entropy(
            logits, labels.to(logits.device), ignore_index=-100, reduction="sum"
        ).item()
        total, tokens = total + loss, tokens + n
        per_row.append(loss / n)
    return {
        "loss": total / tokens if tokens else None,
        "rows": len(per_row),
        "tokens": tokens,
        "skipped_rows": skipped,
        "cutoff": cutoff,
        "per_row": per_row,
    }
