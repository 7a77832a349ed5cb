"""The FastAPI app: HELM's `/process`, `/tokenize`, `/decode` over a `HelmModel`, and its limits.

Every failure is a JSON `{"error": message}`: 4xx for a request the server will not serve (bad JSON, wrong
types, over a limit), 5xx when the model fails on a valid one. Neither stops the server. HELM logs only the
status line of a refusal ("422 Client Error") and drops the whole run spec, so the server logs each refusal's
reason, one line naming the path and the field or limit.
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from axolotl_nextai.serve.helm_model import HelmModel, InvalidRequest, Limits
from axolotl_nextai.serve.schemas import (
    Completion,
    DecodeRequest,
    DecodeResponse,
    ProcessRequest,
    ProcessResponse,
    TokenizeRequest,
    TokenizeResponse,
)

log = logging.getLogger(__name__)


def refusal(method: str, path: str, status: int, message: str, **extra) -> JSONResponse:
    """The JSON answer to a request the server will not serve, its reason logged."""
    log.warning("%s %s refused (%d): %s", method, path, status, message)
    return JSONResponse({"error": message, **extra}, status_code=status)


class BodyLimit:
    """ASGI middleware: refuse a POST without Content-Length (411) or over `max_bytes` (413) before reading
    it."""

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
                await refusal(scope["method"], scope["path"], *error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _validation_message(errors: list[dict]) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)


def create_app(model: HelmModel, limits: Limits | None = None) -> FastAPI:
    limits = limits or Limits()
    app = FastAPI(title="axolotl-nextai HELM server")
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        # Not the offending input: it can be huge, NaN or a lone surrogate, which JSON cannot carry.
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return refusal(request.method, request.url.path, 422, _validation_message(errors), detail=errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code < 500:
            return refusal(request.method, request.url.path, exc.status_code, str(exc.detail))
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
    @app.post("/process", response_model=ProcessResponse, response_model_exclude_none=True)
    def process(req: ProcessRequest) -> ProcessResponse:
        start = time.perf_counter()
        answer = call_model(model.process, req, limits)
        completions = [
            Completion(
                text="".join(t.text for t in tokens), tokens=tokens, logprob=sum(t.logprob for t in tokens)
            )
            for tokens in answer.completions
        ]
        return ProcessResponse(
            **completions[0].model_dump(),
            request_time=time.perf_counter() - start,
            completions=completions if len(completions) > 1 else None,
            dropped_prompt_tokens=answer.dropped_prompt_tokens,
        )

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
