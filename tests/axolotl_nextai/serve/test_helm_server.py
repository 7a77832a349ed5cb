"""The HELM API on the tiny model through FastAPI's TestClient: shapes, greedy, stops, echo, limits,
errors."""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient

from axolotl_nextai.serve import HelmModel, Limits, create_app
from axolotl_nextai.serve.helm_model import truncate_at_stop
from axolotl_nextai.serve.schemas import Token

PROMPT = "Below is an instruction. Name a colour.\n\n### Response:\n"
# What HELM's HTTPModelClient sends for a greedy request (temperature 0 becomes 1e-7).
HELM_REQUEST = {
    "prompt": PROMPT,
    "temperature": 1e-7,
    "num_return_sequences": 1,
    "max_new_tokens": 12,
    "top_p": 1,
    "echo_prompt": False,
    "top_k_per_token": 3,
    "stop_sequences": [],
}


@pytest.fixture(scope="module")
def client(helm_model):
    return TestClient(
        create_app(helm_model, Limits(max_new_tokens=64, max_body_bytes=4096, max_top_logprobs=50_000))
    )


def process(client, **fields) -> dict:
    response = client.post("/process", json={**HELM_REQUEST, **fields})
    assert response.status_code == 200, response.text
    return response.json()


def assert_consistent(body: dict, echoed: bool = False) -> None:
    """Tokens spell the text, logprob is their sum, every scored token has top_logprob (an echoed prompt's
    first token has no context: logprob 0, no alternatives)."""
    assert "".join(t["text"] for t in body["tokens"]) == body["text"]
    assert body["logprob"] == pytest.approx(sum(t["logprob"] for t in body["tokens"]))
    scored = body["tokens"][1:] if echoed else body["tokens"]
    assert all(t["top_logprob"] and all(v <= 0 for v in t["top_logprob"].values()) for t in scored)
    if echoed:
        assert body["tokens"][0]["logprob"] == 0 and body["tokens"][0]["top_logprob"] == {}
    assert body["request_time"] >= 0


def test_full_helm_request_is_greedy_and_well_formed(client):
    body = process(client)
    assert len(body["tokens"]) == 12  # a random model never says EOS this early
    assert_consistent(body)
    for token in body["tokens"]:
        assert 1 <= len(token["top_logprob"]) <= 3
        assert token["logprob"] == pytest.approx(max(token["top_logprob"].values()), abs=1e-5)
    assert process(client)["tokens"] == body["tokens"]


def test_prompt_only_request_uses_defaults(client):
    response = client.post("/process", json={"prompt": PROMPT})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["tokens"]) == 50
    assert_consistent(body)
    greedy = process(client, top_k_per_token=1)["tokens"]  # default temperature 0 is greedy too
    assert body["tokens"][:12] == greedy
    unknown_field = client.post(
        "/process", json={"prompt": PROMPT, "max_new_tokens": 2, "engine": "neurips/local"}
    )
    assert unknown_field.status_code == 200  # clients that send more fields still get answers


def test_sampling_is_seeded(client):
    first = process(client, temperature=1.0, seed=1, max_new_tokens=16)
    assert process(client, temperature=1.0, seed=1, max_new_tokens=16)["text"] == first["text"]
    assert process(client, temperature=1.0, seed=2, max_new_tokens=16)["text"] != first["text"]
    assert_consistent(first)


def test_stop_sequences_cut_the_text_at_the_first_one(client):
    full = process(client, max_new_tokens=24)["text"]
    stop = full[3:6]
    cut = full.index(stop)
    assert 0 < cut
    body = process(client, max_new_tokens=24, stop_sequences=["never in this text", stop])
    assert body["text"] == full[:cut]
    assert_consistent(body)


