"""Bad input through the HTTP API: every request gets a clear 4xx or a correct answer, never a 5xx, and a
refused upload leaves the knowledge base exactly as it was (document list and a fixed search compared)."""

from __future__ import annotations

import json

import pytest

from tests.reliability.conftest import api_state, docx_bytes, docx_zip_bomb, minimal_pdf

pytestmark = pytest.mark.shared  # the question tests run on the shared laws (laws_client)

GATE = "# 门卫管理规定\n\n第一条 学校门卫应当对来访人员进行登记，核实身份后方可放行。\n\n第二条 门卫发现可疑人员应当立即报告学校保卫部门。\n"
ODD_QUESTIONS = [
    "校车驾驶人\x00需要\x07什么条件\x1b[31m？",  # NUL, bell, an ANSI escape
    "🚌校车🚸驾驶人需要什么条件？😀👍🏽",
    "校车驾驶人\u200b\u202e需要什么条件？\ufeff",  # zero-width, right-to-left override, BOM
    "學校應當建立校車安全管理制度嗎？",  # Traditional Chinese
    "\ud800校车",  # a lone surrogate (legal in JSON escapes, not encodable as UTF-8)
]


def _assert_ask_shape(body: dict) -> None:
    assert isinstance(body["answer"], str) and isinstance(body["grounded"], bool)
    for hit in body["related"]:
        assert hit["end"] - hit["start"] == len(hit["text"])
    for citation in body["citations"]:
        assert citation["end"] - citation["start"] == len(citation["quote"])


@pytest.mark.parametrize("question", ODD_QUESTIONS)
def test_odd_characters_get_an_answer_or_a_clear_4xx(laws_client, question):
    raw = json.dumps({"question": question}).encode()  # ensure_ascii escapes keep the lone surrogate as \ud800
    response = laws_client.post("/v1/ask", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 400, 422), response.text
    if response.status_code == 200:
        _assert_ask_shape(response.json())
    else:
        assert response.json()["error"]
    search = laws_client.post("/v1/search", content=json.dumps({"query": question}).encode(),
                              headers={"Content-Type": "application/json"})
    assert search.status_code in (200, 400, 422), search.text
    chat = laws_client.post("/v1/chat/completions", content=json.dumps(
        {"model": "duty-assistant", "messages": [{"role": "user", "content": question}]}).encode(),
        headers={"Content-Type": "application/json"})
    assert chat.status_code in (200, 400, 422), chat.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/ask", {"question": "校车" * 51_200}),
        ("/v1/search", {"query": "校车" * 51_200}),
        ("/v1/chat/completions", {"model": "duty-assistant", "messages": [{"role": "user", "content": "校车" * 51_200}]}),
    ],
)
def test_a_100_kb_question_is_refused_with_the_limit(laws_client, path, body):
    response = laws_client.post(path, json=body)
    assert response.status_code == 400, response.text
    text = response.text
    assert "DUTY_MAX_QUESTION_CHARS" in text and "2000" in text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/search", {"query": "校车", "k": 10**30}),
        ("/v1/search", {"query": "校车", "k": -1}),
        ("/v1/search", {"query": "校车", "k": 1.5}),
        ("/v1/search", {"query": "校车", "k": None}),
        ("/v1/search", {"query": {"$ne": ""}}),
        ("/v1/search", {"query": "校车", "role": ["校长"]}),
        ("/v1/search", {"query": "校车", "role": "校" * 500}),
        ("/v1/ask", [{"question": "校车"}]),
        ("/v1/ask", "校车"),
        ("/v1/ask", None),
        ("/v1/ask", {"question": "校车", "role": 3}),
        ("/v1/ask", {"question": "校车", "session_id": 12345678}),
        ("/v1/sessions", {"role": {"x": 1}}),
        ("/v1/chat/completions", {"model": "duty-assistant", "messages": "校车"}),
        ("/v1/chat/completions", {"model": "duty-assistant", "messages": []}),
        ("/v1/chat/completions", {"model": "duty-assistant", "messages": [{"role": "robot", "content": "校车"}]}),
        ("/v1/chat/completions", {"model": "duty-assistant", "messages": [{"role": "user", "content": 42}]}),
        ("/v1/chat/completions", {"model": 7, "messages": [{"role": "user", "content": "校车"}]}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "校车"}], "n": 5}),
        ("/v1/draft", {"role": "校长", "unit": "某校", "year": "二〇二六"}),
        ("/v1/draft", {"role": 1}),
    ],
)
def test_wrong_json_types_are_4xx_with_a_message(laws_client, path, body):
    response = laws_client.post(path, json=body)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert (error["message"] if isinstance(error, dict) else error)


def test_huge_but_allowed_k_returns_at_most_k_verbatim_hits(laws_client):
    response = laws_client.post("/v1/search", json={"query": "学校安全", "k": 200})
    assert response.status_code == 200
    hits = response.json()["hits"]
    assert 10 < len(hits) <= 200
    assert len({h["chunk_id"] for h in hits}) == len(hits)


@pytest.mark.parametrize("role", ["保安", "Principal", "校长; DROP TABLE", "<script>"])
def test_unknown_roles_are_400_naming_the_known_ones(laws_client, role):
    for path, body in (("/v1/ask", {"question": "校车", "role": role}), ("/v1/search", {"query": "校车", "role": role})):
        response = laws_client.post(path, json=body)
        assert response.status_code == 400, (path, response.text)
        assert "班主任" in response.json()["error"]


# ----------------------------------------------------------------------------------------------- uploads
def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


