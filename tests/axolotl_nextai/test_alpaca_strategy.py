"""The Alpaca strategy, token by token, on the tiny model's real trained BPE tokenizer."""

import pytest

from axolotl_nextai.alpaca import IGNORE_INDEX, tokenize_example
from data_builders.alpaca_prompt import PROMPT_NO_INPUT, PROMPT_WITH_INPUT, render_prompt

NO_INPUT_TEXT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the "
    "request.\n\n### Instruction:\nName the largest planet.\n\n### Response:\n"
)
WITH_INPUT_TEXT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate the sentence "
    "into French.\n\n### Input:\nThe cat sleeps.\n\n### Response:\n"
)


def test_templates_are_stanford_alpaca():
    assert render_prompt("Name the largest planet.") == NO_INPUT_TEXT
    assert render_prompt("Translate the sentence into French.", "The cat sleeps.") == WITH_INPUT_TEXT
    assert PROMPT_NO_INPUT.count("{") == 1 and PROMPT_WITH_INPUT.count("{") == 2


@pytest.mark.parametrize(
    "instruction,input,output,prompt_text",
    [
        ("Name the largest planet.", "", "Jupiter.", NO_INPUT_TEXT),
        ("Translate the sentence into French.", "The cat sleeps.", "Le chat dort.", WITH_INPUT_TEXT),
    ],
)
def test_tokens_mask_and_eos(tiny_tokenizer, instruction, input, output, prompt_text):
    tok = tiny_tokenizer
    row = tokenize_example(tok, instruction, input, output, cutoff=256, train_on_inputs=False)

    full = tok(prompt_text + output)["input_ids"]
    prompt_ids = tok(prompt_text)["input_ids"]
    assert row["input_ids"] == full + [tok.eos_token_id]
    assert row["input_ids"][0] == tok.bos_token_id
    assert row["attention_mask"] == [1] * len(row["input_ids"])
    # the prompt is masked, the response and EOS are learned
    assert row["labels"][: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    assert row["labels"][len(prompt_ids) :] == row["input_ids"][len(prompt_ids) :]
    assert row["labels"][-1] == tok.eos_token_id
    # the masked span is exactly the prompt: the boundary does not swallow response tokens
    assert tok.decode(row["input_ids"][1 : len(prompt_ids)]) == prompt_text
    assert tok.decode(row["input_ids"][len(prompt_ids) : -1]) == output


def test_train_on_inputs_learns_everything(tiny_tokenizer):
    row = tokenize_example(
        tiny_tokenizer, "Name the largest planet.", "", "Jupiter.", 256, train_on_inputs=True
    )
    assert row["labels"] == row["input_ids"]


def test_cut_at_cutoff_without_eos(tiny_tokenizer):
    """As alpaca-lora: a row cut at the cutoff gets no EOS (it did not end)."""
    long_output = "Jupiter is very large. " * 50
    row = tokenize_example(
        tiny_tokenizer, "Describe Jupiter.", "", long_output, cutoff=64, train_on_inputs=False
    )
    assert len(row["input_ids"]) == 64
    assert tiny_tokenizer.eos_token_id not in row["input_ids"]
    assert len(row["labels"]) == 64


def test_axolotl_loads_strategy_by_module_path(tiny_tokenizer):
    """`type: axolotl_nextai.alpaca` resolves through Axolotl's own loader to our strategy."""
    from axolotl.prompt_strategies import load
    from axolotl.utils.dict import DictDefault

    cfg = DictDefault(train_on_inputs=False, sequence_len=256)
    strategy = load(
        "axolotl_nextai.alpaca", tiny_tokenizer, cfg, {"path": "x.jsonl", "type": "axolotl_nextai.alpaca"}
    )
    assert type(strategy).__name__ == "AlpacaStrategy"
    row = strategy.tokenize_prompt(
        {"instruction": "Name the largest planet.", "input": "", "output": "Jupiter."}
    )
    assert row == tokenize_example(tiny_tokenizer, "Name the largest planet.", "", "Jupiter.", 256, False)
