"""Checking uploaded policy files before anything touches the knowledge base."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from api.errors import ApiError
from assistant.errors import CorpusError
from assistant.ingest.loaders import SUPPORTED_SUFFIXES, load_bytes

MAX_FILES_PER_UPLOAD = 8
MAX_NAME_CHARS = 120
UPLOAD_DIR = "uploads"
# Anything but letters/digits (any script), CJK punctuation commonly found in policy file names, and -_.()
_UNSAFE_CHARS = re.compile(r"[^\w\-.()（）【】《》〔〕、，·\u3000 ]")


@dataclass(frozen=True, slots=True)
class CheckedUpload:
    name: str
    data: bytes


def safe_upload_name(raw: str | None) -> str:
    """A plain file name to store the upload under. Refuses folders and ``..`` rather than guessing."""
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not name:
        raise ApiError(400, "the uploaded file has no name; send it as multipart field 'file' with a file name")
    if "/" in name or "\\" in name or "\x00" in name or name in {".", ".."}:
        raise ApiError(400, f"file name {raw!r} contains a folder or '..'; upload the file under its plain name")
    if name.startswith("."):
        raise ApiError(400, f"file name {raw!r} is hidden (starts with '.'); rename it")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ApiError(400, f"file name {raw!r} contains control characters; rename it")
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ApiError(415, f"{name}: unsupported type '{suffix or 'none'}'; upload .md .txt .docx or .pdf")
    stem = _UNSAFE_CHARS.sub("_", Path(name).stem).strip(" ._") or "upload"
    return stem[: MAX_NAME_CHARS - len(suffix)] + suffix


def read_limited(handle: BinaryIO, name: str, max_bytes: int) -> bytes:
    data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, f"{name} is larger than the {max_bytes // (1024 * 1024)} MB limit (DUTY_MAX_UPLOAD_MB); split the file")
    return data


def check_upload(raw_name: str | None, handle: BinaryIO, max_bytes: int) -> CheckedUpload:
    """Name, type, size and content (decodable text, valid .docx/.pdf) — all before saving anything."""
    name = safe_upload_name(raw_name)
    data = read_limited(handle, name, max_bytes)
    try:
        load_bytes(name, data)
    except CorpusError as exc:
        raise ApiError(400, str(exc)) from exc
    return CheckedUpload(name, data)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
