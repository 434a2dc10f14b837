"""Shared helpers for the reliability suite: a fingerprint of the knowledge base to compare before/after."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import pytest

from tests.api.conftest import (  # noqa: F401  (fixtures re-used by this suite)
    corpus_kb_template,
    laws_client,
    small_client,
    small_kb,
)
from tests.wecom.conftest import fake_wecom, fake_wecom_server, start_wecom  # noqa: F401

# tests/llm imports its fake server as a top-level module; make it importable from here too.
sys.path.append(str(Path(__file__).resolve().parent.parent / "llm"))
from fake_openai import FakeOpenAI, Reply  # noqa: E402,F401

FIXED_QUERY = "隐患挂牌督办"


@pytest.fixture(scope="module")
def fake_llm():
    """A scripted OpenAI-compatible server on loopback (the one tests/llm uses)."""
    fake = FakeOpenAI()
    server, thread = fake.start()
    yield fake
    server.should_exit = True
    thread.join(timeout=10)


def api_state(client) -> tuple:
    """Document list and a fixed search through the HTTP API: equal before and after = KB unchanged."""
    docs = client.get("/v1/documents").json()["documents"]
    hits = client.post("/v1/search", json={"query": FIXED_QUERY, "k": 5}).json()["hits"]
    return (sorted((d["source"], d["sha256"], d["chunks"]) for d in docs),
            [(h["chunk_id"], round(h["score"], 6)) for h in hits])


def docx_bytes(text: str) -> bytes:
    import docx

    document = docx.Document()
    for line in text.splitlines():
        document.add_paragraph(line)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def docx_zip_bomb(inflated_mb: int = 300) -> bytes:
    """A .docx-shaped zip whose one part inflates to ``inflated_mb`` MB of zeros (a few hundred KB packed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            block = b"\0" * (1024 * 1024)
            for _ in range(inflated_mb):
                part.write(block)
    return buffer.getvalue()


def minimal_pdf(text: str = "Hello") -> bytes:
    """A one-page PDF with an ASCII text line (pypdf can extract it)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()