def test_echo_prompt_returns_prompt_tokens_with_logprobs(client, tiny_tokenizer):
    body = process(client, echo_prompt=True, max_new_tokens=4)
    prompt_ids = tiny_tokenizer(PROMPT)["input_ids"]
    assert body["text"].startswith(PROMPT)
    assert body["text"] == PROMPT + process(client, max_new_tokens=4)["text"]
    assert len(body["tokens"]) == len(prompt_ids) + 4  # every token /tokenize counts, BOS included
    assert body["tokens"][0]["text"] == ""  # the tiny tokenizer's BOS
    assert_consistent(body, echoed=True)
    only_prompt = process(client, echo_prompt=True, max_new_tokens=0)
    assert only_prompt["text"] == PROMPT and all(math.isfinite(t["logprob"]) for t in only_prompt["tokens"])


def test_tokenize_decode_round_trip(client, tiny_tokenizer):
    text = "Write a response that appropriately completes the request."
    tokens = client.post("/tokenize", json={"text": text}).json()["tokens"]
    assert tokens == tiny_tokenizer(text)["input_ids"] and tokens[0] == tiny_tokenizer.bos_token_id
    assert client.post("/decode", json={"tokens": tokens}).json()["text"] == text
    cut = client.post("/tokenize", json={"text": text, "truncation": True, "max_length": 3}).json()["tokens"]
    assert cut == tokens[:3]


@pytest.mark.parametrize(
    ("fields", "status", "says"),
    [
        ({"max_new_tokens": 65}, 422, "over this server's limit of 64"),
        ({"prompt": "x" * 5000}, 413, "limit is 4096"),
        ({"num_return_sequences": 17}, 422, "over this server's limit of 16 (--max-completions)"),
        ({"top_k_per_token": 10**6, "max_new_tokens": 64}, 422, "(--max-top-logprobs)"),
        ({"stop_sequences": [""]}, 422, "stop_sequences.0"),
        (
            {"stop_sequences": ["\u200b"]},
            422,
            "stop_sequences.0: Value error, a stop sequence must not be empty",
        ),
        ({"prompt": "\ud800 hi"}, 422, "prompt: Value error, not valid Unicode: a lone surrogate U+D800"),
        ({"top_k_per_token": 0}, 422, "top_k_per_token"),
    ],
)
def test_requests_over_a_limit_get_a_4xx_with_a_message(client, fields, status, says, caplog):
    # ASCII: a lone surrogate travels as its JSON escape
    body = json.dumps({**HELM_REQUEST, **fields}).encode()
    response = client.post("/process", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert says in response.json()["error"]
    # HELM shows only "422 Client Error": the server's log says why.
    assert f"POST /process refused ({status}): " in caplog.text and says in caplog.text


def test_decode_refuses_ids_outside_the_vocabulary(client, helm_model):
    response = client.post("/decode", json={"tokens": [5, helm_model.vocab_size]})
    assert response.status_code == 422 and "outside the vocabulary" in response.json()["error"]


def test_a_failing_model_gets_a_500_and_the_server_keeps_answering(tiny_model, tiny_tokenizer):
    """A checkpoint whose embedding is smaller than its tokenizer's vocabulary fails inside generate."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    small = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=8,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=64,
        )
    )
    client = TestClient(create_app(HelmModel(small, tiny_tokenizer)))
    response = client.post("/process", json={"prompt": "Hello there", "max_new_tokens": 2})
    assert response.status_code == 500 and "model call failed" in response.json()["error"]
    assert client.post("/tokenize", json={"text": "Hello"}).status_code == 200


def tokens(*texts: str) -> list[Token]:
    return [Token(text=t, logprob=-1.0, top_logprob={t: -1.0}) for t in texts]


@pytest.mark.parametrize(
    ("stops", "kept"),
    [
        (["zz"], ["ab", "cd", "ef"]),  # no stop: everything
        (["cd"], ["ab"]),  # at a token boundary
        (["de"], ["ab", "c"]),  # inside a token: trimmed
        (["f", "bc"], ["ab"[:1]]),  # the earliest of several
        (["a"], []),  # at the very start
    ],
)
def test_truncate_at_stop(stops, kept):
    assert [t.text for t in truncate_at_stop(tokens("ab", "cd", "ef"), stops)] == kept
