"""Ask a running `nextai-serve` one HELM `/process` question, the way HELM's HTTP client would.

    python -m axolotl_nextai.serve.client --url http://127.0.0.1:8080 --alpaca "Name three primary colours."

Waits for the server to come up (loading a model takes a while), sends greedy decoding as HELM does
(temperature 1e-7), prints the completion, its token count, log-probability and the server's time.
Standard library only: it is what a user runs against any server.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import click

from data_builders.alpaca_prompt import render_prompt
from data_builders.boundary import Guarded


def post(url: str, path: str, body: dict, timeout: float = 600) -> dict:
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def server_url(url: str) -> str:
    """`url` if it can name a server (http or https, a host, a valid port); a ValueError saying what is
    wrong."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s)://HOST[:PORT] address")
    try:
        parts.port  # noqa: B018 -- parsing the port is the check
    except ValueError as err:
        raise ValueError(f"{url!r}: {err}") from None
    return url


def wait_until_up(url: str, seconds: float, pid: int | None = None) -> None:
    """Poll `/tokenize` until the server answers; a RuntimeError if `pid` exits first, time runs out or the
    host has no address (a server that is not up yet refuses connections; a misspelt host never answers)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            post(url, "/tokenize", {"text": "ping"}, timeout=5)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            unresolved = getattr(err, "reason", None)
            if type(unresolved) is socket.gaierror:
                raise RuntimeError(f"{url}: no such host ({unresolved.strerror})") from None
            if pid is not None and not _alive(pid):
                raise RuntimeError(f"the server (pid {pid}) exited before answering at {url}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"no answer from {url} within {seconds:g} s") from None
            time.sleep(1)


def _url_option(_ctx, _param, url: str) -> str:
    try:
        return server_url(url)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@click.command(cls=Guarded)
@click.argument("prompt")
@click.option(
    "--url",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="The server's address.",
    callback=_url_option,
)
@click.option("--alpaca", is_flag=True, help="Wrap PROMPT in the Alpaca template the recipes train with.")
@click.option("--max-new-tokens", default=48, show_default=True)
@click.option(
    "--wait", "wait_s", default=180.0, show_default=True, help="Seconds to wait for the server to be up."
)
@click.option("--pid", type=int, default=None, help="The server's process id: stop waiting if it exits.")
def main(prompt: str, url: str, alpaca: bool, max_new_tokens: int, wait_s: float, pid: int | None) -> None:
    """Send PROMPT to a HELM model server's /process (greedy) and print the answer."""
    try:
        wait_until_up(url, wait_s, pid)
        answer = post(
            url,
            "/process",
            {
                "prompt": render_prompt(prompt) if alpaca else prompt,
                "temperature": 1e-7,
                "max_new_tokens": max_new_tokens,
            },
        )
    except (RuntimeError, urllib.error.URLError, OSError) as err:
        raise click.ClickException(str(getattr(err, "reason", err))) from None
    click.echo(
        f"HELM /process at {url}\n  prompt: {prompt!r}\n  completion: {answer['text'].strip()!r}\n"
        f"  {len(answer['tokens'])} tokens, logprob {answer['logprob']:.2f}, "
        f"{answer['request_time']:.2f} s"
    )


if __name__ == "__main__":
    main()
