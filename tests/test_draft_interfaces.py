"""`duty draft`, POST /v1/draft and the Word file rendered by LibreOffice."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from urllib.parse import unquote

import pytest
from docx import Document
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pypdf import PdfReader
from typer.testing import CliRunner

from api.deps import Runtime
from api.errors import install_error_handlers
from api.routes import draft as draft_route
from assistant.chat import SessionStore
from assistant.cli import app as cli_app
from assistant.draft import Drafter, DraftRequest, to_docx
from assistant.errors import AssistantError
from tests.conftest import make_assistant
from tests.test_draft import FACTS_BY_SECTION, FACTS_FILE, HEADINGS

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ALL_FACTS = [fact for facts in FACTS_BY_SECTION.values() for fact in facts]


# ------------------------------------------------------------------ CLI
@pytest.fixture
def duty(laws_kb_dir, monkeypatch):
    monkeypatch.setenv("DUTY_EMBEDDER", "fake")
    monkeypatch.delenv("DUTY_KB", raising=False)
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None):
        return runner.invoke(cli_app, ["draft", "--kb", str(laws_kb_dir), *args], input=stdin)

    return run


def test_cli_writes_docx_and_markdown_from_a_facts_file(duty, tmp_path):
    base = ["--role", "校长", "--unit", "某某镇中心校", "--year", "2026", "--facts", str(FACTS_FILE)]
    result = duty(*base, "--out", str(tmp_path / "report.docx"))
    assert result.exit_code == 0, result.output
    paragraphs = [p.text for p in Document(tmp_path / "report.docx").paragraphs]
    assert all(h in paragraphs for h in HEADINGS)
    assert all(any(fact in p for p in paragraphs) for fact in ALL_FACTS)

    result = duty(*base, "--out", str(tmp_path / "report.md"))
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert [line[3:] for line in markdown.splitlines() if line.startswith("## ")][:4] == HEADINGS
    assert all(fact in markdown for fact in ALL_FACTS)


def test_cli_reads_facts_from_stdin_and_prints_json(duty, laws_kb_dir):
    result = duty("--role", "班主任", "--unit", "某某小学", "--year", "2026", "--section", "3", "--facts", "-", "--json",
                  stdin="学生午休纪律管理还不到位\n")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert [s["heading"] for s in body["sections"]] == ["三、存在的问题与不足"]
    assert body["sections"][0]["facts"] == ["学生午休纪律管理还不到位"]
    assert body["sections"][0]["citations"] and body["markdown"].startswith("# 某某小学班主任2026年度")


def test_cli_without_facts_prints_a_markdown_draft_with_what_to_fill_in(duty):
    result = duty("--role", "分管副校长", "--unit", "某某中学", "--year", "2026")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("（请补充：") == 4
    assert "提示：以下部分需要您补充内容" in result.stderr


def test_cli_refuses_a_bad_role_and_a_bad_output_name(duty, tmp_path):
    result = duty("--role", "家长", "--unit", "某校", "--year", "2026")
    assert result.exit_code != 0 and isinstance(result.exception, AssistantError)
    result = duty("--role", "校长", "--unit", "某校", "--year", "2026", "--out", str(tmp_path / "x.pdf"))
    assert result.exit_code != 0 and ".docx or .md" in str(result.exception)


# ------------------------------------------------------------------ HTTP
@pytest.fixture(scope="module")
def api(laws_kb_dir, tmp_path_factory):
    """Just this router on an app of its own, with the API's error handlers and a loopback client."""
    assistant = make_assistant(laws_kb_dir)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(draft_route.router)
    app.state.settings = assistant.settings
    app.state.runtime = Runtime(assistant.settings, assistant, SessionStore(tmp_path_factory.mktemp("sessions") / "s.sqlite"))
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 50124)) as client:
        yield client
    assistant.close()


def test_api_returns_the_draft_json_with_exact_citations(api):
    facts = FACTS_FILE.read_text(encoding="utf-8")
    response = api.post("/v1/draft", json={"role": "校长", "unit": "某某镇中心校", "year": 2026, "facts": facts})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "某某镇中心校校长2026年度学校安全工作“一岗双责”述职报告"
    assert [s["heading"] for s in body["sections"]] == HEADINGS
    for section, heading in zip(body["sections"], HEADINGS, strict=True):
        assert section["citations"]
        assert section["facts"] == FACTS_BY_SECTION[heading]
        for c in section["citations"]:
            chunk = c["chunk_id"]
            assert c["quote"] in section["text"] and chunk
    assert body["notices"] == [] and body["markdown"].startswith("# ") and body["seconds"] < 10


def test_api_returns_a_word_file_on_request(api):
    payload = {"role": "校长", "unit": "某某镇/中心校\"", "year": 2026, "facts": "为各单位增设了监控头，并将监控联网"}
    for response in (api.post("/v1/draft", json={**payload, "format": "docx"}),
                     api.post("/v1/draft", json=payload, headers={"Accept": DOCX})):
        assert response.status_code == 200
        assert response.headers["content-type"] == DOCX
        disposition = response.headers["content-disposition"]
        assert disposition.startswith("attachment;") and "\n" not in disposition
        assert unquote(disposition.split("filename*=UTF-8''")[1]) == "某某镇_中心校_2026年度述职报告.docx"
        paragraphs = [p.text for p in Document(io.BytesIO(response.content)).paragraphs]
        assert "1．为各单位增设了监控头，并将监控联网" in paragraphs
    markdown = api.post("/v1/draft", json={**payload, "format": "markdown"})
    assert markdown.headers["content-type"].startswith("text/markdown") and "## 二、主要工作与成效" in markdown.text


@pytest.mark.parametrize(("change", "status", "words"), [
    ({"role": "家长"}, 400, "role"),
    ({"section": "附件"}, 400, "section"),
    ({"year": 3000}, 422, "year"),
    ({"facts": "安全" * 10_001}, 422, "facts"),
    ({"extra": 1}, 422, "extra"),
    ({"mode": "llm"}, 400, "DUTY_LLM_BASE_URL"),  # no model configured: say what to set, never draft unverified
])
def test_api_refuses_bad_requests_with_a_message(api, change, status, words):
    response = api.post("/v1/draft", json={"role": "校长", "unit": "某校", "year": 2026, **change})
    assert response.status_code == status
    assert words in response.json()["error"]


# ------------------------------------------------------------------ LibreOffice
@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed; CI installs libreoffice-writer")
def test_libreoffice_renders_the_word_file_to_pdf_pages(laws_kb_dir, tmp_path):
    assistant = make_assistant(laws_kb_dir)
    try:
        draft = Drafter(assistant.kb, assistant.retriever).draft(
            DraftRequest("校长", "某某镇中心校", 2026, FACTS_FILE.read_text(encoding="utf-8")))
    finally:
        assistant.close()
    source = tmp_path / "report.docx"
    source.write_bytes(to_docx(draft))
    profile = (tmp_path / "lo-profile").as_uri()  # own profile: parallel runs do not share a lock
    subprocess.run(["soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(source)],
                   check=True, capture_output=True, timeout=180)
    pdf = PdfReader(tmp_path / "report.pdf")
    assert len(pdf.pages) >= 1
    first = pdf.pages[0]
    assert round(float(first.mediabox.width) / 72 * 25.4) == 210  # A4
    text = "".join(page.extract_text() for page in pdf.pages).replace("\n", "")
    assert "一、履职基本情况" in text and "附：引用依据" in text
