"""The gateway: an OpenAI-compatible API in front of the pipeline, built from a config."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from hybridlm import __version__
from hybridlm.config import Config
from hybridlm.pipeline import Pipeline
from hybridlm.server.chat.api_router import router as chat_router
from hybridlm.server.chat.serving import ChatService
from hybridlm.server.dashboard import router as dashboard_router
from hybridlm.server.errors import APIError
from hybridlm.server.factcheck.api_router import router as factcheck_router
from hybridlm.server.factcheck.serving import FactCheckService
from hybridlm.server.feedback.api_router import router as feedback_router
from hybridlm.server.feedback.serving import FeedbackService
from hybridlm.server.summarize.api_router import router as summarize_router
from hybridlm.server.summarize.serving import SummarizeService
from hybridlm.server.responses import json_response


def build_app(config: Config, pipeline: Pipeline | None = None) -> FastAPI:
    """Everything the app needs lives on `app.state`; nothing is module-global."""
    pipeline = pipeline or Pipeline.from_config(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await pipeline.aclose()

    app = FastAPI(title="hybridlm gateway", version=__version__, lifespan=lifespan)
    app.state.pipeline = pipeline
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

    @app.get("/v1/models")
    async def list_models() -> Response:
        created = int(app.state.started)
        data = [{"id": name, "object": "model", "created": created, "owned_by": "hybridlm"}
                for name in pipeline.model_names()]
        return json_response({"object": "list", "data": data})

    @app.get("/healthz")
    async def healthz() -> Response:
        tiers = {name: {"backend": config.tiers[name].backend, "model": backend.model_name,
                        **(backend.describe() if hasattr(backend, "describe") else {})}
                 for name, backend in pipeline.backends.items()}
        degraded = any(tier.get("status") == "degraded" for tier in tiers.values())  # e.g. an upstream's circuit open
        return json_response({"status": "degraded" if degraded else "ok", "version": __version__, "tiers": tiers,
                              "router": pipeline.router.name, "remote_tier": pipeline.remote_tier})

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return json_response(APIError(exc.status_code, str(exc.detail), code=code).body(), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        return json_response(APIError(400, str(exc.errors()[:3]), code="invalid_request").body(), 400)

    return app
