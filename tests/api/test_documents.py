"""GET/POST/DELETE /v1/documents: uploads are checked before anything changes; refused ones leave the KB as it was."""

from __future__ import annotations

import pytest

GATE_RULES = "# 门卫管理规定\n\n第一条 学校门卫应当核验来访人员身份并登记，未经许可不得放行。\n\n第二条 门卫应当每日巡查校门周边。\n"


def kb_state(client, kb) -> tuple:
    """Everything a refused upload must not change: the document list, the manifest, the uploads folder."""
    uploads = kb / "uploads"
    return (
        client.get("/v1/documents").json(),
        (kb / "manifest.json").read_bytes(),
        sorted(p.name for p in uploads.iterdir()) if uploads.exists() else [],
    )


def test_list_documents_has_the_design_shape(small_client):
    documents = small_client.get("/v1/documents").json()["documents"]
    assert len(documents) == 3
    assert set(documents[0]) == {"doc_id", "title", "kind", "source", "chunks", "sha256"}


def test_upload_is_saved_indexed_and_searchable(small_client, small_kb):
    response = small_client.post("/v1/documents", files={"file": ("门卫管理规定.md", GATE_RULES.encode(), "text/markdown")})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["added"] == ["门卫管理规定.md"] and body["chunks"] >= 1
    assert (small_kb / "uploads" / "门卫管理规定.md").read_text(encoding="utf-8") == GATE_RULES
    assert "门卫管理规定.md" in [d["source"] for d in body["documents"]]
    hits = small_client.post("/v1/search", json={"query": "门卫核验来访人员身份", "k": 3}).json()["hits"]
    assert hits[0]["source"] == "门卫管理规定.md"

    again = small_client.post("/v1/documents", files={"file": ("门卫管理规定.md", GATE_RULES.encode())})
    assert again.status_code == 200 and again.json()["unchanged"] == ["门卫管理规定.md"]
    changed = GATE_RULES.replace("每日", "每日早晚两次")
    updated = small_client.post("/v1/documents", files={"file": ("门卫管理规定.md", changed.encode())})
    assert updated.json()["updated"] == ["门卫管理规定.md"]
    assert len(small_client.get("/v1/documents").json()["documents"]) == 4


def test_several_files_in_one_upload(small_client):
    files = [("file", ("甲.txt", "第一条 学校应当建立安全值班制度。".encode())), ("file", ("乙.txt", "第一条 学校应当定期开展消防演练。".encode("gbk")))]
    body = small_client.post("/v1/documents", files=files).json()
    assert sorted(body["added"]) == ["乙.txt", "甲.txt"]


def test_upload_names_are_sanitised(small_client, small_kb):
    response = small_client.post("/v1/documents", files={"file": ("安全 制度<v2>.md", GATE_RULES.encode())})
    assert response.status_code == 201
    (saved,) = (small_kb / "uploads").iterdir()
    assert saved.name == "安全 制度_v2.md"
    assert response.json()["added"] == ["安全 制度_v2.md"]


@pytest.mark.parametrize(
    ("name", "data", "status", "fragment"),
    [
        ("../../escape.md", GATE_RULES.encode(), 400, "folder"),
        ("..\\escape.md", GATE_RULES.encode(), 400, "folder"),
        ("/etc/passwd.txt", GATE_RULES.encode(), 400, "folder"),
        (".hidden.md", GATE_RULES.encode(), 400, "hidden"),
        ("规定.exe", GATE_RULES.encode(), 415, "unsupported"),
        ("规定", GATE_RULES.encode(), 415, "unsupported"),
        ("空文件.txt", b"", 400, "empty"),
        ("二进制.txt", bytes(range(256)) * 40, 400, "binary"),
        ("假的.docx", b"PK\x03\x04 not really a zip", 400, "docx"),
        ("假的.pdf", b"%PDF-1.4 broken", 400, "PDF"),
        ("超大.txt", "第一条 学校安全。".encode() * 120_000, 413, "MB"),
    ],
)
def test_bad_uploads_are_refused_and_change_nothing(small_client, small_kb, name, data, status, fragment):
    before = kb_state(small_client, small_kb)
    response = small_client.post("/v1/documents", files={"file": (name, data)})
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]
    assert kb_state(small_client, small_kb) == before
    assert not (small_kb.parent / "escape.md").exists()


def test_one_bad_file_refuses_the_whole_upload(small_client, small_kb):
    before = kb_state(small_client, small_kb)
    files = [("file", ("好文件.md", GATE_RULES.encode())), ("file", ("坏文件.txt", b""))]
    response = small_client.post("/v1/documents", files=files)
    assert response.status_code == 400 and "坏文件.txt" in response.json()["error"]
    assert kb_state(small_client, small_kb) == before


def test_upload_without_a_file_field_is_422(small_client):
    response = small_client.post("/v1/documents", data={"text": "hello"})
    assert response.status_code == 422 and "file" in response.json()["error"]


def test_text_that_parses_to_nothing_is_refused_and_not_kept(small_client, small_kb):
    before = kb_state(small_client, small_kb)
    response = small_client.post("/v1/documents", files={"file": ("只有标题.md", "# 只有标题\n".encode())})
    assert response.status_code == 400 and "no text to index" in response.json()["error"]
    assert kb_state(small_client, small_kb) == before


def test_a_refused_update_keeps_the_previous_version(small_client, small_kb):
    small_client.post("/v1/documents", files={"file": ("门卫管理规定.md", GATE_RULES.encode())})
    before = kb_state(small_client, small_kb)
    response = small_client.post("/v1/documents", files={"file": ("门卫管理规定.md", "# 只有标题\n".encode())})
    assert response.status_code == 400
    assert kb_state(small_client, small_kb) == before
    assert (small_kb / "uploads" / "门卫管理规定.md").read_text(encoding="utf-8") == GATE_RULES


def test_delete_by_id_removes_the_document_and_its_upload(small_client, small_kb):
    small_client.post("/v1/documents", files={"file": ("门卫管理规定.md", GATE_RULES.encode())})
    doc = next(d for d in small_client.get("/v1/documents").json()["documents"] if d["source"] == "门卫管理规定.md")
    response = small_client.delete(f"/v1/documents/{doc['doc_id']}")
    assert response.status_code == 200 and response.json()["removed"] == ["门卫管理规定.md"]
    assert not (small_kb / "uploads" / "门卫管理规定.md").exists()
    hits = small_client.post("/v1/search", json={"query": "门卫核验来访人员身份", "k": 5}).json()["hits"]
    assert all(h["source"] != "门卫管理规定.md" for h in hits)


def test_delete_by_file_name_and_unknown_document(small_client):
    source = small_client.get("/v1/documents").json()["documents"][0]["source"]
    assert small_client.delete(f"/v1/documents/{source}").status_code == 200
    assert len(small_client.get("/v1/documents").json()["documents"]) == 2
    missing = small_client.delete("/v1/documents/nothing.md")
    assert missing.status_code == 404 and "GET /v1/documents" in missing.json()["error"]
