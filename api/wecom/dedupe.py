"""Replay cache: remembers recently seen message ids so WeCom's retries (and replays) are handled once."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["ReplayCache", "replay_ttl"]


def replay_ttl(max_skew_s: int) -> float:
    """How long to remember ids so that, with the timestamp check on, no replay is ever processed twice.

    The timestamp is signed, so a replayed callback carries its original timestamp; once it is older than
    ``max_skew_s`` the skew check refuses it, and until then this cache does. 10 minutes at least.
    """
    return max(600.0, 2.0 * max_skew_s + 60.0)


class ReplayCache:
    """Thread-safe set of keys with a time-to-live and a size bound.

    WeCom retries a callback up to three times within about 15 s; the default TTL of 10 minutes leaves a wide
    margin. Entries live in memory: a restart forgets them, which only matters for a retry that straddles it.
    """

    def __init__(
        self, *, ttl_s: float = 600.0, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        """Record ``key``; True if it was not seen within the TTL (i.e. the caller should process it)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            if key in self._seen:
                return False
            self._seen[key] = now
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
            return True

    def __contains__(self, key: str) -> bool:
        with self._lock:
            self._expire(self._clock())
            return key in self._seen

    def _expire(self, now: float) -> None:
        while self._seen:
            key, seen_at = next(iter(self._seen.items()))
            if now - seen_at < self._ttl:
                break
            del self._seen[key]
