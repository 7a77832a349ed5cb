"""`nextai-serve` as a user starts it (real uvicorn on 127.0.0.1, random free port), fed bad requests and
idle connections; the app fed fuzzed request bodies."""

from __future__ import annotations

import json
import os  # the root conftest has already set the offline variables
import random
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
from axolotl_launch import ROOT
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from axolotl_nextai.serve import Limits, create_app

GOOD = {
    "prompt": "Name a colour.",
    "temperature": 1e-7,
    "num_return_sequences": 1,
    "max_new_tokens": 4,
    "top_p": 1,
    "echo_prompt": False,
    "top_k_per_token": 2,
    "stop_sequences": ["\n"],
}
ODD_VALUES = [None, [], {}, "", "ten", "\x00", "\udcff", -1, 0, 2**63, -1e308, 1.5, True, [1, "a"], {"a": {}}]
JSON = {"content-type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MAX_CONNECTIONS, REQUEST_TIMEOUT = 24, 2


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    """The CLI with its default host, small limits, its log in `proc.log`; stopped (SIGTERM, then kill) after
    the module."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "axolotl_nextai.serve.nextai_serve",
        "--base-model",
        str(tiny_model),
        "--port",
        str(port),
        "--max-new-tokens",
        "16",
        "--max-body-bytes",
        "65536",
        "--max-connections",
        str(MAX_CONNECTIONS),
        "--request-timeout",
        str(REQUEST_TIMEOUT),
    ]
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=os.environ, stdout=subprocess.DEVNULL, stderr=stderr)
    proc.log = log
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"server exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "server did not answer within 180 s"
            try:
                if client.post("/tokenize", json={"text": "up?"}).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        yield proc, client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fuzzed_bodies(rng: random.Random, n: int):
    """(description, body bytes): each field of a good request swapped for an odd value, or fields dropped."""
    for _ in range(n):
        request = dict(GOOD)
        for field in rng.sample(sorted(GOOD), rng.randint(1, 3)):
            if rng.random() < 0.2:
                del request[field]
            else:
                request[field] = rng.choice(ODD_VALUES)
        yield f"fuzzed {request!r}", json.dumps(request).encode("utf-8", "surrogatepass")


# Requests that must be refused (4xx), whatever the fuzzing above happens to produce.
BAD = [
    ("missing prompt", json.dumps({"max_new_tokens": 4}).encode()),
    ("prompt is a number", json.dumps({"prompt": 42}).encode()),
    ("prompt is a list", json.dumps({"prompt": ["a", "b"]}).encode()),
    ("negative max_new_tokens", json.dumps({"prompt": "a", "max_new_tokens": -5}).encode()),
    ("huge max_new_tokens", json.dumps({"prompt": "a", "max_new_tokens": 10**12}).encode()),
    ("max_new_tokens over the limit", json.dumps({"prompt": "a", "max_new_tokens": 17}).encode()),
    ("prompt over the window", json.dumps({"prompt": "word " * 600}).encode()),
    ("body over the limit", json.dumps({"prompt": "x" * 70_000}).encode()),
    ("malformed JSON", b'{"prompt": "a", "max_new_tokens": 4'),
    ("NaN temperature", b'{"prompt": "a", "temperature": NaN}'),
    ("non-UTF-8 body", b'{"prompt": "\xff\xfe\xfa"}'),
    ("random bytes", bytes(random.Random(0).randrange(256) for _ in range(300))),
    ("empty body", b""),
    ("a JSON array", b"[1, 2, 3]"),
    ("deeply nested JSON", b"[" * 30_000 + b"]" * 30_000),
]


def test_server_binds_loopback_by_default(server):
    proc, _ = server
    listening = [c.laddr for c in psutil.Process(proc.pid).net_connections("inet") if c.status == "LISTEN"]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening)


def test_bad_requests_get_4xx_json_and_the_server_still_answers(server):
    proc, client = server
    for what, body in BAD:
        response = client.post("/process", content=body, headers=JSON)
        assert 400 <= response.status_code < 500, (what, response.status_code, response.text[:300])
        assert response.json()["error"], what
    chunked = client.post("/process", content=iter([json.dumps(GOOD).encode()]), headers=JSON)
    assert chunked.status_code == 411
    for path, body in [
        ("/tokenize", b'{"text": 7}'),
        ("/decode", b'{"tokens": [-1]}'),
        ("/decode", b'{"tokens": "ab"}'),
    ]:
        response = client.post(path, content=body, headers=JSON)
        assert response.status_code == 422 and response.json()["error"], path

    for what, body in fuzzed_bodies(random.Random(8), 60):
        response = client.post("/process", content=body, headers=JSON)
        assert response.status_code == 200 or 400 <= response.status_code < 500, (what, response.text[:300])
        assert response.json()["error" if response.status_code != 200 else "tokens"] is not None, what

    assert proc.poll() is None
    good = client.post("/process", json=GOOD)
    assert good.status_code == 200 and len(good.json()["tokens"]) >= 1
    # why, not only the status
    assert "POST /process refused (422): body.max_new_tokens" in proc.log.read_text()


def test_idle_and_slow_connections_are_bounded_timed_out_and_logged_once(server):
    """Connections that send nothing, or half a request, cannot exhaust the server: those beyond
    --max-connections get a 503 at once, the rest are closed after --request-timeout (a 408 to the half
    request), each kind of refusal is logged once, and the server answers again."""
    proc, client = server
    port = client.base_url.port
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"POST /process HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n")
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3 * MAX_CONNECTIONS)]
    try:
        started = time.monotonic()
        answers = [read_until_closed(s, timeout=REQUEST_TIMEOUT + 10) for s in [slow, *idle]]
        assert time.monotonic() - started < REQUEST_TIMEOUT + 10
        refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
        assert len(refused) >= 2 * MAX_CONNECTIONS - 1 and b"too many open connections" in refused[0]
        assert answers[0].startswith(b"HTTP/1.1 408") and b"no complete request within 2 s" in answers[0]
        assert all(a in (b"", refused[0]) for a in answers[1:])  # idle ones: closed, no answer to misread
    finally:
        for s in [slow, *idle]:
            s.close()
    assert client.post("/process", json=GOOD).status_code == 200
    log = proc.log.read_text()
    assert log.count("refused connections: 24 are open (--max-connections)") == 1
    assert log.count("closed connections that sent no complete request within 2 s (--request-timeout)") == 1
    assert "Traceback" not in log


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_concurrent_answers_equal_serial_ones(server):
    """Requests that differ in `truncation` / `max_length` share one tokenizer: answered concurrently, each
    must get exactly its serial answer (a fast tokenizer keeps truncation as shared state)."""
    _, client = server
    words = [f"word{i} " * (20 + 7 * i) for i in range(6)]
    requests = [
        ("/tokenize", {"text": words[i % 6], "truncation": i % 3 != 0, "max_length": 3 + 5 * i})
        for i in range(24)
    ]
    requests += [
        ("/process", {**GOOD, "prompt": words[i % 6][: 40 + 30 * i], "stop_sequences": []}) for i in range(8)
    ]
    random.Random(0).shuffle(requests)

    def answer(request):
        path, body = request
        response = client.post(path, json=body)
        assert response.status_code == 200, (path, response.text[:300])
        return {k: v for k, v in response.json().items() if k != "request_time"}

    serial = [answer(r) for r in requests]
    assert {len(a["tokens"]) for a in serial if "logprob" not in a} != {1}  # truncation really varies
    for _ in range(2):
        with ThreadPoolExecutor(max_workers=16) as pool:
            assert list(pool.map(answer, requests)) == serial


def test_tokenize_refuses_a_max_length_no_tokenizer_takes(server):
    _, client = server
    for body in (b'{"text": "a", "max_length": 100000000000000000000}', b'{"text": "a", "max_length": 0}'):
        response = client.post("/tokenize", content=body, headers=JSON)
        assert response.status_code == 422 and "max_length" in response.json()["error"], response.text


def test_the_demo_client_asks_a_running_server(server):
    """`python -m axolotl_nextai.serve.client`, as `make demo` runs it: waits, asks once (greedy), prints the
    answer."""
    from click.testing import CliRunner

    from axolotl_nextai.serve.client import main as ask

    proc, client = server
    result = CliRunner().invoke(
        ask,
        [
            "--url",
            str(client.base_url),
            "--pid",
            str(proc.pid),
            "--alpaca",
            "--max-new-tokens",
            "4",
            "Name a colour.",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"HELM /process at {client.base_url}" in result.output and "completion: " in result.output


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("localhost:8080", "is not an http(s)://HOST[:PORT] address"),
        ("htp://127.0.0.1:8080", "is not an http(s)://HOST[:PORT] address"),
        ("http://127.0.0.1:99999", "Port out of range"),
        ("http://no-such-host.invalid:8080", "no such host"),
    ],
)
def test_the_demo_client_refuses_a_malformed_url_at_once(url, says):
    from click.testing import CliRunner

    from axolotl_nextai.serve.client import main as ask

    started = time.monotonic()
    result = CliRunner().invoke(ask, ["--url", url, "hi"])
    assert result.exit_code in (1, 2) and says in result.output and "Traceback" not in result.output
    assert time.monotonic() - started < 10  # not the 180 s wait for a server coming up


def test_the_demo_client_stops_waiting_when_the_server_is_gone():
    from click.testing import CliRunner

    from axolotl_nextai.serve.client import main as ask

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    result = CliRunner().invoke(
        ask, ["--url", f"http://127.0.0.1:{free_port()}", "--pid", str(gone.pid), "hi"]
    )
    assert result.exit_code == 1 and f"the server (pid {gone.pid}) exited before answering" in result.output


# Property-based fuzzing of the request bodies (hypothesis; `make fuzz` runs more examples): any JSON a client
# sends gets a 200 whose tokens spell its text, or a 4xx naming what is wrong, never a 5xx.
TEXTS = st.text(
    st.characters(codec=None, categories=["Lu", "Ll", "Nd", "P", "Zs", "Cs", "Cf", "Cc", "So"]), max_size=40
) | st.sampled_from(["", "\u200b\u2060", "\n", "###", "Answer:"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | TEXTS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
    max_leaves=6,
)
PROCESS_FIELDS = {
    "prompt": TEXTS | JSON_VALUES,
    "temperature": st.floats() | JSON_VALUES,
    "num_return_sequences": st.integers(-1, 3) | JSON_VALUES,
    "max_new_tokens": st.integers(-1, 9) | JSON_VALUES,
    "top_p": st.floats() | JSON_VALUES,
    "echo_prompt": st.booleans() | JSON_VALUES,
    "top_k_per_token": st.integers(-1, 5000) | JSON_VALUES,
    "stop_sequences": st.lists(TEXTS, max_size=20) | JSON_VALUES,
    "seed": st.integers(-1, 2**33) | JSON_VALUES,
}
ENDPOINT_BODIES = st.one_of(
    st.tuples(st.just("/process"), st.fixed_dictionaries({}, optional=PROCESS_FIELDS)),
    st.tuples(
        st.just("/tokenize"),
        st.fixed_dictionaries(
            {},
            optional={
                "text": TEXTS | JSON_VALUES,
                "truncation": st.booleans() | JSON_VALUES,
                "max_length": st.integers(-1, 2**65) | JSON_VALUES,
            },
        ),
    ),
    st.tuples(
        st.just("/decode"),
        st.fixed_dictionaries(
            {}, optional={"tokens": st.lists(st.integers(-1, 3000), max_size=30) | JSON_VALUES}
        ),
    ),
    st.tuples(st.sampled_from(["/process", "/tokenize", "/decode"]), JSON_VALUES),
)


@pytest.fixture(scope="module")
def small_client(helm_model):
    limits = Limits(max_new_tokens=8, max_completions=2, max_top_logprobs=4096, max_body_bytes=65536)
    return TestClient(create_app(helm_model, limits), raise_server_exceptions=False)


@pytest.mark.fuzz
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(request=ENDPOINT_BODIES)
def test_fuzzed_bodies_get_an_answer_or_a_4xx_never_a_5xx(small_client, request):
    path, body = request
    # As a client would send it: ASCII JSON, lone surrogates as escapes, NaN/Infinity as Python writes them.
    response = small_client.post(path, content=json.dumps(body).encode(), headers=JSON)
    assert response.status_code == 200 or 400 <= response.status_code < 500, (body, response.text[:300])
    answer = response.json()
    if response.status_code != 200:
        assert answer["error"].strip()
    elif path == "/process":
        assert "".join(t["text"] for t in answer["tokens"]) == answer["text"]
        assert answer["logprob"] == pytest.approx(sum(t["logprob"] for t in answer["tokens"]))
