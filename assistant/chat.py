"""Conversations: the asker's role and recent turns, so that follow-ups such as 「那班主任呢？」 make sense."""

from __future__ import annotations

import contextlib
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from assistant.retrieve import ROLE_ALIASES, ROLE_TERMS
from assistant.types import Answer

_FOLLOW_UP = re.compile(r"^(那|那么|还有|如果是|要是|换成|假如是)?\s*(?P<core>.{1,12}?)\s*(呢|怎么办|怎么样|又如何)?[？?。！!]*$")
_ROLE_NAMES = sorted(set(ROLE_TERMS) | set(ROLE_ALIASES), key=len, reverse=True)


@dataclass
class Turn:
    question: str  # what the user typed
    query: str  # the standalone question that was answered
    grounded: bool


@dataclass
class Conversation:
    role: str | None = None
    turns: list[Turn] = field(default_factory=list)

    def resolve(self, text: str) -> tuple[str, str | None]:
        """Turn a follow-up into a standalone question; returns (question, role to answer for)."""
        text = text.strip()
        if not self.turns:
            return text, self.role
        previous = self.turns[-1].query
        match = _FOLLOW_UP.match(text)
        if not match or len(text) > 16 or not _is_elliptical(text):
            return text, self.role
        core = match.group("core")
        new_role = next((r for r in _ROLE_NAMES if r == core or core.endswith(r)), None)
        if new_role:
            role = ROLE_ALIASES.get(new_role, new_role)
            for old in _ROLE_NAMES:
                if old in previous:
                    return previous.replace(old, new_role, 1), role
            return f"{new_role}{previous}", role
        return f"{previous}（{core}）", self.role

    def record(self, text: str, query: str, answer: Answer) -> None:
        self.turns.append(Turn(text, query, answer.grounded))
        del self.turns[:-20]


def _is_elliptical(text: str) -> bool:
    return bool(re.search(r"(呢|那|还有|如果是|要是|换成)", text))


_SESSION_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, role TEXT, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE, seq INTEGER NOT NULL,
  question TEXT NOT NULL, query TEXT NOT NULL, grounded INTEGER NOT NULL, answer TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (session_id, seq)
);
"""


class SessionStore:
    """Conversations kept in SQLite (one file under the KB folder), so follow-ups work across requests.

    Each call opens its own short connection: safe from any thread, and two processes may share the file.
    Sessions idle for longer than ``keep_days`` are dropped when new ones are created.
    """

    def __init__(self, path: Path, *, max_turns: int = 20, keep_days: float = 30.0) -> None:
        self.path = Path(path)
        self.max_turns = max_turns
        self.keep_seconds = keep_days * 86400
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SESSION_SCHEMA)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            with conn:
                yield conn
        finally:
            conn.close()

    def create(self, role: str | None = None) -> str:
        """Start a conversation; returns its new, unguessable id."""
        session_id = secrets.token_urlsafe(12)
        now = time.time()
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE updated < ?", (now - self.keep_seconds,))
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", (session_id, role, now, now))
        return session_id

    def load(self, session_id: str) -> Conversation | None:
        """The conversation with its most recent turns, or None when the id is unknown."""
        with self._db() as db:
            row = db.execute("SELECT role FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                return None
            rows = db.execute(
                "SELECT question, query, grounded FROM turns WHERE session_id = ? ORDER BY seq DESC LIMIT ?",
                (session_id, self.max_turns),
            ).fetchall()
        return Conversation(role=row[0], turns=[Turn(q, query, bool(g)) for q, query, g in reversed(rows)])

    def history(self, session_id: str) -> list[dict] | None:
        """Every stored turn as ``{"question", "query", "grounded", "answer"}``; None when the id is unknown."""
        with self._db() as db:
            if db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
                return None
            rows = db.execute(
                "SELECT question, query, grounded, answer FROM turns WHERE session_id = ? ORDER BY seq", (session_id,)
            ).fetchall()
        return [{"question": q, "query": query, "grounded": bool(g), "answer": a} for q, query, g, a in rows]

    def set_role(self, session_id: str, role: str | None) -> None:
        with self._db() as db:
            db.execute("UPDATE sessions SET role = ?, updated = ? WHERE id = ?", (role, time.time(), session_id))

    def record(self, session_id: str, question: str, query: str, answer: Answer) -> None:
        """Append a turn (what was typed, the standalone question answered, the answer text)."""
        with self._db() as db:
            (last,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM turns WHERE session_id = ?", (session_id,)).fetchone()
            db.execute(
                "INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, last + 1, question, query, int(answer.grounded), answer.answer),
            )
            db.execute("DELETE FROM turns WHERE session_id = ? AND seq <= ?", (session_id, last + 1 - self.max_turns))
            db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (time.time(), session_id))

    def delete(self, session_id: str) -> bool:
        with self._db() as db:
            return db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0
