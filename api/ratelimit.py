"""Per-key request budgets: an in-memory token bucket for each API key (or client address without keys).

One process, one bucket table: enough for a school's single server. Buckets refill continuously at
``per_min / 60`` requests a second up to a burst of ``per_min``; idle buckets are forgotten.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable

from assistant.config import Settings

DEFAULT_KEYED_PER_MIN = 120
MAX_BUCKETS = 10_000


def limit_for(settings: Settings) -> int:
    """Requests per minute per caller; 0 = unlimited. Unset: 120 with API keys, unlimited when loopback-only."""
    if settings.rate_limit_per_min is not None:
        return max(0, settings.rate_limit_per_min)
    return DEFAULT_KEYED_PER_MIN if settings.api_key_list or settings.admin_key_list else 0


class RateLimiter:
    """Token buckets keyed by a caller identity (the key's hash, never the key itself)."""

    def __init__(self, per_min: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_min = per_min
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # identity -> (tokens, last update)

    @staticmethod
    def identity(kind: str, value: str) -> str:
        return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()[:16]}"

    def take(self, identity: str) -> float:
        """Spend one request; 0.0 when allowed, else the seconds to wait before the next one is."""
        if self.per_min <= 0:
            return 0.0
        rate = self.per_min / 60.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(identity, (float(self.per_min), now))
            tokens = min(float(self.per_min), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[identity] = (tokens, now)
                return (1.0 - tokens) / rate
            self._buckets[identity] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._forget_full(now, rate)
            return 0.0

    def _forget_full(self, now: float, rate: float) -> None:
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * rate >= self.per_min:
                del self._buckets[key]


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
