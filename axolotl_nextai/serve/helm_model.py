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
import logging
import threading
from dataclasses import dataclass

import torch
from tokenizers.decoders import DecodeStream
from transformers import StoppingCriteria, StoppingCriteriaList

from axolotl_nextai.serve.schemas import ProcessRequest, Token

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one request may cost. 1 MiB holds a 4,096-token prompt many times over; the paper's HELM scenarios
    ask for at most a summary's worth of new tokens (CNN/DM: 128), one completion and 5 alternatives a token;
    HELM's own expanders go to 10 completions (`num_outputs=copyright_sweep`)."""

    max_new_tokens: int = 1024
    max_body_bytes: int = 1 << 20
    max_completions: int = 16
    # top_logprob entries in one answer (top_k_per_token x scored tokens): ~10 MB of JSON
    max_top_logprobs: int = 1 << 18


class InvalidRequest(ValueError):
    """A well-formed request this model cannot serve (over a limit, unknown token ids)."""


@dataclass
class Answer:
    """`/process`'s completions (each a list of tokens) and how many prompt tokens the window cut off."""

    completions: list[list[Token]]
    dropped_prompt_tokens: int


def truncate_at_stop(tokens: list[Token], stop_sequences: list[str]) -> list[Token]:
    """Tokens up to the first occurrence of any stop sequence; the token it starts in is trimmed to end
    there."""
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


def decode_stream(backend, ids: list[int], context: list[int] = ()) -> list[str]:
    """The text each of `ids` adds after `context` (special tokens spell ""), as `truncate_at_stop` cuts
    it."""
    stream = DecodeStream(skip_special_tokens=True)
    for i in context:
        stream.step(backend, i)
    return [stream.step(backend, i) or "" for i in ids]


