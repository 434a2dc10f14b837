"""Generated .docx drafts kept for download (``<kb>/drafts/<id>.docx``): unguessable ids, a size limit, and
removal of old files whenever a new one is stored."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from assistant.draft.model import DraftInputError

DRAFTS_DIR = "drafts"
MAX_DOCX_BYTES = 10 * 1024 * 1024
KEEP_DAYS = 7
MAX_FILES = 500
_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")


class DraftStore:
    """A directory of downloadable drafts. Ids are 32 URL-safe characters from :mod:`secrets` (192 bits)."""

    def __init__(self, root: Path, *, keep_days: int = KEEP_DAYS, max_files: int = MAX_FILES) -> None:
        self.root = root
        self.keep_seconds = keep_days * 24 * 3600
        self.max_files = max_files

    @classmethod
    def for_kb(cls, kb_root: Path) -> DraftStore:
        return cls(kb_root / DRAFTS_DIR)

    def save(self, data: bytes) -> str:
        """Store ``data`` and return its id; old drafts are removed first.

        Raises:
            DraftInputError: the document is larger than MAX_DOCX_BYTES.
        """
        if len(data) > MAX_DOCX_BYTES:
            raise DraftInputError(f"the Word document is {len(data)} bytes; the limit is {MAX_DOCX_BYTES}; shorten the facts")
        self.root.mkdir(parents=True, exist_ok=True)
        self.cleanup()
        draft_id = secrets.token_urlsafe(24)
        partial = self.root / f".{draft_id}.part"
        partial.write_bytes(data)
        os.replace(partial, self.root / f"{draft_id}.docx")
        return draft_id

    def path(self, draft_id: str) -> Path | None:
        """The stored file for ``draft_id``; None when the id is malformed, unknown or expired."""
        if not _ID.fullmatch(draft_id):
            return None
        path = self.root / f"{draft_id}.docx"
        try:
            fresh = time.time() - path.stat().st_mtime <= self.keep_seconds
        except OSError:
            return None
        return path if fresh else None

    def cleanup(self, *, now: float | None = None) -> int:
        """Remove expired drafts (and the oldest beyond ``max_files``); returns how many were removed."""
        now = time.time() if now is None else now
        try:
            entries = list(self.root.iterdir())
        except OSError:
            return 0
        drafts = sorted((p for p in entries if p.suffix == ".docx"), key=_mtime, reverse=True)
        doomed = [p for i, p in enumerate(drafts) if i >= self.max_files - 1 or now - _mtime(p) > self.keep_seconds]
        doomed += [p for p in entries if p.suffix == ".part" and now - _mtime(p) > 3600]
        for path in doomed:
            path.unlink(missing_ok=True)
        return len(doomed)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
