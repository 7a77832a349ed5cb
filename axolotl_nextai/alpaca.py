"""The paper's Alpaca prompt strategy: `type: axolotl_nextai.alpaca` in a recipe's `datasets:`.

Template (data_builders/alpaca_prompt.py) and tokenization follow Stanford Alpaca / alpaca-lora, which
Platypus' `finetune.py` (the nextAI team's starting point) uses: tokenize prompt + response as one text,
append EOS unless the text was cut at `sequence_len`, and mask the prompt's tokens (`-100`) unless
`train_on_inputs`. Tokenizing the whole text, not the two halves, keeps the tokens at the boundary the ones
the model sees at inference.
"""

from __future__ import annotations

from axolotl.prompt_tokenizers import IGNORE_INDEX, PromptTokenizingStrategy

from data_builders.alpaca_prompt import render_prompt


def tokenize_example(
    tokenizer, instruction: str, input: str, output: str, cutoff: int, train_on_inputs: bool
) -> dict:
    """input_ids / attention_mask / labels for one Alpaca row, as alpaca-lora's
    `generate_and_tokenize_prompt`."""
    prompt = render_prompt(instruction, input)
    ids = tokenizer(prompt + output, truncation=True, max_length=cutoff, add_special_tokens=True)["input_ids"]
    if len(ids) < cutoff and (not ids or ids[-1] != tokenizer.eos_token_id):
        ids = ids + [tokenizer.eos_token_id]
    labels = list(ids)
    if not train_on_inputs:
        prompt_len = len(
            tokenizer(prompt, truncation=True, max_length=cutoff, add_special_tokens=True)["input_ids"]
        )
        labels[:prompt_len] = [IGNORE_INDEX] * min(prompt_len, len(labels))
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


class AlpacaStrategy(PromptTokenizingStrategy):
    """Axolotl's strategy interface over `tokenize_example`; rows need `instruction` and `output`."""

    def tokenize_prompt(self, prompt: dict) -> dict:
        return tokenize_example(
            self.tokenizer,
            prompt["instruction"],
            prompt.get("input") or "",
            prompt["output"],
            self.sequence_len,
            self.train_on_inputs,
        )


def load(tokenizer, cfg, ds_cfg=None) -> AlpacaStrategy:
    """Axolotl's entry point for `type: axolotl_nextai.alpaca`."""
    return AlpacaStrategy(None, tokenizer, cfg.train_on_inputs, cfg.sequence_len)
