"""Connection limits uvicorn lacks, so the server survives its network.

uvicorn times out only idle keep-alive connections after a response: a client that connects and sends nothing,
or sends a request a byte at a time, holds a file descriptor for ever, and ~20,000 of them exhaust the
process's descriptors (new clients cannot connect; asyncio logs an accept traceback on every try). So the
server's h11 protocol here closes a connection whose request is not complete `request_timeout` seconds after
it connected or after its last response (408 if it began one), answers a connection beyond `max_connections`
with a 503 and closes it at once, and says each kind of refusal in one log line, then at most once a minute
with the count since.
"""

from __future__ import annotations

import json
import logging
import resource
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

# Descriptors the server needs besides its connections: the listening socket, stdio, model files, threads'
# pipes.
RESERVED_DESCRIPTORS = 256


class RefusalLog:
    """One log line for the first refusal of a kind, then at most one every `every_s` seconds with the
    count."""

    def __init__(self, every_s: float = 60.0):
        self.every_s = every_s
        self.unlogged: dict[str, int] = {}
        self.last: dict[str, float] = {}

    def note(self, kind: str, message: str) -> None:
        self.unlogged[kind] = self.unlogged.get(kind, 0) + 1
        now = time.monotonic()
        if kind in self.last and now - self.last[kind] < self.every_s:
            return
        count = self.unlogged.pop(kind)
        later = "; later ones are counted here once a minute" if kind not in self.last else ""
        log.warning("%s (%d since the last such line%s)", message, count, later)
        self.last[kind] = now


def raise_descriptor_limit(max_connections: int) -> None:
    """Lift this process's soft descriptor limit to what `max_connections` needs; a ValueError saying the
    numbers when the hard limit is lower."""
    need = max_connections + RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise ValueError(
                f"--max-connections {max_connections} needs {need} file descriptors; this process "
                f"may open {hard} (ulimit -n): lower --max-connections"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def guarded_h11(max_connections: int, request_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the connection bound and the request deadline above
    (`uvicorn.run(http=...)`)."""
    refusals = RefusalLog()

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.deadline = None
            if len(self.connections) > max_connections:
                refusals.note(
                    "connections", f"refused connections: {max_connections} are open (--max-connections)"
                )
                self.answer_and_close(503, "Service Unavailable", "too many open connections; retry later")
                return
            self.start_deadline()

        def data_received(self, data: bytes) -> None:
            self.request_started = True
            super().data_received(data)
            if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):  # the request is in
                self.stop_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self.start_deadline()  # the next request has the same time to arrive

        def connection_lost(self, exc) -> None:
            self.stop_deadline()
            super().connection_lost(exc)

        def start_deadline(self) -> None:
            self.stop_deadline()
            self.request_started = False
            self.deadline = self.loop.call_later(request_timeout, self.too_slow)

        def stop_deadline(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def too_slow(self) -> None:
            self.deadline = None
            refusals.note(
                "timeouts",
                f"closed connections that sent no complete request within "
                f"{request_timeout:g} s (--request-timeout)",
            )
            # A 408 only to a request begun and not answered: on an idle keep-alive connection a client could
            # read it as the answer to its next request.
            if self.request_started and self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                self.answer_and_close(
                    408, "Request Timeout", f"no complete request within {request_timeout:g} s"
                )
            else:
                self.transport.close()

        def answer_and_close(self, status: int, reason: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            head = (
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            ).encode()
            self.transport.write(head + body)
            self.transport.close()

    return GuardedH11Protocol
