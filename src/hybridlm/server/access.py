"""The gateway's front door, before any endpoint: the Host of the admin pages, the API key, the
body's media type. A request that passes carries its `Caller` in `scope["state"]`, where the
endpoints read it (`caller_of`) and hand it to the pipeline in `Request(caller=...)`; one that
does not is answered in OpenAI's shape and logged once, like every refusal.

- Admin pages (`/dashboard...`, `/metrics`, `/admin/...`) answer only to the hosts in
  `server.allowed_hosts`, so a page on another site cannot reach them by pointing its own name at
  this machine (DNS rebinding).
- With any active key in the key store, every path but `/healthz` needs `Authorization: Bearer
  <secret>`, and the admin pages an admin key. With none, the gateway is open (loopback only,
  unless `allow_open`: see `access.exposure`).
- A body must be `application/json`: a cross-site HTML form can only send `text/plain`, form or
  multipart bodies without asking first, and those are refused (415).
"""

from __future__ import annotations

import base64

import orjson
from fastapi import Request
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from typing import TYPE_CHECKING

from hybridlm.access.keys import KeyStore
from hybridlm.failures import APIError
from hybridlm.request import Caller
from hybridlm.server.results import rejected

if TYPE_CHECKING:
    from hybridlm.pipeline import Pipeline

OPEN_PATHS = frozenset({"/healthz"})
ADMIN_PAGES = frozenset({"/metrics", "/admin"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_MEDIA_TYPE = "application/json"
ANY_HOST = "*"
CALLER = "caller"  # the key in scope["state"]


def caller_of(request: Request) -> Caller | None:
    """Who sent the request, as the front door found it (None: the gateway runs without keys)."""
    caller: Caller | None = request.scope.get("state", {}).get(CALLER)
    return caller


def is_dashboard_path(path: str) -> bool:
    return path == "/dashboard" or path.startswith("/dashboard/")


def is_admin_path(path: str) -> bool:
    return is_dashboard_path(path) or path in ADMIN_PAGES or path.startswith("/admin/")


def host_name(header: str) -> str:
    """A Host header without its port: `[::1]:8000` -> `[::1]`, `localhost:8000` -> `localhost`."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def bearer_token(headers: Headers, basic: bool = False) -> str | None:
    """The key sent as `Bearer <key>`, or with `basic` as the password of HTTP Basic (what a browser sends
    once it has asked its user)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if basic and scheme.lower() == "basic":
        try:
            token = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return None
    elif scheme.lower() != "bearer":
        return None
    return token.strip() or None


class AccessControl:
    """Pure ASGI middleware, so it runs before routing and guards streamed endpoints alike."""

    def __init__(self, app: ASGIApp, pipeline: Pipeline, keys: KeyStore) -> None:
        self.app = app
        self.pipeline = pipeline
        self.keys = keys
        server = pipeline.config.server
        self.allowed_hosts = {host.lower() for host in server.allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, headers = str(scope["path"]), Headers(scope=scope)
        caller: Caller | None = None
        try:
            self._check_host(path, headers)
            caller = self._authenticate(path, headers)
            self._check_admin(path, caller)
            self._check_body(str(scope["method"]), headers)
        except APIError as err:
            result = rejected(self.pipeline, err, path, caller=caller)
            response = Response(orjson.dumps(result.body), result.status, result.headers, JSON_MEDIA_TYPE)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[CALLER] = caller
        await self.app(scope, receive, send)

    def _check_host(self, path: str, headers: Headers) -> None:
        if not is_admin_path(path) or ANY_HOST in self.allowed_hosts:
            return
        host = host_name(headers.get("host", ""))
        if host not in self.allowed_hosts:
            raise APIError(421, f"This gateway does not answer to the host '{host[:100]}' for {path}; add it to "
                                "server.allowed_hosts to allow it", code="host_not_allowed")

    def _authenticate(self, path: str, headers: Headers) -> Caller | None:
        """The key's caller; None when no key is needed (no active key, or an open path)."""
        if path in OPEN_PATHS or not self.keys.active():
            return None
        page = is_dashboard_path(path)
        secret = bearer_token(headers, basic=page)
        # A browser asks its user for the dashboard's key when told Basic; any user name, the key as password.
        challenge = 'Basic realm="hybridlm dashboard", charset="UTF-8"' if page else 'Bearer realm="hybridlm"'
        if secret is None:
            raise APIError(401, "You didn't provide an API key. Send it in an Authorization header using Bearer "
                                "auth (Authorization: Bearer YOUR_KEY); `hybridlm keys create` makes one.",
                           code="invalid_api_key", headers={"www-authenticate": challenge})
        caller = self.keys.lookup(secret)
        if caller is None:
            raise APIError(401, "Incorrect API key provided (unknown or revoked).", code="invalid_api_key",
                           headers={"www-authenticate": challenge if page else
                                    'Bearer realm="hybridlm", error="invalid_token"'})
        return caller

    @staticmethod
    def _check_admin(path: str, caller: Caller | None) -> None:
        if caller is not None and not caller.admin and is_admin_path(path):
            raise APIError(403, f"{path} needs an admin key (`hybridlm keys create NAME --admin`)",
                           code="admin_key_required")

    @staticmethod
    def _check_body(method: str, headers: Headers) -> None:
        if method not in BODY_METHODS:
            return
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE:
            raise APIError(415, f"Send the request body as {JSON_MEDIA_TYPE} (Content-Type was "
                                f"'{media_type[:100] or 'missing'}')", code="unsupported_media_type")
