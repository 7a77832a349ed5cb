"""A causal LM (base + optional LoRA adapter) answering HELM's three calls.

The completion's tokens always spell its text: token texts come from incremental decoding (a token that ends
mid-character carries "" and the next one the whole character), and a stop sequence cuts the text and trims
the token it falls in. Log-probabilities are the model's own (raw logits), whatever the sampling settings.

Requests run on a pool of threads. A fast tokenizer keeps truncation as state of its Rust tokenizer, which
transformers sets for a call that truncates and unsets for one that does not: shared, one request's
`max_length` would cut another's prompt. So the shared tokenizer never truncates (and starts without any
truncation or padding state), and a truncating `/tokenize` runs on a copy of it owned by its thread.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

import torch
from tokenizers.decoders import DecodeStream

from axolotl_nextai.serve.schemas import ProcessRequest, Token


class InvalidRequest(ValueError):
    """A well-formed request this model cannot serve (too long for its window, unknown token ids)."""


def truncate_at_stop(tokens: list[Token], stop_sequences: list[str]) -> list[Token]:
    """Tokens up to the first occurrence of any stop sequence; the token it starts in is trimmed to end there."""
    text = "".join(t.text for t in tokens)
    hits = [i for i in (text.find(stop) for stop in stop_sequences) if i >= 0]
    if not hits:
        return tokens
    cut, kept, pos = min(hits), [], 0
    for token in tokens:
        if pos >= cut:
            break
        end = pos + len(token.text)
        kept.append(token if end <= cut else token.model_copy(update={"text": token.text[: cut - pos]}))
        pos = end
    return kept


@dataclass
class Generation:
    """Completion ids and the log-softmax rows that chose them (row i: the distribution of ids[i])."""

    ids: list[int]
    logprobs: torch.Tensor


class HelmModel:
    """One model, one request at a time (a lock): generation holds the accelerator and the global RNG."""

    def __init__(self, model, tokenizer, seed: int = 0):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.seed = seed
        self.window = model.config.max_position_embeddings
        self.vocab_size = len(tokenizer)
        self._lock = threading.Lock()
        self._thread = threading.local()  # a truncating tokenizer per thread
        tokenizer.backend_tokenizer.no_truncation()  # before any thread shares it
        tokenizer.backend_tokenizer.no_padding()

    @classmethod
    def load(cls, base_model: str, adapter: str | None = None, load_in_4bit: bool | None = None, seed: int = 0):
        from axolotl_nextai.models.checkpoint import load_base_and_adapter

        return cls(*load_base_and_adapter(base_model, adapter, load_in_4bit), seed)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` with the tokenizer's special tokens (BOS), never truncated."""
        return self.tokenizer(text)["input_ids"]

    def tokenize(self, text: str, truncation: bool, max_length: int) -> list[int]:
        """`encode`, or with `truncation` the tokenizer's own truncation to `max_length`, on this thread's copy."""
        if not truncation:
            return self.encode(text)
        if not hasattr(self._thread, "tokenizer"):
            self._thread.tokenizer = copy.deepcopy(self.tokenizer)
        return self._thread.tokenizer(text, truncation=True, max_length=max_length)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        self._check_ids(ids)
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def process(self, req: ProcessRequest) -> tuple[str, list[Token]]:
        """The completion (prompt first when `echo_prompt`) as text and tokens, stop sequences applied."""
        ids = self.encode(req.prompt)
        if not ids:
            raise InvalidRequest("prompt is empty and the tokenizer adds no BOS token")
        if len(ids) + req.max_new_tokens > self.window:
            raise InvalidRequest(f"prompt ({len(ids)} tokens) + max_new_tokens ({req.max_new_tokens}) exceeds "
                                 f"the model's window of {self.window} tokens")
        with self._lock, torch.inference_mode():
            generation = self._generate(ids, req)
            echo_logprobs = self._logprobs(ids) if req.echo_prompt else None
        stream = DecodeStream(skip_special_tokens=True)
        prompt_texts = [stream.step(self.tokenizer.backend_tokenizer, i) or "" for i in ids]
        completion = [
            self._token(stream.step(self.tokenizer.backend_tokenizer, i) or "", i, row, req.top_k_per_token)
            for i, row in zip(generation.ids, generation.logprobs)
        ]
        tokens = truncate_at_stop(completion, req.stop_sequences)
        if echo_logprobs is not None:
            # The first prompt token (BOS for Llama) has no context, so it is context only.
            echoed = [self._token(text, i, row, req.top_k_per_token)
                      for text, i, row in zip(prompt_texts[1:], ids[1:], echo_logprobs)]
            tokens = echoed + tokens
        return "".join(t.text for t in tokens), tokens

    def _generate(self, ids: list[int], req: ProcessRequest) -> Generation:
        from transformers import GenerationConfig

        if req.max_new_tokens == 0:
            return Generation([], torch.empty(0, self.vocab_size))
        eos = self.tokenizer.eos_token_id
        config = GenerationConfig(
            max_new_tokens=req.max_new_tokens,
            do_sample=not req.greedy,
            temperature=None if req.greedy else req.temperature,
            top_p=None if req.greedy else req.top_p,
            top_k=None if req.greedy else 0,
            eos_token_id=eos,
            pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos,
            stop_strings=req.stop_sequences or None,
            output_logits=True,
            return_dict_in_generate=True,
        )
        if not req.greedy:
            torch.manual_seed(self.seed if req.seed is None else req.seed)
        input_ids = torch.tensor([ids], device=self.model.device)
        out = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                  generation_config=config, tokenizer=self.tokenizer)
        new = out.sequences[0, len(ids):].tolist()
        logprobs = torch.stack(out.logits)[:, 0].float().log_softmax(-1).cpu()
        if new and new[-1] == eos:  # the end of the text, not part of it
            new, logprobs = new[:-1], logprobs[:-1]
        return Generation(new, logprobs)

    def _logprobs(self, ids: list[int]) -> torch.Tensor:
        """Row j is the distribution of ids[j + 1] given ids[: j + 1]."""
        logits = self.model(input_ids=torch.tensor([ids], device=self.model.device)).logits[0, :-1]
        return logits.float().log_softmax(-1).cpu()

    def _token(self, text: str, token_id: int, logprobs: torch.Tensor, k: int) -> Token:
        values, indices = logprobs.topk(k)
        top: dict[str, float] = {}
        for value, index in zip(values.tolist(), indices.tolist()):
            # Distinct ids can decode to the same string (byte fragments); keep the likelier one.
            top.setdefault(self.tokenizer.decode([index]), value)
        return Token(text=text, logprob=logprobs[token_id].item(), top_logprob=top)

    def _check_ids(self, ids: list[int]) -> None:
        bad = [i for i in ids if i >= self.vocab_size]
        if bad:
            raise InvalidRequest(f"token ids {bad[:5]} are outside the vocabulary (size {self.vocab_size})")