class StopAtText(StoppingCriteria):
    """Ends generation once the generated text contains a stop sequence. It searches text, not token ids, so a
    stop spanning tokens or ending mid-token is found the way `truncate_at_stop` cuts it, and each step costs
    a substring search over the last few characters, however many stop sequences a request brings."""

    def __init__(self, backend, context: list[int], stops: list[str]):
        self.backend, self.stops = backend, stops
        self.overlap = max(map(len, stops)) - 1  # characters a stop can reach back into earlier text
        self.stream = DecodeStream(skip_special_tokens=True)
        for i in context:
            self.stream.step(backend, i)
        self.tail = ""

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        piece = self.stream.step(self.backend, input_ids[0, -1].item()) or ""
        self.tail = (self.tail[-self.overlap :] if self.overlap else "") + piece
        hit = any(stop in self.tail for stop in self.stops)
        return torch.full((input_ids.shape[0],), hit, dtype=torch.bool, device=input_ids.device)


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
        # Each id decoded alone, once: the keys of every top_logprob.
        self.token_strings = tokenizer.batch_decode([[i] for i in range(self.vocab_size)])
        self._lock = threading.Lock()
        self._thread = threading.local()  # a truncating tokenizer per thread
        tokenizer.backend_tokenizer.no_truncation()  # before any thread shares it
        tokenizer.backend_tokenizer.no_padding()

    @classmethod
    def load(
        cls, base_model: str, adapter: str | None = None, load_in_4bit: bool | None = None, seed: int = 0
    ):
        from axolotl_nextai.models.checkpoint import load_base_and_adapter

        return cls(*load_base_and_adapter(base_model, adapter, load_in_4bit), seed)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` with the tokenizer's special tokens (BOS where it adds one), never
        truncated."""
        return self.tokenizer(text)["input_ids"]

    def tokenize(self, text: str, truncation: bool, max_length: int) -> list[int]:
        """`encode`, or with `truncation` the tokenizer's own truncation to `max_length`, on this thread's
        copy."""
        if not truncation:
            return self.encode(text)
        if not hasattr(self._thread, "tokenizer"):
            self._thread.tokenizer = copy.deepcopy(self.tokenizer)
        return self._thread.tokenizer(text, truncation=True, max_length=max_length)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        """Special tokens skipped, spaces kept as the tokens spell them: what HELM's window service asks for
        (`clean_up_tokenization_spaces=False`) when it cuts a prompt with `/tokenize` + `/decode`."""
        self._check_ids(ids)
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def process(self, req: ProcessRequest, limits: Limits = Limits()) -> Answer:
        """`num_return_sequences` completions (the prompt's tokens first when `echo_prompt`), stop sequences
        applied. Greedy decoding gives one completion, repeated; sampling draws each from one seeded
        stream."""
        ids, dropped = self._fit_window(self.encode(req.prompt), req.max_new_tokens)
        top_k = min(req.top_k_per_token, self.vocab_size)
        self._check_cost(req, len(ids), top_k, limits)
        with self._lock, torch.inference_mode():
            echoed = self._echo(ids, top_k) if req.echo_prompt else []
            if not req.greedy:
                torch.manual_seed(self.seed if req.seed is None else req.seed)
            completions = []
            for _ in range(1 if req.greedy else req.num_return_sequences):
                generation = self._generate(ids, req)
                texts = decode_stream(self.tokenizer.backend_tokenizer, generation.ids, ids)
                steps = zip(texts, generation.ids, generation.logprobs, strict=True)
                tokens = [self._token(*t, top_k) for t in steps]
                completions.append(echoed + truncate_at_stop(tokens, req.stop_sequences))
        if req.greedy:
            completions *= req.num_return_sequences
        return Answer(completions, dropped)

    def _fit_window(self, ids: list[int], max_new_tokens: int) -> tuple[list[int], int]:
        """The prompt's ids cut to the first `window - max_new_tokens` as HELM's window service cuts a prompt
        (`truncate_from_right`: the tokenizer's truncation, from the right), and how many were dropped."""
        if not ids:
            raise InvalidRequest("prompt is empty and the tokenizer adds no BOS token")
        room = self.window - max_new_tokens
        if room < 1:
            raise InvalidRequest(
                f"max_new_tokens ({max_new_tokens}) leaves no room for a prompt in the model's "
                f"window of {self.window} tokens"
            )
        if len(ids) <= room:
            return ids, 0
        log.warning(
            "prompt of %d tokens + max_new_tokens %d is over the model's window of %d tokens: kept its "
            "first %d tokens, as HELM's window service cuts a prompt",
            len(ids),
            max_new_tokens,
            self.window,
            room,
        )
        return ids[:room], len(ids) - room

    def _check_cost(self, req: ProcessRequest, prompt_tokens: int, top_k: int, limits: Limits) -> None:
        """Refuse, before any compute, what is over this server's limits (each message names its flag)."""
        if req.max_new_tokens > limits.max_new_tokens:
            raise InvalidRequest(
                f"max_new_tokens {req.max_new_tokens} is over this server's limit of "
                f"{limits.max_new_tokens} (--max-new-tokens)"
            )
        if req.num_return_sequences > limits.max_completions:
            raise InvalidRequest(
                f"num_return_sequences {req.num_return_sequences} is over this server's limit of "
                f"{limits.max_completions} (--max-completions)"
            )
        scored = (prompt_tokens if req.echo_prompt else 0) + req.max_new_tokens * req.num_return_sequences
        if top_k * scored > limits.max_top_logprobs:
            raise InvalidRequest(
                f"top_k_per_token {req.top_k_per_token} x {scored} scored tokens = "
                f"{top_k * scored} top_logprob entries, over this server's limit of "
                f"{limits.max_top_logprobs} (--max-top-logprobs)"
            )

    def _echo(self, ids: list[int], top_k: int) -> list[Token]:
        """Every prompt token `/tokenize` counts, BOS included where the tokenizer adds one, so HELM's
        count of prompt tokens matches. The first has no context to be scored in: log-probability 0 and no
        alternatives, as HELM's own Hugging Face client scores it."""
        texts = decode_stream(self.tokenizer.backend_tokenizer, ids)
        rows = self._logprobs(ids)
        first = Token(text=texts[0], logprob=0.0, top_logprob={})
        return [first] + [self._token(*t, top_k) for t in zip(texts[1:], ids[1:], rows, strict=True)]

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
            output_logits=True,
            return_dict_in_generate=True,
        )
        stops = None
        if req.stop_sequences:
            stops = StoppingCriteriaList(
                [StopAtText(self.tokenizer.backend_tokenizer, ids, req.stop_sequences)]
            )
        input_ids = torch.tensor([ids], device=self.model.device)
        out = self.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            generation_config=config,
            stopping_criteria=stops,
        )
        new = out.sequences[0, len(ids) :].tolist()
        logprobs = torch.stack(out.logits)[:, 0].float().log_softmax(-1).cpu()
        if new and new[-1] == eos:  # the end of the text, not part of it
            new, logprobs = new[:-1], logprobs[:-1]
        return Generation(new, logprobs)

    def _logprobs(self, ids: list[int]) -> torch.Tensor:
        """Row j is the distribution of ids[j + 1] given ids[: j + 1]."""
        logits = self.model(input_ids=torch.tensor([ids], device=self.model.device)).logits[0, :-1]
        return logits.float().log_softmax(-1).cpu()

    def _token(self, text: str, token_id: int, logprobs: torch.Tensor, k: int) -> Token:
        values, indices = logprobs[: self.vocab_size].topk(k)
        top: dict[str, float] = {}
        for value, index in zip(values.tolist(), indices.tolist(), strict=True):
            # Distinct ids can decode to the same string (byte fragments); keep the likelier one.
            top.setdefault(self.token_strings[index], value)
        return Token(text=text, logprob=logprobs[token_id].item(), top_logprob=top)

    def _check_ids(self, ids: list[int]) -> None:
        bad = [i for i in ids if i >= self.vocab_size]
        if bad:
            raise InvalidRequest(f"token ids {bad[:5]} are outside the vocabulary (size {self.vocab_size})")
