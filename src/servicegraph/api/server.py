"""The HTTP server: FastAPI with the GraphQL endpoint (``/graphql``, GraphiQL in a browser) and a
health check.

Where requests run, on a store read in-process (SQLite):

* a *quick* query (:mod:`servicegraph.api.quick`: a small response, root fields ``impact``,
  ``ci`` and ``me``) POSTed as JSON reads memory and a few indexed rows, so it is answered on
  the event loop itself, without strawberry's HTTP view (:func:`servicegraph.api.quick.answer`),
  a fraction of a millisecond each — but only when no one is writing the topology engine and it
  is caught up (:meth:`TopologyEngine.hold_if_free`; analyses in threads share it with them);
  otherwise, or when sent otherwise (GET, ``extensions``, a document with errors), it goes the
  small queries' way. (Handing each to a thread cost more than the query: two busy threads pass
  the interpreter lock back and forth; 405 -> 958 requests/s measured.)
  An impact whose blast radius turns out larger than a quick one
  (``limits.give_way_if_large``, right after the propagation) is run again in a worker thread,
  so the loop never builds a large answer;
* other *small* queries take turns on one lane of worker threads: threads side by side only
  contend for the interpreter lock; one waiting longer than ``LANE_WAIT`` (a slow one holds the
  lane) runs beside it;
* everything else, and every request on Neo4j, runs in a worker thread (on an event loop of that
  thread, for the DataLoaders), so a store call that waits — SQLite's write lock, a slow Neo4j —
  never stalls other requests. It gives way at its deadline checks while small ones are in
  flight, so a 10,000-row impact slows down instead of the requests of everyone else.

Each request runs within its time budget (:mod:`servicegraph.api.limits`). Bodies over the size
limit are refused before they are read.
Every error a client can cause comes back as JSON with a typed ``extensions.code``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import orjson
from cross_web import HTTPException
from fastapi import FastAPI, Request
from graphql import GraphQLError
from starlette.background import BackgroundTasks
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult

from servicegraph.api.graphql.context import Context
from servicegraph.api.graphql.schema import build_schema
from servicegraph.api.limits import (
    Limits,
    QueryTimeout,
    SmallRequests,
    deadline,
    timeout_error,
)
from servicegraph.api.python import ServiceGraph
from servicegraph.api.quick import answer, sort
from servicegraph.graph import kernels
from servicegraph.graph.engine import TopologyEngine
from servicegraph.processes.access import authenticate

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
APP_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MAX_ERRORS = 100  # errors listed in one response; `extensions.errorCount` gives the total
LANE_WAIT = 0.05  # seconds a small query waits for the lane before it runs beside the one in it
GC_THRESHOLD = 20_000  # allocations between young collections (CPython's default: 700)
SWITCH_INTERVAL = 0.0002  # seconds a busy thread keeps the interpreter lock (CPython's: 0.005)
_thread_loops = threading.local()


class _Router(GraphQLRouter[Context, None]):
    limits: Limits = Limits()
    lane: bool = False  # small queries take turns (the store's reads wait on nothing)
    engine: TopologyEngine | None = None  # quick queries run on the loop while it is free
    _small_lane: anyio.CapacityLimiter | None = None
    temporal_response: Response  # strawberry's: the response a request's resolvers may amend

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL with its scripts served from /static (machines running a CMDB are often
        offline; nothing is fetched from a CDN)."""
        return (STATIC / "graphiql" / "index.html").read_text("utf-8")

    def encode_json(self, data: object) -> bytes:
        """orjson: an impact listing 10k CIs is megabytes of JSON (the standard library took
        ~40 ms of the request for it)."""
        try:
            return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # e.g. an integer beyond 64 bits in a JSON attribute
            return json.dumps(data, separators=(",", ":")).encode()

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return self.decode_json(data)
        except orjson.JSONDecodeError as exc:
            reason = "not UTF-8 text" if "UTF-8" in exc.msg else exc.msg
            raise HTTPException(
                400, f"the body is not valid JSON (line {exc.lineno} column {exc.colno}: {reason})"
            ) from exc

    def decode_json(self, data: str | bytes) -> object:
        """orjson: refuses NaN/Infinity and invalid UTF-8 (JSON does), bounds nesting."""
        value = orjson.loads(data)
        if not isinstance(value, dict):
            raise HTTPException(
                400,
                'the body must be a JSON object: {"query": "...", "variables": {...}}',
            )
        return value

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().run(*args, **kwargs)
        except HTTPException as exc:
            code = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
            return _error_response(
                exc.status_code, code.get(exc.status_code, "BAD_REQUEST"), exc.reason
            )

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        run = super().execute_single
        budget = self.limits.request_timeout
        request = kwargs["request_data"] if "request_data" in kwargs else args[-1]
        query = getattr(request, "query", None)
        if isinstance(query, str) and len(query) > self.limits.max_query_chars:
            return ExecutionResult(data=None, errors=[_too_long(len(query), self.limits)])
        # A quick query sent as JSON was answered on the event loop (quick.answer) unless it could
        # not be; here it takes the small lane, as do the few others (e.g. GET) of its kind.
        context = kwargs.get("context")
        lane = context.lane if isinstance(context, Context) else None
        small = (lane or (self._kind(request) if self.lane else "large")) != "large"

        def work() -> ExecutionResult:
            loop = getattr(_thread_loops, "loop", None)
            if loop is None:
                loop = _thread_loops.loop = asyncio.new_event_loop()
            with deadline(budget, courteous=not small):
                try:
                    return loop.run_until_complete(run(*args, **kwargs))
                except QueryTimeout:
                    _cancel_pending(loop)
                    return ExecutionResult(data=None, errors=[timeout_error(budget)])

        if not small:
            return await anyio.to_thread.run_sync(work)
        # Small queries take turns on one lane: CPU-bound threads side by side only fight for
        # the interpreter lock. One that waits too long (a slow one holds the lane) runs beside.
        limiter = self._small_lane
        if limiter is None:
            limiter = self._small_lane = anyio.CapacityLimiter(1)
        SmallRequests.in_flight += 1  # large requests give way meanwhile (see check_deadline)
        try:
            held = False
            with anyio.move_on_after(LANE_WAIT):
                await limiter.acquire()
                held = True
            if not held:
                return await anyio.to_thread.run_sync(work)
            try:
                return await anyio.to_thread.run_sync(work)
            finally:
                limiter.release()
        finally:
            SmallRequests.in_flight -= 1

    def _kind(self, request: Any) -> str:
        """The request's lane (:func:`servicegraph.api.quick.sort`)."""
        schema = self.schema._schema  # type: ignore[attr-defined]
        return sort(schema, request.query, request.operation_name, request.variables).kind

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = process_result(result)
        errors: list[dict[str, Any]] | None = response.get("errors")  # type: ignore[assignment]
        if errors:
            for error in errors:
                extensions = error.setdefault("extensions", {})
                extensions.setdefault("code", _client_error_code(error))
            if len(errors) > MAX_ERRORS:
                response["errors"] = errors[:MAX_ERRORS]  # type: ignore[typeddict-item]
                extra: dict[str, Any] = dict(response.get("extensions") or {})
                extra["errorCount"] = len(errors)
                response["extensions"] = extra
        return response


