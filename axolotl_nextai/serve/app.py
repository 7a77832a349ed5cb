"""The FastAPI app: HELM's `/process`, `/tokenize`, `/decode` over a `HelmModel`, and its limits.

Every failure is a JSON `{"error": message}`: 4xx for a request the server will not serve (bad JSON, wrong
types, over a limit), 5xx when the model fails on a valid one. Neither stops the server.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from axolotl_nextai.serve.model import HelmModel, InvalidRequest
from axolotl_nextai.serve.schemas import (
    DecodeRequest,
    DecodeResponse,
    ProcessRequest,
    ProcessResponse,
    TokenizeRequest,
    TokenizeResponse,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Per-request bounds. 1 MiB holds a 4,096-token prompt many times over; the paper's HELM scenarios ask for
    at most a summary's worth of new tokens (CNN/DM)."""

    max_new_tokens: int = 1024
    max_body_bytes: int = 1 << 20


class BodyLimit:
    """ASGI middleware: refuse a POST without Content-Length (411) or over `max_bytes` (413) before reading it."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            length = dict(scope["headers"]).get(b"content-length")
            error = None
            if length is None or not length.isdigit():
                error = (411, "a Content-Length header is required")
            elif int(length) > self.max_bytes:
                error = (413, f"request body is {int(length)} bytes; the limit is {self.max_bytes}")
            if error:
                await JSONResponse({"error": error[1]}, status_code=error[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _validation_message(errors: list[dict]) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)


def create_app(model: HelmModel, limits: Limits = Limits()) -> FastAPI:
    app = FastAPI(title="axolotl-nextai HELM server")
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(_, exc: RequestValidationError):
        # Not the offending input: it can be huge, or NaN, which JSON cannot carry.
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"error": _validation_message(errors), "detail": errors}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    def call_model(call, *args):
        """Run a model call; its refusals become 422, its failures 500, logged, the server still up."""
        try:
            return call(*args)
        except InvalidRequest as exc:
            raise HTTPException(422, str(exc)) from exc
        except Exception as exc:
            log.exception("model call failed")
            raise HTTPException(500, f"model call failed: {type(exc).__name__}: {exc}") from exc

    # Plain `def` endpoints run in a thread pool, so a long generation never blocks the event loop.
    @app.post("/process", response_model=ProcessResponse)
    def process(req: ProcessRequest) -> ProcessResponse:
        start = time.perf_counter()
        if req.max_new_tokens > limits.max_new_tokens:
            raise HTTPException(422, f"max_new_tokens {req.max_new_tokens} is over this server's limit "
                                     f"of {limits.max_new_tokens}")
        text, tokens = call_model(model.process, req)
        return ProcessResponse(text=text, tokens=tokens, logprob=sum(t.logprob for t in tokens),
                               request_time=time.perf_counter() - start)

    @app.post("/tokenize", response_model=TokenizeResponse)
    def tokenize(req: TokenizeRequest) -> TokenizeResponse:
        start = time.perf_counter()
        tokens = call_model(model.tokenize, req.text, req.truncation, req.max_length)
        return TokenizeResponse(tokens=tokens, request_time=time.perf_counter() - start)

    @app.post("/decode", response_model=DecodeResponse)
    def decode(req: DecodeRequest) -> DecodeResponse:
        start = time.perf_counter()
        text = call_model(model.decode, req.tokens)
        return DecodeResponse(text=text, request_time=time.perf_counter() - start)

    return app
