"""The contract with HELM 0.5.16 (crfm-helm, not installed here): the JSON bodies its HTTP model client and
tokenizer send, posted to the real server on the tiny model, and every field HELM reads from the replies.

Shapes copied from stanford-crfm/helm at tag v0.5.16 (commit ef439fc):
- `/process` body: src/helm/clients/http_model_client.py:43-52; what HELM reads: :68-77 (`text`, `logprob`,
  each token's `text` and `logprob`, `request_time`). `cached` is HELM's own (do_cache=False: False) and no
  finish reason is read; `top_logprob` is not read by 0.5.16 (the challenge's toolkit required it).
- `/tokenize`, `/decode`: src/helm/tokenizers/http_model_tokenizer.py:37-41 and :75; read: :64-65, :88-89.
- Request values: MMLU, BBQ and TruthfulQA run `multiple_choice_joint`
  (adapters/multiple_choice_joint_adapter.py :65-75 and adaptation/common_adapter_specs.py:21-66: 5 shots, 1
  new token, top_k_per_token = num_outputs = 5, temperature 0, no stop); CNN/DM runs generation
  (adapters/generation_adapter.py:40-50, run_specs/classic_run_specs.py:765-785: temperature 0.3, 128 new
  tokens, stop "###"); `method= multiple_choice_separate_*` scores each answer by echo
  (adapters/multiple_choice_separate_adapter.py:42-51); Request defaults: common/request.py:31-52.
  `data_augmentation=canonical` (benchmark/run_expander.py:908-920,
  1048) perturbs the prompt text only: the same shapes.
- The window: benchmark/window_services/local_window_service.py:89-116 (a prompt that does not fit with its
  new tokens is cut with `/tokenize` truncation + `/decode`, keeping its start).
"""

from __future__ import annotations

import json

import pytest
from axolotl_launch import ROOT
from fastapi.testclient import TestClient

from axolotl_nextai.serve import HelmModel, create_app

# helm.common.request.Request's defaults (common/request.py:31-52).
HELM_REQUEST_DEFAULTS = {
    "prompt": "",
    "temperature": 1.0,
    "num_completions": 1,
    "top_k_per_token": 1,
    "max_tokens": 100,
    "stop_sequences": [],
    "echo_prompt": False,
    "top_p": 1,
}
MULTIPLE_CHOICE_JOINT = {
    "num_completions": 1,
    "top_k_per_token": 5,
    "temperature": 0,
    "max_tokens": 1,
    "stop_sequences": [],
}
CNNDM_GENERATION = {"num_completions": 1, "temperature": 0.3, "max_tokens": 128, "stop_sequences": ["###"]}
SEPARATE_SCORING = {
    "num_completions": 1,
    "temperature": 0,
    "max_tokens": 0,
    "stop_sequences": [],
    "echo_prompt": True,
}
NEURIPS_LOCAL_WINDOW = 2048
# helm/config/model_deployments.yaml, neurips/local: max_sequence_length
HELM_50 = ROOT / "data_builders" / "benchmark_items" / "helm-50"


@pytest.fixture(scope="module")
def client(helm_model):
    return TestClient(create_app(helm_model))


def helm_process(client, **request) -> dict:
    """HELM's `HTTPModelClient.make_request` on a `Request`: the body of http_model_client.py:43-52,
    `raise_for_status` (any non-200 fails the run spec), then the reply read as :68-77 reads it."""
    request = {**HELM_REQUEST_DEFAULTS, **request}
    body = {
        "prompt": request["prompt"],
        "temperature": 1e-7 if request["temperature"] == 0 else request["temperature"],
        "num_return_sequences": request["num_completions"],
        "max_new_tokens": request["max_tokens"],
        "top_p": request["top_p"],
        "echo_prompt": request["echo_prompt"],
        "top_k_per_token": request["top_k_per_token"],
        "stop_sequences": request["stop_sequences"],
    }
    response = client.post("/process", json=body)
    assert response.status_code == 200, response.text
    reply = response.json()
    tokens = [(token["text"], token["logprob"]) for token in reply["tokens"]]
    assert all(
        isinstance(text, str) and isinstance(logprob, float) and logprob <= 0 for text, logprob in tokens
    )
    assert isinstance(reply["text"], str) and isinstance(reply["logprob"], float)
    assert isinstance(reply["request_time"], float) and reply["request_time"] >= 0
    # What this server promises beyond what HELM reads: the tokens spell the text, logprob is their sum.
    assert "".join(text for text, _ in tokens) == reply["text"]
    assert reply["logprob"] == pytest.approx(sum(logprob for _, logprob in tokens))
    return reply


