"""Request and response bodies of the HELM HTTP API (the challenge's toolkit), as pydantic models.

Field names follow what HELM's `HTTPModelClient` sends; only `prompt` is required. Unknown fields are ignored
(pydantic's default), so a newer client still gets answers; known ones are type-checked and bounded here, and the
limits that depend on the server's flags (`max_new_tokens`, the model's window) are checked by the app.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StrictStr

# HELM sends temperature 1e-7 for "temperature 0"; anything this low decodes greedily.
GREEDY_BELOW = 1e-4
MAX_TOP_K_PER_TOKEN = 20
MAX_STOP_SEQUENCES = 16
MAX_TOKENIZE_LENGTH = 1 << 30  # more tokens than any request body holds; the tokenizer overflows past 2**64

StopSequence = Annotated[StrictStr, Field(min_length=1, max_length=256)]


class ProcessRequest(BaseModel):
    prompt: StrictStr
    temperature: float = Field(0.0, ge=0.0, le=100.0, allow_inf_nan=False)
    num_return_sequences: int = Field(1, ge=1, le=1, description="The response carries one completion.")
    max_new_tokens: int = Field(50, ge=0)
    top_p: float = Field(1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    echo_prompt: StrictBool = False
    top_k_per_token: int = Field(1, ge=1, le=MAX_TOP_K_PER_TOKEN)
    stop_sequences: list[StopSequence] = Field(default_factory=list, max_length=MAX_STOP_SEQUENCES)
    seed: int | None = Field(None, ge=0, lt=2**32, description="Sampling seed; the server's own when absent.")

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW


class Token(BaseModel):
    text: str
    logprob: float
    top_logprob: dict[str, float]


class ProcessResponse(BaseModel):
    text: str
    tokens: list[Token]
    logprob: float
    request_time: float


class TokenizeRequest(BaseModel):
    text: StrictStr
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
