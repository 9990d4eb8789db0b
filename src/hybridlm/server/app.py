"""The gateway: an OpenAI-compatible API in front of the pipeline, built from a config."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from hybridlm import __version__
from hybridlm.access.keys import KeyStore, default_keys_path
from hybridlm.config import Config
from hybridlm.pipeline import Pipeline
from hybridlm.server.access import AccessControl, caller_of
from hybridlm.server.admin import router as admin_router
from hybridlm.server.chat.api_router import router as chat_router
from hybridlm.server.chat.serving import ChatService
from hybridlm.server.dashboard.api_router import router as dashboard_router
from hybridlm.failures import APIError
from hybridlm.server.factcheck.api_router import router as factcheck_router
from hybridlm.server.factcheck.serving import FactCheckService
from hybridlm.server.feedback.api_router import router as feedback_router
from hybridlm.server.feedback.serving import FeedbackService
from hybridlm.server.health import router as health_router
from hybridlm.server.metrics import router as metrics_router
from hybridlm.server.summarize.api_router import router as summarize_router
from hybridlm.server.summarize.serving import SummarizeService
from hybridlm.server.boundary import ErrorBoundary
from hybridlm.server.responses import json_response
from hybridlm.server.results import rejected


async def _purge_hourly(pipeline: Pipeline) -> None:
    """The request log keeps rows for the retention period only: checked at start-up and every hour."""
    while True:
        await asyncio.to_thread(pipeline.purge_expired)
        await asyncio.sleep(3600)


def build_app(config: Config, pipeline: Pipeline | None = None) -> FastAPI:
    """Everything the app needs lives on `app.state`; nothing is module-global."""
    pipeline = pipeline or Pipeline.from_config(config)
    keys = KeyStore(default_keys_path(config.resolved_data_dir()))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """CPU-bound work (encoders, skills, grading, fact-checks) runs in one bounded pool; whatever loads
        lazily loads now, never inside a request."""
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(config.server.workers, thread_name_prefix="hybridlm-cpu")
        loop.set_default_executor(pool)
        await asyncio.to_thread(pipeline.warm_up)
        gc.collect()
        gc.freeze()  # the models' many objects live as long as the app: no collection needs to walk them again
        retention = asyncio.create_task(_purge_hourly(pipeline))
        yield
        retention.cancel()
        await pipeline.aclose()
        pipeline.metrics.close()
        keys.close()
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="hybridlm gateway", version=__version__, lifespan=lifespan)
    app.state.pipeline = pipeline
    app.state.keys = keys
    app.state.chat = ChatService(pipeline)
    app.state.feedback = FeedbackService(pipeline)
    app.state.summarize = SummarizeService(pipeline)
    app.state.factcheck = FactCheckService(pipeline)
    app.state.started = time.time()
    app.include_router(chat_router)
    app.include_router(feedback_router)
    app.include_router(summarize_router)
    app.include_router(factcheck_router)
    app.include_router(dashboard_router)
    app.include_router(admin_router)
    app.include_router(health_router)
    app.include_router(metrics_router)

    @app.get("/v1/models")
    async def list_models() -> Response:
        created = int(app.state.started)
        data = [{"id": name, "object": "model", "created": created, "owned_by": "hybridlm"}
                for name in pipeline.model_names()]
        return json_response({"object": "list", "data": data})

    def refused(request: Request, err: APIError) -> Response:
        result = rejected(pipeline, err, request.url.path, caller=caller_of(request))
        return json_response(result.body, result.status, result.headers)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> Response:
        return refused(request, exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return refused(request, APIError(exc.status_code, str(exc.detail), code=code))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return refused(request, APIError(400, f"Invalid value for '{where}': {first.get('msg', 'invalid')}",
                                         code="invalid_request", param=where))

    # Added innermost first: CORS answers preflights before the front door asks for a key; the boundary
    # guards both.
    app.add_middleware(AccessControl, pipeline=pipeline, keys=keys)
    app.add_middleware(ErrorBoundary)
    if config.server.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=config.server.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type"])

    return app
