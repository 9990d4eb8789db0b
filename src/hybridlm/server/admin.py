"""GET /admin/keys: the key store's keys, for an admin key only (the front door checks); never a
secret or its hash."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hybridlm.access.keys import KeyStore
from hybridlm.server.responses import json_response

router = APIRouter()


@router.get("/admin/keys")
async def list_keys(request: Request) -> Response:
    keys: KeyStore = request.app.state.keys
    return json_response({"object": "list", "data": [key.as_dict() for key in keys.list()]})
