"""Delivering reply pieces to a member in order, within WeCom's per-member rate limits."""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["APP_MEMBER_LIMITS", "RateLimiter", "ReplySender"]

log = logging.getLogger(__name__)

APP_MEMBER_LIMITS = ((30, 60.0), (1000, 3600.0))
"""message/send: per app and member at most 30 messages a minute and 1000 an hour; excess is dropped silently."""


class TextSender(Protocol):
    def send_text(self, user_id: str, content: str) -> object: ...


class RateLimiter:
    """Sliding-window limits per key; :meth:`reserve` books the next slot and says how long to wait for it."""

    def __init__(
        self,
        limits: Sequence[tuple[int, float]] = APP_MEMBER_LIMITS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = tuple(limits)
        self._horizon = max(window for _, window in self._limits)
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str) -> float:
        """Book a send for ``key``; returns the seconds to wait before sending (0 when allowed now)."""
        now = self._clock()
        with self._lock:
            times = self._sent.setdefault(key, deque())
            while times and times[0] <= now - self._horizon:
                times.popleft()
            at = now
            for count, window in self._limits:
                if len(times) >= count:
                    # The slot frees up when the count-th most recent send leaves the window.
                    at = max(at, times[-count] + window)
            times.append(at)
            return at - now


class ReplySender:
    """Sends a reply's pieces one after another; pieces of two replies to one member never interleave."""

    def __init__(
        self,
        client: TextSender,
        *,
        limiter: RateLimiter | None = None,
        max_wait_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._limiter = limiter or RateLimiter()
        self._max_wait = max_wait_s
        self._sleep = sleep
        self._locks = [threading.Lock() for _ in range(64)]

    def send(self, user_id: str, pieces: Sequence[str]) -> int:
        """Deliver ``pieces`` in order; returns how many were sent (stops at the first failure)."""
        sent = 0
        with self._locks[zlib.crc32(user_id.encode("utf-8")) % len(self._locks)]:
            for piece in pieces:
                delay = self._limiter.reserve(user_id)
                if delay > self._max_wait:
                    log.warning("wecom rate limit: %d reply piece(s) not sent", len(pieces) - sent)
                    break
                if delay > 0:
                    self._sleep(delay)
                try:
                    self._client.send_text(user_id, piece)
                except Exception:
                    log.exception("wecom reply piece %d/%d could not be sent", sent + 1, len(pieces))
                    break
                sent += 1
        return sent
