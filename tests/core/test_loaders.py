"""Loaders: encodings, whitespace normalisation, file types, and clear refusals."""

import io
import zipfile
from pathlib import Path

import pytest

from assistant.errors import CorpusError
from assistant.ingest.loaders import discover_files, load_bytes, load_file, normalize_whitespace

TEXT = "第一条　学校应当建立安全制度。\r\n第二条 班主任应当关注学生安全。\r\n"


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("gbk"), "gb18030"),
        ((TEXT + "𠀀").encode("gb18030"), "gb18030"),
        (TEXT.encode("utf-16"), "utf-16"),
        (TEXT.encode("utf-16-le"), "utf-16-le"),
    ],
)
def test_text_encodings_decode_to_the_same_characters(encoded, encoding):
    loaded = load_bytes("law.txt", encoded)
    assert loaded.encoding == encoding
    assert loaded.text.startswith("第一条 学校应当建立安全制度。\n第二条 班主任应当关注学生安全。\n")


def test_normalisation_only_touches_whitespace():
    raw = "第一条\u3000学校（含幼儿园）应当“建立”制度；\r\n\r\n\r\n\r\n第二条\u00a0其他。  \r"
    out = normalize_whitespace(raw)
    assert out == "第一条 学校（含幼儿园）应当“建立”制度；\n\n第二条 其他。\n"
    # every non-space character survives, in order
    assert [c for c in out if not c.isspace()] == [c for c in raw if not c.isspace()]


def test_binary_empty_and_unsupported_files_are_refused_with_the_reason(tmp_path):
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02\x03" * 100)
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(CorpusError, match="blob.txt: looks binary"):
        load_file(tmp_path / "blob.txt")
    with pytest.raises(CorpusError, match="empty.md: the file is empty"):
        load_file(tmp_path / "empty.md")
    with pytest.raises(CorpusError, match="sheet.xlsx: unsupported type '.xlsx'"):
        load_file(tmp_path / "sheet.xlsx")


def test_discover_reports_unsupported_and_missing_paths(tmp_path):
    (tmp_path / "a.md").write_text("第一条 内容。", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("第一条 内容。", encoding="utf-8")
    (tmp_path / "sub" / "c.xlsx").write_bytes(b"x")
    files, skipped = discover_files([tmp_path, tmp_path / "missing.md"])
    assert [f.name for f in files] == ["a.md", "b.txt"]
    reasons = {s.path.name: s.reason for s in skipped}
    assert "unsupported type" in reasons["c.xlsx"]
    assert reasons["missing.md"] == "no such file or folder"


def _docx_bytes(paragraphs):
    import docx

    document = docx.Document()
    for p in paragraphs:
        document.add_paragraph(p)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_docx_paragraphs_become_text():
    loaded = load_bytes("制度.docx", _docx_bytes(["学校安全管理制度", "第一条 校长是学校安全第一责任人。"]))
    assert "第一条 校长是学校安全第一责任人。" in loaded.text
    assert loaded.encoding == "docx"


def test_corrupt_docx_and_pdf_are_refused():
    good = _docx_bytes(["第一条 内容。"])
    with pytest.raises(CorpusError, match="not a valid .docx"):
        load_bytes("broken.docx", good[: len(good) // 2])
    with pytest.raises(CorpusError, match="cannot read as PDF|no readable text"):
        load_bytes("broken.pdf", b"%PDF-1.4\n garbage")


def test_docx_zip_bomb_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"0" * (210 * 1024 * 1024))
    with pytest.raises(CorpusError, match="zip bomb"):
        load_bytes("bomb.docx", buffer.getvalue())


def _pdf_with_text(text: str) -> bytes:
    """A minimal one-page PDF whose content stream shows ``text`` in Helvetica."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_pdf_text_is_extracted(tmp_path):
    path = tmp_path / "rules.pdf"
    path.write_bytes(_pdf_with_text("Article 1 Schools shall keep students safe."))
    assert "Schools shall keep students safe." in load_file(Path(path)).text
