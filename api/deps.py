"""Request dependencies: the running assistant, the session store, and who may call what."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from api.errors import ApiError
from api.ratelimit import RateLimiter, retry_after
from assistant.chat import SessionStore
from assistant.config import Settings
from assistant.pipeline import Assistant

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class KBGate:
    """Many readers or one writer. Ingest swaps the knowledge base's tables in several steps; answers must
    not see a half-swapped state. Writers get priority so an upload is not starved by a stream of questions.

    Unlike ``threading.RLock`` a hold may be released from another thread (streaming responses end there).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            self._cond.wait_for(lambda: not self._writing and not self._readers)
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


@dataclass
class Runtime:
    """What the server builds once at start-up (see ``api.app.lifespan``)."""

    settings: Settings
    assistant: Assistant
    sessions: SessionStore
    gate: KBGate = field(default_factory=KBGate)

    def close(self) -> None:
        self.assistant.close()


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_runtime(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:  # only when the app is used without its lifespan
        raise ApiError(503, "the assistant is still starting; try again in a moment")
    return runtime


SettingsDep = Annotated[Settings, Depends(get_settings)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _matches(token: str, keys: list[str]) -> bool:
    return any(hmac.compare_digest(token.encode(), key.encode()) for key in keys)


def _check_origin(request: Request, settings: Settings) -> None:
    """Refuse state-changing requests sent by a page from another site (CSRF through the user's browser)."""
    origin = request.headers.get("origin")
    if request.method not in UNSAFE_METHODS or not origin:
        return
    allowed = {o.strip().rstrip("/") for o in settings.cors_origins.split(",") if o.strip()}
    host = request.headers.get("host", "")
    if urlsplit(origin).netloc == host or origin.rstrip("/") in allowed:
        return
    raise ApiError(403, f"requests from the web page at {origin} are not allowed; add it to DUTY_CORS_ORIGINS")


def check_client(request: Request, settings: Settings, *, admin: bool = False) -> None:
    """Bearer keys when configured; otherwise only clients on this machine, addressed by a loopback name."""
    keys = settings.api_key_list + settings.admin_key_list
    if keys:
        token = bearer_token(request)
        if token is None:
            raise ApiError(401, "missing API key: send the header 'Authorization: Bearer <key>' (keys are set by DUTY_API_KEYS)",
                           headers={"WWW-Authenticate": "Bearer"})
        if not _matches(token, keys):
            _spend(request, RateLimiter.identity("addr", request.client.host if request.client else "?"))
            raise ApiError(401, "invalid API key; ask the administrator for a key listed in DUTY_API_KEYS",
                           headers={"WWW-Authenticate": "Bearer"})
        _spend(request, RateLimiter.identity("key", token))
        if admin and settings.admin_key_list and not _matches(token, settings.admin_key_list):
            raise ApiError(403, "this key may ask questions but not change documents; use a key from DUTY_ADMIN_KEYS")
    else:
        client = request.client.host if request.client else None
        if not is_loopback(client):
            raise ApiError(403, "this server has no API keys configured and only serves clients on the same machine; "
                                "set DUTY_API_KEYS to let other computers in")
        hostname = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
        if hostname not in LOOPBACK_NAMES and not is_loopback(hostname):
            # A loopback client addressing us by a foreign name is a DNS-rebinding page, not a person.
            raise ApiError(403, f"host name {hostname!r} is not served without API keys; open http://127.0.0.1 instead")
        _spend(request, RateLimiter.identity("addr", client or "?"))
    _check_origin(request, settings)


def _spend(request: Request, identity: str) -> None:
    """One request from ``identity``'s budget (DUTY_RATE_LIMIT_PER_MIN); 429 with Retry-After when it is spent."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    wait = limiter.take(identity) if limiter is not None else 0.0
    if limiter is not None and wait:
        raise ApiError(429, f"too many requests: the limit is {limiter.per_min} a minute per key "
                            f"(DUTY_RATE_LIMIT_PER_MIN); try again in {retry_after(wait)} s",
                       headers={"Retry-After": retry_after(wait)})


def require_client(request: Request, settings: SettingsDep) -> None:
    check_client(request, settings)


def require_admin(request: Request, settings: SettingsDep) -> None:
    check_client(request, settings, admin=True)


ClientDep = Depends(require_client)
AdminDep = Depends(require_admin)
