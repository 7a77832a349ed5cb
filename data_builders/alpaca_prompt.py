"""The Alpaca prompt template the paper trains and is served with (Stanford Alpaca / alpaca-lora, as Platypus'
`finetune.py` uses it). Here, below both packages: the builder counts tokens with it, the plugin's prompt
strategy (`axolotl_nextai.alpaca`) tokenizes with it, the HELM client wraps questions in it.
"""

from __future__ import annotations

PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


def render_prompt(instruction: str, input: str = "") -> str:
    """The prompt up to and including `### Response:\\n`; the no-input variant when `input` is empty."""
    if input:
        return PROMPT_WITH_INPUT.format(instruction=instruction, input=input)
    return PROMPT_NO_INPUT.format(instruction=instruction)
