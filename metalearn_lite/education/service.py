"""The adaptive tutor as an HTTP service (``metalearn serve``): a FastAPI app around a ``TutorModel``.

Endpoints (JSON in, JSON out):

- ``GET /health``: ``{"status": "ok", "num_items": I, "groups": [...], "model": {...}}``.
- ``GET /items``: the item ids clients may send, with their groups.
- ``POST /next-item``: body ``{"answers": [{"item": "quant_07", "correct": true}, ...], "group": null}``
  -> ``{"item": name, "index": i, "p_correct": p, "information": info, "num_answers": K}``:
  the unanswered item (in ``group`` if given) that tells most about this student
  (``TutorModel.next_item``).
- ``POST /mastery``: the same body (without ``group``) -> ``{"num_answers": K, "mastery":
  {group: {"mean": m, "sd": s}, ..., "all": {...}}}`` (``TutorModel.mastery``).

An ``item`` is a name from ``GET /items`` or an index 0..I-1; each item at most once; at most
I answers. Bad input never gives a 500: malformed JSON, wrong types, unknown fields or item
ids, repeated items, too many answers -> 422 with ``detail`` (what was wrong, where) and
``expected`` (the body's shape); a body over ``max_body_bytes`` -> 413. The answers equal
the in-process ``TutorModel`` answers bit for bit (tests/test_service.py).

The model math is numpy on tiny arrays (microseconds); handlers are ``async`` so they run on
the event loop without a thread-pool hop. ``serve`` runs uvicorn on a socket it binds itself
(port 0 picks a free port, reported through ``on_ready``).
"""
import json
import socket
from typing import Callable, Optional, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from .tutor import TutorInputError, TutorModel

__all__ = ["create_app", "serve", "bind_socket", "BODY_SHAPE", "DEFAULT_MAX_BODY_BYTES"]

DEFAULT_MAX_BODY_BYTES = 64 * 1024
BODY_SHAPE = ('{"answers": [{"item": <item name from GET /items, or index>, "correct": true or false}, ...], '
              '"group": <optional group name, /next-item only>}')


def _json_bytes(payload: dict) -> bytes:
    # the same encoding as starlette's JSONResponse
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


