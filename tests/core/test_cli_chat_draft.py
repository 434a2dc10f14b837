"""`duty chat` answers 「帮我写述职报告……」 with the cited draft and saves it as .docx."""

from __future__ import annotations

import datetime as dt

import pytest
from docx import Document
from typer.testing import CliRunner

from assistant.cli import app

runner = CliRunner()
REQUEST = "帮我写述职报告的履职情况部分，我是某某镇中心校校长，今年加固了三所幼儿园园舍，增设监控头20个。"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DUTY_KB", str(tmp_path / "kb"))
    monkeypatch.setenv("DUTY_EMBEDDER", "fake")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_chat_writes_the_draft_and_saves_the_docx(env):
    result = runner.invoke(app, ["chat", "--role", "校长", "--out-dir", "out"], input=f"{REQUEST}\n{REQUEST}\n/quit\n",
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "一、履职基本情况" in result.output and "二、主要工作与成效" not in result.output
    assert "加固了三所幼儿园园舍" in result.output and "增设监控头20个" in result.output
    stem = f"某某镇中心校{dt.date.today().year}年度述职报告"
    saved = [env / "out" / f"{stem}.docx", env / "out" / f"{stem}-2.docx"]
    assert sorted((env / "out").glob("*.docx")) == sorted(saved)
    assert all(f"Word 文档已保存：{path.relative_to(env)}" in result.output for path in saved)
    text = "\n".join(p.text for p in Document(saved[0]).paragraphs)
    assert "加固了三所幼儿园园舍" in text and "增设监控头20个" in text and "某某镇中心校" in text


def test_chat_questions_are_still_answered_without_files(env):
    result = runner.invoke(app, ["chat", "--role", "校长"], input="一票否决有哪些情形\n/quit\n", catch_exceptions=False)
    assert result.exit_code == 0 and "再见" in result.output
    assert not list(env.glob("*.docx"))
