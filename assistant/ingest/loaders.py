"""Read policy files (.md .txt .docx .pdf) into normalised text.

Normalisation only touches whitespace (line endings, BOM, full-width and no-break spaces), so every
character a citation may quote is kept as the author wrote it.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import CorpusError

SUPPORTED_SUFFIXES = (".md", ".txt", ".docx", ".pdf")
MAX_FILE_BYTES = 50 * 1024 * 1024
# A .docx whose parts inflate beyond this is refused (zip bomb guard).
MAX_DOCX_UNPACKED = 200 * 1024 * 1024
SIDECAR_SUFFIX = ".meta.yaml"


@dataclass(frozen=True, slots=True)
class LoadedFile:
    path: Path
    text: str
    sha256: str
    encoding: str


@dataclass(frozen=True, slots=True)
class SkippedFile:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.path.name}: {self.reason}"


def discover_files(paths: Iterable[Path]) -> tuple[list[Path], list[SkippedFile]]:
    """Expand folders (recursively, sorted) into supported files; report anything else as skipped."""
    found: list[Path] = []
    skipped: list[SkippedFile] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.name.startswith(".") or child.name.endswith(SIDECAR_SUFFIX):
                    continue
                if child.suffix.lower() in SUPPORTED_SUFFIXES:
                    found.append(child.resolve())
                elif child.name not in {"__init__.py"} and child.suffix.lower() not in {".yaml", ".yml", ".py", ".pyc"}:
                    skipped.append(SkippedFile(child, f"unsupported type '{child.suffix or 'none'}' (use .md .txt .docx .pdf)"))
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_SUFFIXES:
                found.append(path.resolve())
            else:
                skipped.append(SkippedFile(path, f"unsupported type '{path.suffix or 'none'}' (use .md .txt .docx .pdf)"))
        else:
            skipped.append(SkippedFile(path, "no such file or folder"))
    unique = list(dict.fromkeys(found))
    return unique, skipped


def load_file(path: Path) -> LoadedFile:
    """Decode one file. Raises CorpusError naming the file and the reason when it cannot be used."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise CorpusError(f"{path.name}: unsupported type '{suffix or 'none'}' (use .md .txt .docx .pdf)")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CorpusError(f"{path.name}: {size // (1024 * 1024)} MB is over the {MAX_FILE_BYTES // (1024 * 1024)} MB limit; split the file")
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path.name}: cannot read ({exc.strerror or exc})") from exc
    return load_bytes(path.name, data, path=path)


def load_bytes(name: str, data: bytes, *, path: Path | None = None) -> LoadedFile:
    suffix = Path(name).suffix.lower()
    if not data:
        raise CorpusError(f"{name}: the file is empty")
    if suffix == ".docx":
        raw, encoding = _docx_text(name, data), "docx"
    elif suffix == ".pdf":
        raw, encoding = _pdf_text(name, data), "pdf"
    else:
        raw, encoding = decode_text(name, data)
    text = normalize_whitespace(raw)
    if not re.search(r"[\w\u4e00-\u9fff]", text):
        raise CorpusError(f"{name}: no readable text found (scanned PDF or empty document?)")
    return LoadedFile(path or Path(name), text, hashlib.sha256(data).hexdigest(), encoding)


def decode_text(name: str, data: bytes) -> tuple[str, str]:
    """Detect UTF-8 (with or without BOM), UTF-16 (BOM), GB18030/GBK; refuse binary data."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise CorpusError(f"{name}: declares UTF-16 but does not decode ({exc.reason})") from exc
    if b"\x00" in data[:8192]:
        codec = _plausible_utf16(data)
        if codec:
            return data.decode(codec), codec
        raise CorpusError(f"{name}: looks binary (NUL bytes); save it as UTF-8 text, .docx or .pdf")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{name}: not UTF-8, GBK/GB18030 or UTF-16 text; re-save it as UTF-8") from exc
    control = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t\f")
    if control > max(4, len(text) // 100):
        raise CorpusError(f"{name}: looks binary (control characters); save it as UTF-8 text, .docx or .pdf")
    return text, "gb18030"


def _plausible_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM: the byte order whose decoding is (nearly) all CJK, ASCII and punctuation."""
    if len(data) % 2:
        return None
    best, best_share = None, 0.0
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            sample = data[:8192].decode(codec)
        except UnicodeDecodeError:
            continue
        plausible = sum(1 for ch in sample if ch.isprintable() and (ch.isascii() or "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef") or ch in "\r\n\t")
        share = plausible / max(len(sample), 1)
        if share > best_share:
            best, best_share = codec, share
    return best if best_share >= 0.95 else None


def normalize_whitespace(text: str) -> str:
    """Unify line endings; full-width, no-break and zero-width spaces become ordinary ones; trim line ends."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    text = text.replace("\u3000", " ").replace("\u00a0", " ").replace("\u200b", "").replace("\t", " ")
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


def _docx_text(name: str, data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_DOCX_UNPACKED:
                raise CorpusError(f"{name}: unpacks to {unpacked // (1024 * 1024)} MB, refusing (possible zip bomb)")
    except zipfile.BadZipFile as exc:
        raise CorpusError(f"{name}: not a valid .docx (corrupt or truncated zip); re-save it from Word") from exc
    try:
        import docx

        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises many types for malformed packages
        raise CorpusError(f"{name}: cannot open as .docx ({type(exc).__name__}); re-save it from Word") from exc
    paragraphs = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            paragraphs.append(" ".join(cell.text for cell in row.cells))
    return "\n\n".join(p for p in paragraphs if p.strip())


def _pdf_text(name: str, data: bytes) -> str:
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises a variety of errors on damaged files
        raise CorpusError(f"{name}: cannot read as PDF ({type(exc).__name__}); check the file is not damaged") from exc
    return "\n".join(pages)