def tune_interpreter() -> None:
    """For a server process, once its engine is built: the objects alive now (engine, libraries)
    live as long as the process, so they leave the cyclic collector's passes; a request that
    builds many rows is not interrupted every 700 allocations (measured: a 10,000-row impact
    took twice as long); and a thread that gave up the interpreter lock (a store read) gets it
    back within 1 ms, not 5, while another runs a large request."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    sys.setswitchinterval(SWITCH_INTERVAL)


def _client_error_code(error: dict[str, Any]) -> str:
    """A code for graphql-core's own errors (they come without one)."""
    message = str(error.get("message", ""))
    if message == "Unexpected error.":
        return "INTERNAL_SERVER_ERROR"
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    if error.get("path"):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION"


def _too_long(length: int, limits: Limits) -> GraphQLError:
    return GraphQLError(
        f"the query text is {length:,} characters, more than the limit of "
        f"{limits.max_query_chars:,} (SERVICEGRAPH_MAX_QUERY_CHARS); send the query without "
        "padding, with its values as variables",
        extensions={"code": "QUERY_TOO_LARGE", "length": length, "limit": limits.max_query_chars},
    )


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _error_response(status: int, code: str, message: str) -> JSONResponse:
    body = {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status)


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413 before reading them (Content-Length),
    or as soon as a streamed body passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                await self._refuse(send, 400, "BAD_REQUEST", "Content-Length is not a number")
                return
            if too_large:
                await self._refuse_size(send)
                return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse_size(send)

    async def _refuse_size(self, send: Send) -> None:
        await self._refuse(
            send,
            413,
            "PAYLOAD_TOO_LARGE",
            f"the request body is larger than {self.max_bytes:,} bytes "
            "(SERVICEGRAPH_MAX_BODY_BYTES); import large data with `servicegraph import`",
        )

    @staticmethod
    async def _refuse(send: Send, status: int, code: str, message: str) -> None:
        response = _error_response(status, code, message)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(response.body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


class _TooLarge(Exception):
    pass


WORKER_DB = "SERVICEGRAPH_SERVE_DB"  # what `serve --workers N` hands its worker processes
WORKER_MODEL = "SERVICEGRAPH_SERVE_MODEL"


def worker_app() -> FastAPI:
    """The app of one ``serve --workers N`` process: the store and model its parent was given
    (each worker holds its own topology engine, caught up from the shared journal per request)."""
    from servicegraph.api.python import connect

    models = [m for m in os.environ.get(WORKER_MODEL, "").split(os.pathsep) if m]
    app = create_app(connect(os.environ.get(WORKER_DB) or None, models, create=False))
    tune_interpreter()
    return app


def create_app(sg: ServiceGraph, limits: Limits | None = None) -> FastAPI:
    """An app serving ``sg``; the topology engine is built before the first request."""
    limits = limits or Limits.from_env()
    sg.engine.index  # noqa: B018 - open the projection (and index it) now, not on the first query
    kernels.warm_up()  # and compile its loops

    async def get_context(request: Request) -> Context:
        return Context(sg, request.headers.get("authorization"))

    app = FastAPI(title="servicegraph", version="0.1.0")
    local = sg.store.local_reads
    router_class = type(
        "Router",
        (_Router,),
        {"limits": limits, "lane": local, "engine": sg.engine if local else None},
    )
    router: _Router = router_class(
        build_schema(limits=limits), context_getter=get_context, graphql_ide="graphiql"
    )
    app.include_router(router, prefix="/graphql")

    async def graphql_post(request: Request) -> Response:
        """POST /graphql straight to the GraphQL view: what strawberry's FastAPI route does,
        without FastAPI solving its context as a dependency on every request (measured: 12 % of
        a small request's time). GET (GraphiQL) keeps strawberry's route."""
        context = await get_context(request)
        context.request = request
        context.background_tasks = BackgroundTasks()  # nothing adds any
        # what resolvers may amend (headers, status), empty as FastAPI makes it for a route
        sub = Response()
        del sub.headers["content-length"]
        sub.status_code = None  # type: ignore[assignment]
        context.response = router.temporal_response = sub
        response: Response | None = await answer(router, request, context)  # a quick query
        if response is None:
            response = await router.run(request=request, context=context, root_value=None)
        return response

    app.router.routes.insert(0, Route("/graphql", graphql_post, methods=["POST"]))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    origins = [o.strip() for o in os.environ.get("SERVICEGRAPH_CORS_ORIGINS", "").split(",")]
    if any(origins):  # off unless configured: browsers on other origins may not call the API
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[o for o in origins if o],
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )

    @app.get("/", include_in_schema=False)
    def web_app() -> Response:
        """The web map and impact explorer: its page and scripts from /static (nothing from a
        CDN; a content security policy allows this origin's scripts only — inline styles are
        allowed, cytoscape.js sets them); its data through /graphql with the user's token."""
        return HTMLResponse((STATIC / "app" / "index.html").read_text("utf-8"), headers=APP_HEADERS)

    @app.get("/health")
    def health(request: Request) -> Response:
        """Liveness for anyone; the store and its journal head only for a valid token."""
        body: dict[str, object] = {"status": "ok"}
        authorization = request.headers.get("authorization")
        if authorization:
            try:
                authenticate(sg.store, authorization)
            except Exception:
                authorization = None
        if authorization:
            body.update(store=sg.store.uri, journal_head=sg.store.head_seq())
        return JSONResponse(body)

    return app