BAD_FILES = [
    ("随机.txt", bytes(range(256)) * 64, 400),
    ("随机.md", b"\x89PNG\r\n\x1a\n" + bytes(1000), 400),
    ("零字节.docx", b"", 400),
    ("零字节.pdf", b"", 400),
    ("截断.docx", _truncated(docx_bytes(GATE)), 400),
    ("截断.pdf", _truncated(minimal_pdf("School gate rules")), 400),
    ("伪装.pdf", docx_bytes(GATE), 400),
    ("伪装.docx", minimal_pdf("School gate rules"), 400),
    ("炸弹.docx", docx_zip_bomb(), 400),
    ("../../逃逸.md", GATE.encode(), 400),
    ("/etc/cron.d/逃逸.md", GATE.encode(), 400),
    ("..", GATE.encode(), 400),
    ("规定.md.exe", GATE.encode(), 415),
    ("规定.html", b"<script>alert(1)</script>", 415),
]


@pytest.mark.parametrize(("name", "data", "status"), BAD_FILES, ids=[n.encode("unicode_escape").decode() for n, _, _ in BAD_FILES])
def test_bad_files_are_refused_and_the_kb_is_unchanged(small_client, small_kb, name, data, status):
    before = api_state(small_client)
    uploads_before = sorted(p.name for p in (small_kb / "uploads").glob("*")) if (small_kb / "uploads").exists() else []
    response = small_client.post("/v1/documents", files={"file": (name, data)})
    assert response.status_code == status, response.text
    assert response.json()["error"]
    assert api_state(small_client) == before
    uploads_after = sorted(p.name for p in (small_kb / "uploads").glob("*")) if (small_kb / "uploads").exists() else []
    assert uploads_after == uploads_before
    assert not list(small_kb.parent.rglob("逃逸.md"))


@pytest.mark.parametrize("name", ["C:\\Windows\\逃逸.md", "名字\x00.md", "..%2F..%2F逃逸.md", "逃逸.md\r\nX-Injected: 1"])
def test_path_like_names_are_refused_or_reduced_to_a_plain_name_inside_uploads(small_client, small_kb, name):
    # Multipart clients escape some of these (NUL → %00) and the parser keeps only a Windows path's last part.
    response = small_client.post("/v1/documents", files={"file": (name, GATE.encode())})
    assert response.status_code in (201, 400, 415), response.text
    if response.status_code == 201:
        (stored,) = response.json()["added"]
        assert "/" not in stored and "\\" not in stored and "\x00" not in stored and not stored.startswith(".")
        assert (small_kb / "uploads" / stored).is_file()
    assert not list(small_kb.parent.rglob("X-Injected*"))
    assert {p.parent for p in small_kb.parent.rglob("逃逸*")} <= {small_kb / "uploads"}


TEXT = "# 门卫管理规定\n\n第一条 学校门卫应当对来访人员进行登记，核实身份后方可放行。\n\n第二条 門衛發現可疑人員應當立即報告學校保衛部門。\n"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("门卫GBK.txt", TEXT.encode("gbk")),
        ("门卫GB18030.txt", (TEXT + "第三条 𠀀𪚥字库外的字也应保留。\n").encode("gb18030")),
        ("门卫UTF16LE.txt", b"\xff\xfe" + TEXT.encode("utf-16-le")),
        ("门卫UTF16BE.md", b"\xfe\xff" + TEXT.encode("utf-16-be")),
        ("门卫UTF16无BOM.txt", TEXT.encode("utf-16-le")),
        ("门卫UTF8BOM.md", b"\xef\xbb\xbf" + TEXT.encode("utf-8")),
        ("门卫.docx", docx_bytes(TEXT)),
    ],
)
def test_encodings_and_traditional_chinese_are_ingested_verbatim(small_client, name, data):
    response = small_client.post("/v1/documents", files={"file": (name, data)})
    assert response.status_code == 201, response.text
    doc = next(d for d in response.json()["documents"] if d["source"] == name)
    text = small_client.get(f"/v1/documents/{doc['doc_id']}/text").json()["text"]
    assert "學校保衛部門" in text and "来访人员进行登记" in text
    hits = small_client.post("/v1/search", json={"query": "門衛發現可疑人員", "k": 3}).json()["hits"]
    assert hits[0]["source"] == name
    assert text[hits[0]["start"]:hits[0]["end"]] == hits[0]["text"]


def test_duplicate_names_in_one_upload_are_refused_and_change_nothing(small_client):
    before = api_state(small_client)
    files = [("file", ("门卫.md", GATE.encode())), ("file", ("门卫.md", GATE.replace("登记", "查验").encode()))]
    response = small_client.post("/v1/documents", files=files)
    assert response.status_code == 400 and "same name" in response.json()["error"]
    assert api_state(small_client) == before
    # Names that differ only by what the sanitiser removes collide too.
    files = [("file", ("门卫<1>.md", GATE.encode())), ("file", ("门卫>1<.md", GATE.encode()))]
    assert small_client.post("/v1/documents", files=files).status_code == 400
    assert api_state(small_client) == before


def test_the_same_name_again_updates_instead_of_duplicating(small_client):
    first = small_client.post("/v1/documents", files={"file": ("门卫.md", GATE.encode())})
    assert first.status_code == 201
    second = small_client.post("/v1/documents", files={"file": ("门卫.md", GATE.replace("登记", "查验登记").encode())})
    assert second.status_code == 200 and second.json()["updated"] == ["门卫.md"]
    sources = [d["source"] for d in second.json()["documents"]]
    assert sources.count("门卫.md") == 1