def helm_tokenize(
    client, text: str, truncation: bool = False, max_length: int = NEURIPS_LOCAL_WINDOW
) -> list[int]:
    """HTTPModelTokenizer.tokenize (http_model_tokenizer.py:37-41; TokenizationRequest's defaults)."""
    response = client.post(
        "/tokenize", json={"text": text, "truncation": truncation, "max_length": max_length}
    )
    assert response.status_code == 200, response.text
    reply = response.json()
    assert all(isinstance(t, int) for t in reply["tokens"]) and isinstance(reply["request_time"], float)
    return reply["tokens"]


def helm_decode(client, tokens: list[int]) -> str:
    """HTTPModelTokenizer.decode (http_model_tokenizer.py:75)."""
    response = client.post("/decode", json={"tokens": tokens})
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["request_time"], float)
    return response.json()["text"]


def mmlu_prompt(subject: str, shots: int = 5) -> str:
    """HELM's multiple_choice_joint prompt for MMLU (run_specs/lite_run_specs.py:116-134) on the repository's
    real items: instructions, `shots` dev questions with their answer letter, one test question."""

    def block(row: dict, answer: bool) -> str:
        choices = "".join(
            f"{letter}. {choice}\n" for letter, choice in zip("ABCD", row["choices"], strict=True)
        )
        return f"Question: {row['question']}\n{choices}Answer:" + (
            f" {'ABCD'[row['answer']]}\n\n" if answer else ""
        )

    def rows(name: str) -> list[dict]:
        return [json.loads(line) for line in (HELM_50 / name).read_text("utf-8").splitlines()]

    instructions = (
        f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n"
    )
    dev = rows(f"mmlu_{subject}.dev.jsonl")[:shots]
    return (
        instructions + "".join(block(r, True) for r in dev) + block(rows(f"mmlu_{subject}.jsonl")[0], False)
    )


def test_multiple_choice_joint_mmlu_bbq_truthfulqa(client):
    prompt = mmlu_prompt("philosophy")
    reply = helm_process(client, prompt=prompt, **MULTIPLE_CHOICE_JOINT)
    (token,) = reply["tokens"]
    assert len(token["top_logprob"]) == 5
    assert token["logprob"] == pytest.approx(max(token["top_logprob"].values()), abs=1e-5)  # greedy
    assert helm_process(client, prompt=prompt, **MULTIPLE_CHOICE_JOINT)["tokens"] == reply["tokens"]


def test_generation_cnndm_samples_seeded_and_stops(client):
    prompt = (
        "###\nArticle: The council met on Monday and approved the new park.\n\n"
        "Summarize the above article in 3 sentences.\n"
    )
    reply = helm_process(client, prompt=prompt, **CNNDM_GENERATION)
    assert 0 < len(reply["tokens"]) <= 128 and "###" not in reply["text"]
    again = helm_process(client, prompt=prompt, **{**CNNDM_GENERATION, "max_tokens": 16})  # the server's seed
    assert again["tokens"] == reply["tokens"][:16]


def assert_echo_counts_every_prompt_token(client, prompt: str) -> list[dict]:
    """HELM's efficiency metric (metrics/efficiency_metrics.py:110-119) counts /tokenize's tokens as the
    prompt's and expects at least as many echoed tokens."""
    reply = helm_process(client, prompt=prompt, **SEPARATE_SCORING)
    assert reply["text"] == prompt
    assert len(reply["tokens"]) == len(helm_tokenize(client, prompt))
    first, *scored = reply["tokens"]
    assert first["logprob"] == 0 and first["top_logprob"] == {}  # no context to score it in
    assert all(t["top_logprob"] and t["logprob"] < 0 for t in scored)
    return reply["tokens"]


