"""Pieces shared by both WeCom channels: callback authentication, configuration checks, background workers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from api.wecom import crypto
from api.wecom.crypto import Reason, WeComCryptoError
from assistant.config import Settings

__all__ = ["MAX_BODY_BYTES", "CallbackRejected", "Dispatcher", "authenticate", "missing_settings"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""Callback bodies are a few hundred bytes; anything this large is not from WeCom."""

_STATUS = {
    Reason.BAD_SIGNATURE: 403,
    Reason.STALE_TIMESTAMP: 403,
    Reason.WRONG_RECEIVE_ID: 403,
    Reason.BAD_PADDING: 400,
    Reason.MALFORMED_INPUT: 400,
    Reason.INVALID_KEY: 503,
}


class CallbackRejected(Exception):
    """A callback that must not be processed; the router answers with ``status`` and ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def missing_settings(settings: Settings, fields: tuple[str, ...]) -> list[str]:
    """The ``DUTY_*`` variable names of the ``fields`` that are unset or blank."""
    return [f"DUTY_{name.upper()}" for name in fields if not str(getattr(settings, name) or "").strip()]


def authenticate(
    *,
    token: str,
    aes_key: str,
    receive_id: str,
    max_skew_s: int,
    msg_signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    encrypted: str | None,
    key_setting: str,
) -> str:
    """Verify signature and timestamp of a callback, then decrypt it.

    The signature is checked first so that decryption errors are reachable only by WeCom-signed input.

    Returns:
        The decrypted message (echostr plaintext, XML or JSON).

    Raises:
        CallbackRejected: 400 (missing/malformed), 403 (signature, stale timestamp, ReceiveId), 503 (bad key).
    """
    if not msg_signature or not timestamp or not nonce or not encrypted:
        raise CallbackRejected(400, "missing msg_signature, timestamp, nonce or the encrypted payload")
    try:
        crypto.check_signature(token, timestamp, nonce, encrypted, msg_signature)
        crypto.check_timestamp(timestamp, max_skew_s=max_skew_s)
        return crypto.decrypt(aes_key, encrypted, receive_id=receive_id)
    except WeComCryptoError as exc:
        status = _STATUS.get(exc.reason, 400)
        log.warning("wecom callback rejected: %s (%s)", exc.reason.value, exc)
        detail = {
            Reason.BAD_SIGNATURE: "invalid msg_signature",
            Reason.STALE_TIMESTAMP: "timestamp outside the allowed skew (DUTY_WECOM_MAX_SKEW_S)",
            Reason.WRONG_RECEIVE_ID: "ReceiveId mismatch: check DUTY_WECOM_CORP_ID",
            Reason.INVALID_KEY: f"{key_setting} must be the 43-character EncodingAESKey from the WeCom console",
        }.get(exc.reason, f"malformed callback: {exc.reason.value}")
        raise CallbackRejected(status, detail) from exc


class Dispatcher:
    """A small worker pool for answering after the callback was acknowledged.

    Created lazily; bounded queue so a flood of callbacks cannot pile up unbounded work.
    """

    def __init__(self, *, max_workers: int = 2, max_pending: int = 256) -> None:
        self._max_workers = max_workers
        self._max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[..., object], *args: object) -> bool:
        """Run ``fn(*args)`` in the background; False (and nothing runs) when the queue is full."""
        with self._lock:
            if self._pending >= self._max_pending:
                log.error("wecom worker queue full (%d jobs); message dropped", self._pending)
                return False
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="wecom")
            self._pending += 1
            executor = self._executor
        executor.submit(self._run, fn, args)
        return True

    def _run(self, fn: Callable[..., object], args: tuple[object, ...]) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("wecom background job failed")
        finally:
            with self._lock:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self, *, wait: bool = False) -> None:
        """Stop accepting work; pending jobs are cancelled unless ``wait``."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=not wait)
