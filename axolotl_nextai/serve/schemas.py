"""Request and response bodies of the HELM HTTP API (the challenge's toolkit), as pydantic models.

Field names follow what HELM's `HTTPModelClient` sends; only `prompt` is required. Unknown fields are ignored
(pydantic's default), so a newer client still gets answers; known ones are type-checked here, and the limits
that depend on the server's flags or the model (`Limits`, the window, the vocabulary) are checked by the
model.

Text fields are Unicode the tokenizer can take: JSON may carry a lone surrogate (`"\\ud800"`), which no UTF-8
encoder accepts, so it is refused here (422 naming the field) instead of failing inside the tokenizer (500).
Text made only of zero-width characters is empty text.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StrictBool, StrictStr

# HELM sends temperature 1e-7 for "temperature 0"; anything this low decodes greedily.
GREEDY_BELOW = 1e-4
MAX_TOKENIZE_LENGTH = 1 << 30  # more tokens than any request body holds; the tokenizer overflows past 2**64
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


def unicode_text(text: str) -> str:
    """`text` if UTF-8 can encode it ("" when it is only zero-width characters); a ValueError naming the first
    lone surrogate otherwise."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"not valid Unicode: a lone surrogate U+{ord(text[err.start]):04X} at character "
            f"{err.start} (a JSON \\u escape of a surrogate needs its pair)"
        ) from None
    return "" if text and not text.strip(ZERO_WIDTH) else text


def stop_sequence(text: str) -> str:
    if not text:
        raise ValueError("a stop sequence must not be empty (or only zero-width characters)")
    return text


Text = Annotated[StrictStr, AfterValidator(unicode_text)]
StopSequence = Annotated[Text, AfterValidator(stop_sequence)]


class ProcessRequest(BaseModel):
    prompt: Text
    temperature: float = Field(0.0, ge=0.0, le=100.0, allow_inf_nan=False)
    num_return_sequences: int = Field(
        1, ge=1, description="Completions to return (the server's --max-completions)."
    )
    max_new_tokens: int = Field(50, ge=0)
    top_p: float = Field(1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    echo_prompt: StrictBool = False
    top_k_per_token: int = Field(1, ge=1, description="Alternatives in each token's top_logprob.")
    stop_sequences: list[StopSequence] = Field(default_factory=list)
    seed: int | None = Field(None, ge=0, lt=2**32, description="Sampling seed; the server's own when absent.")

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW


class Token(BaseModel):
    text: str
    logprob: float
    top_logprob: dict[str, float]


class Completion(BaseModel):
    text: str
    tokens: list[Token]
    logprob: float


class ProcessResponse(Completion):
    """The first completion at the top level, the fields HELM's `HTTPModelClient` reads; every completion in
    `completions` when more than one was asked for."""

    request_time: float
    completions: list[Completion] | None = None
    dropped_prompt_tokens: int = Field(0, description="Prompt tokens cut off to fit the model's window.")


class TokenizeRequest(BaseModel):
    text: Text
    truncation: StrictBool = True
    max_length: int = Field(2048, ge=1, le=MAX_TOKENIZE_LENGTH)


class TokenizeResponse(BaseModel):
    tokens: list[int]
    request_time: float


class DecodeRequest(BaseModel):
    tokens: list[Annotated[int, Field(ge=0)]]


class DecodeResponse(BaseModel):
    text: str
    request_time: float
