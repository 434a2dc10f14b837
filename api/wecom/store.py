"""Per-user state of the WeCom channels (chosen roles, AI-bot feedback) in one SQLite file under the KB dir."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["STORE_FILE", "WeComStore"]

STORE_FILE = "wecom.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS user_roles (
    user_id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    feedback_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    reasons TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL DEFAULT '',
    received_at REAL NOT NULL
);
"""


class WeComStore:
    """Small SQLite store; one short-lived connection per call, so any thread may use it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._ready = False
        self._init_lock = threading.Lock()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            with self._init_lock:
                if not self._ready:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with sqlite3.connect(self.path) as conn:
                        conn.executescript(_SCHEMA)
                    self._ready = True
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def get_role(self, user_id: str) -> str | None:
        with self._connect() as conn:
            row = conn.execute("SELECT role FROM user_roles WHERE user_id = ?", (user_id,)).fetchone()
        return row[0] if row else None

    def set_role(self, user_id: str, role: str) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO user_roles (user_id, role, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(user_id) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at",
                (user_id, role, time.time()),
            )

    def clear_role(self, user_id: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM user_roles WHERE user_id = ?", (user_id,))

    def add_feedback(
        self,
        *,
        feedback_id: str,
        user_id: str,
        kind: int,
        content: str = "",
        reasons: str = "",
        question: str = "",
    ) -> None:
        """Record an AI-bot 👍/👎 event (kind 1 accurate, 2 inaccurate, 3 cancelled)."""
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO feedback (feedback_id, user_id, kind, content, reasons, question, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (feedback_id, user_id, kind, content, reasons, question, time.time()),
            )

    def feedback(self) -> list[dict[str, object]]:
        """All recorded feedback, oldest first."""
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute("SELECT * FROM feedback ORDER BY received_at, rowid").fetchall()
        return [dict(row) for row in rows]