def test_echo_with_bos(client, tiny_tokenizer):
    tokens = assert_echo_counts_every_prompt_token(client, "The capital of France is Paris")
    assert tiny_tokenizer("x")["input_ids"][0] == tiny_tokenizer.bos_token_id and tokens[0]["text"] == ""


def test_echo_without_bos(real_model):
    """SmolLM2's tokenizer adds no BOS: its first prompt token is a word, and it is echoed."""
    client = TestClient(create_app(HelmModel.load(str(real_model))))
    tokens = assert_echo_counts_every_prompt_token(client, "The capital of France is Paris")
    assert [t["text"] for t in tokens] == ["The", " capital", " of", " France", " is", " Paris"]


def test_several_completions(client):
    """HELM asks num_outputs completions of a generation (`num_outputs` run expander: copyright_sweep asks 10)
    and reads the first; every one is in `completions`."""
    prompt = "###\nArticle: Rain fell all week.\n\nSummarize the above article in 1 sentence.\n"
    sampled = helm_process(client, prompt=prompt, num_completions=3, temperature=0.7, max_tokens=8)
    texts = [c["text"] for c in sampled["completions"]]
    assert len(texts) == 3 and texts[0] == sampled["text"] and len(set(texts)) > 1
    greedy = helm_process(client, prompt=prompt, num_completions=3, temperature=0, max_tokens=8)
    assert [c["text"] for c in greedy["completions"]] == [greedy["text"]] * 3
    assert "completions" not in helm_process(client, prompt=prompt, max_tokens=2)


def test_top_k_per_token_over_20(client):
    """multiple_choice_joint sends num_outputs as top_k_per_token; a run can set num_outputs past 20."""
    (token,) = helm_process(
        client, prompt=mmlu_prompt("philosophy"), **{**MULTIPLE_CHOICE_JOINT, "top_k_per_token": 50}
    )["tokens"]
    assert 40 <= len(token["top_logprob"]) <= 50  # ids that decode to one string (byte fragments) share a key


def test_more_than_16_stop_sequences(client):
    prompt = "###\nArticle: Rain fell all week.\n\nSummarize the above article.\n"
    full = helm_process(client, prompt=prompt, temperature=0, max_tokens=24)["text"]
    stop = full[10:13]
    stops = [f"never {i}" for i in range(19)] + [stop]
    cut = helm_process(client, prompt=prompt, temperature=0, max_tokens=24, stop_sequences=stops)
    assert cut["text"] == full[: full.index(stop)]


def test_prompt_over_the_window_is_cut_as_helms_window_service_cuts_it(client, helm_model, caplog):
    """neurips/local declares 2,048 tokens; a served model with a smaller window (the tiny one: 512) gets
    prompts that fit HELM's window but not its own. It keeps the prompt's first tokens, as HELM's
    truncate_from_right does (local_window_service.py:96-116) when the window is declared right."""
    prompt = mmlu_prompt("high_school_european_history", shots=0)  # a long passage
    max_tokens = 5
    room = helm_model.window - max_tokens
    assert room < len(helm_tokenize(client, prompt)) <= NEURIPS_LOCAL_WINDOW - max_tokens
    reply = helm_process(client, prompt=prompt, **{**MULTIPLE_CHOICE_JOINT, "max_tokens": max_tokens})
    assert reply["dropped_prompt_tokens"] == len(helm_tokenize(client, prompt)) - room
    assert "kept its first 507 tokens" in caplog.text
    # HELM's own cut, as its window service makes it with this server's /tokenize and /decode:
    cut = helm_decode(client, helm_tokenize(client, prompt, truncation=True, max_length=room))
    assert len(helm_tokenize(client, cut)) == room
    assert (
        helm_process(client, prompt=cut, **{**MULTIPLE_CHOICE_JOINT, "max_tokens": max_tokens})["tokens"]
        == reply["tokens"]
    )
