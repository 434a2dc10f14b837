"""Minimal WeCom server API client: ``gettoken`` + ``message/send`` (docs 91039, 90236).

Synchronous on purpose: replies are sent from worker threads, never from the event loop. The access token is
cached until shortly before it expires and refreshed once, single-flight, when WeCom rejects it early
(40014 / 42001 / 41001). Transient failures (network errors, HTTP 5xx, errcode -1) are retried a bounded number
of times with exponential backoff. Tokens and secrets never appear in logs.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["TOKEN_ERRORS", "WeComAPIError", "WeComClient"]

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40014, 42001, 41001})
_RETRYABLE_ERRCODES = frozenset({-1})
_HINTS = {
    40001: "the Secret is wrong: copy the app's Secret into DUTY_WECOM_SECRET",
    40013: "the CorpID is wrong: set DUTY_WECOM_CORP_ID to 我的企业 → 企业ID",
    40056: "the AgentId is wrong: set DUTY_WECOM_AGENT_ID to the app's AgentId",
    40058: "a parameter is invalid (message too long?)",
    45009: "API rate limit reached; replies resume later",
    48002: "the app has no permission for this API",
    60020: "this server's egress IP is not in the app's 企业可信IP list (应用管理 → app → 企业可信IP)",
    81013: "the user is outside the app's 可见范围 (visible range)",
}
_SECRET_QUERY = re.compile(r"(access_token|corpsecret)=[^&\s\"']+")


class WeComAPIError(Exception):
    """WeCom answered with a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str, *, api: str) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        hint = _HINTS.get(errcode)
        super().__init__(f"WeCom {api} failed: errcode {errcode} ({errmsg})" + (f"; {hint}" if hint else ""))


class _RedactSecrets(logging.Filter):
    """httpx logs request URLs at INFO level; strip the token and secret from them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                _SECRET_QUERY.sub(r"\1=***", str(a)) if isinstance(a, str | httpx.URL) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        return True


_redaction_installed = False
_redaction_lock = threading.Lock()


def _install_redaction() -> None:
    global _redaction_installed
    with _redaction_lock:
        if not _redaction_installed:
            logging.getLogger("httpx").addFilter(_RedactSecrets())
            _redaction_installed = True


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float


class WeComClient:
    """Sends application messages as one self-built app."""

    def __init__(
        self,
        *,
        api_base: str,
        corp_id: str,
        secret: str,
        agent_id: int,
        http: httpx.Client | None = None,
        timeout_s: float = 10.0,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _install_redaction()
        self._base = api_base.rstrip("/")
        self._corp_id = corp_id
        self._secret = secret
        self.agent_id = agent_id
        self._http = http or httpx.Client(timeout=timeout_s)
        self._owns_http = http is None
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff_s
        self._sleep = sleep
        self._clock = clock
        self._token: _Token | None = None
        self._token_lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ token

    def access_token(self) -> str:
        """The cached access token, fetched when missing or about to expire."""
        with self._token_lock:
            if self._token is not None and self._clock() < self._token.expires_at:
                return self._token.value
            return self._fetch_token_locked()

    def _refresh(self, *, stale: str) -> str:
        """Replace a token WeCom rejected; concurrent callers with the same stale token fetch only once."""
        with self._token_lock:
            if (
                self._token is not None
                and self._token.value != stale
                and self._clock() < self._token.expires_at
            ):
                return self._token.value
            return self._fetch_token_locked()

    def _fetch_token_locked(self) -> str:
        data = self._request(
            "GET", "/cgi-bin/gettoken", params={"corpid": self._corp_id, "corpsecret": self._secret}
        )
        if data.get("errcode", 0) != 0 or not data.get("access_token"):
            self._token = None
            raise WeComAPIError(
                int(data.get("errcode", -2)), str(data.get("errmsg", "no access_token")), api="gettoken"
            )
        expires_in = float(data.get("expires_in", 7200))
        # Refresh a little early: WeCom may invalidate tokens before expires_in anyway.
        margin = min(300.0, expires_in / 10)
        self._token = _Token(str(data["access_token"]), self._clock() + expires_in - margin)
        log.info("wecom access token obtained (valid %.0f s)", expires_in)
        return self._token.value

    # ---------------------------------------------------------------------------------------- sending

    def send_text(self, user_id: str, content: str) -> dict[str, Any]:
        """Send one ``text`` application message to a member.

        Args:
            user_id: The member's UserID (``FromUserName`` of the callback).
            content: At most 2048 UTF-8 bytes (WeCom truncates longer text).

        Returns:
            WeCom's JSON answer (``errcode`` 0).

        Raises:
            WeComAPIError: WeCom refused the message (after one token refresh, if the token was the problem).
            httpx.HTTPError: The API could not be reached after the bounded retries.
        """
        payload = {
            "touser": user_id,
            "msgtype": "text",
            "agentid": self.agent_id,
            "text": {"content": content},
            "safe": 0,
            # Duplicate check off: a teacher asking the same question twice should get two answers.
            "enable_duplicate_check": 0,
        }
        data = self._post_with_token("/cgi-bin/message/send", payload)
        if data.get("invaliduser"):
            log.warning("wecom message/send: invalid user(s) %s", data.get("invaliduser"))
        return data

    def _post_with_token(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        token = self.access_token()
        for attempt in ("first", "after-refresh"):
            data = self._request("POST", path, params={"access_token": token}, json=payload)
            code = int(data.get("errcode", 0))
            if code in TOKEN_ERRORS and attempt == "first":
                log.info("wecom rejected the access token (errcode %s); refreshing once", code)
                token = self._refresh(stale=token)
                continue
            if code != 0:
                raise WeComAPIError(code, str(data.get("errmsg", "")), api=path.rsplit("/cgi-bin/", 1)[-1])
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(
        self, method: str, path: str, *, params: dict[str, str], json: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One API call with bounded retries on transient failures; returns the decoded JSON."""
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._http.request(method, self._base + path, params=params, json=json)
                if response.status_code >= 500:
                    raise httpx.HTTPStatusError(
                        f"HTTP {response.status_code}", request=response.request, response=response
                    )
                response.raise_for_status()
                data = response.json()
                if not isinstance(data, dict):
                    raise ValueError("WeCom answered with non-object JSON")
                if int(data.get("errcode", 0)) not in _RETRYABLE_ERRCODES:
                    return data
                failure = f"errcode {data.get('errcode')} ({data.get('errmsg', '')})"
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code < 500:
                    raise
                if attempt == self._max_attempts:
                    raise
                failure = type(exc).__name__
            if attempt == self._max_attempts:
                return data
            delay = self._backoff * 2 ** (attempt - 1)
            log.warning(
                "wecom %s failed (%s); retry %d/%d in %.1f s",
                path,
                failure,
                attempt,
                self._max_attempts - 1,
                delay,
            )
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._owns_http:
            self._http.close()