class _Front:
    """ASGI middleware in front of the FastAPI app.

    1. Rejects request bodies over ``limit`` bytes with 413 before anything parses them (it reads
       the body, bounded, so chunked uploads are capped too).
    2. Fast path: ``POST`` to a path in ``fast_routes`` (``path -> handler(body) -> (status,
       payload)``) is answered here, with the same handler the FastAPI route calls, skipping the
       framework's routing, request object and exception layers (measured in
       ``bench/tutor_load.py``). Everything else is replayed to the FastAPI app.
    """

    def __init__(self, app, limit: int, fast_routes: dict | None = None):
        self.app = app
        self.limit = limit
        self.fast_routes = fast_routes or {}

    async def _reject(self, send, size: str) -> None:
        body = json.dumps({"detail": f"request body too large: {size}, expected at most {self.limit} bytes",
                           "expected": BODY_SHAPE}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    return await self._reject(send, f"{declared} bytes declared")
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            body += message.get("body", b"")
            if len(body) > self.limit:
                return await self._reject(send, f"over {len(body)} bytes sent")
            if not message.get("more_body", False):
                break
        handler = self.fast_routes.get(scope["path"]) if scope["method"] == "POST" else None
        if handler is not None:
            status, payload = handler(bytes(body))
            data = _json_bytes(payload)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data})
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def create_app(tutor: TutorModel, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, fast_path: bool = True) -> FastAPI:
    """The ASGI app serving ``tutor`` (see the module docstring for the endpoints).

    ``fast_path=False`` routes the POST endpoints through FastAPI too (same handlers, same answers;
    slower, kept for comparison in ``bench/tutor_load.py`` and the tests).
    """
    max_answers = tutor.num_items

    class Answer(BaseModel):
        model_config = ConfigDict(extra="forbid")
        item: Union[StrictStr, StrictInt] = Field(description="item name (GET /items) or index")
        correct: StrictBool

    class MasteryRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        answers: list[Answer] = Field(max_length=max_answers, description=f"at most {max_answers}, one per item")

    class NextItemRequest(MasteryRequest):
        group: Optional[StrictStr] = None

    app = FastAPI(title="metalearn-lite adaptive tutor",
                  description="Chapter 06's meta-learned student model: next item and predicted mastery.")

    def _invalid_payload(errors) -> dict:
        problems = []
        for err in errors:
            where = ".".join(str(part) for part in err.get("loc", ()) if part != "body") or "body"
            problems.append({"where": where, "problem": err.get("msg", "invalid")})
        return {"detail": problems, "expected": BODY_SHAPE}

    def _invalid_response(errors) -> JSONResponse:
        return JSONResponse(_invalid_payload(errors), status_code=422)

    def _handler(model, answer):
        """body bytes -> (status, payload): validate, check the answers, ask the tutor."""

        def handle(body: bytes) -> tuple[int, dict]:
            try:
                request = model.model_validate_json(body)
                items_ = tutor.item_indices([a.item for a in request.answers])
                return 200, answer(request, items_, [1.0 if a.correct else 0.0 for a in request.answers])
            except ValidationError as exc:
                return 422, _invalid_payload(exc.errors())
            except TutorInputError as exc:
                return 422, {"detail": [{"where": "answers", "problem": str(exc)}], "expected": BODY_SHAPE}

        return handle

    def _next_item(request, items_, answers) -> dict:
        nxt = tutor.next_item(items_, answers, request.group)
        return {"item": nxt.name, "index": nxt.index, "p_correct": nxt.p_correct,
                "information": nxt.information, "num_answers": len(answers)}

    def _mastery(request, items_, answers) -> dict:
        result = tutor.mastery(items_, answers)
        return {"num_answers": len(answers), "mastery": {k: {"mean": v.mean, "sd": v.sd} for k, v in result.items()}}

    handlers = {"/next-item": _handler(NextItemRequest, _next_item), "/mastery": _handler(MasteryRequest, _mastery)}

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _invalid_response(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # e.g. 400 for a body the JSON parser gave up on (nested too deeply), 404, 405
        return JSONResponse({"detail": exc.detail, "expected": BODY_SHAPE}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "num_items": tutor.num_items, "groups": list(tutor.group_names),
                             "model": tutor.metadata})

    @app.get("/items")
    async def items() -> JSONResponse:
        return JSONResponse({"items": list(tutor.item_names), "groups": list(tutor.groups)})

    # The POST routes read the raw body and validate it with pydantic-core's JSON parser
    # (model_validate_json): the same checks as a typed FastAPI parameter, without its generic
    # json.loads + dependency solving. With fast_path (the default) the front middleware answers
    # these two paths itself with the same handlers; the routes document them (/docs) and serve
    # them when fast_path is off.
    def _body_doc(model) -> dict:
        schema = model.model_json_schema()
        defs = schema.pop("$defs", {})

        def inline(node):  # the OpenAPI document has no "#/$defs": put the referenced schemas in place
            if isinstance(node, dict):
                ref = node.get("$ref", "")
                if ref.startswith("#/$defs/"):
                    return inline(defs[ref.split("/")[-1]])
                return {k: inline(v) for k, v in node.items()}
            if isinstance(node, list):
                return [inline(v) for v in node]
            return node

        return {"requestBody": {"required": True, "description": BODY_SHAPE,
                                "content": {"application/json": {"schema": inline(schema)}}}}

    @app.post("/next-item", openapi_extra=_body_doc(NextItemRequest))
    async def next_item(request: Request) -> JSONResponse:
        status, payload = handlers["/next-item"](await request.body())
        return JSONResponse(payload, status_code=status)

    @app.post("/mastery", openapi_extra=_body_doc(MasteryRequest))
    async def mastery(request: Request) -> JSONResponse:
        status, payload = handlers["/mastery"](await request.body())
        return JSONResponse(payload, status_code=status)

    app.add_middleware(_Front, limit=max_body_bytes, fast_routes=handlers if fast_path else None)
    return app


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one (read it with ``getsockname()``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(tutor: TutorModel, host: str = "127.0.0.1", port: int = 8000, *,
          max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, log_level: str = "warning",
          on_ready: Callable[[str, int], None] | None = None) -> None:
    """Run the service until interrupted (Ctrl-C / SIGTERM); ``on_ready(host, port)`` after binding."""
    import uvicorn

    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(tutor, max_body_bytes=max_body_bytes), log_level=log_level,
                            access_log=False, backlog=2048)
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(host, bound_port)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
