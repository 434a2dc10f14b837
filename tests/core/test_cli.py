"""The `duty` command end to end (typer's CliRunner), with the fake embedder and a real Chroma."""

import json

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from tests.conftest import CORPUS

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DUTY_KB", str(tmp_path / "kb"))
    monkeypatch.setenv("DUTY_EMBEDDER", "fake")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*args, input=None):
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


def test_ingest_docs_search_ask_in_the_documented_json_shapes(env):
    result = _run("ingest", str(CORPUS), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len(report["added"]) == 3 and report["documents"] == 3

    docs = json.loads(_run("docs", "--json").output)
    assert set(docs["documents"][0]) == {"doc_id", "title", "kind", "source", "chunks", "sha256"}
    assert {d["title"] for d in docs["documents"]} == {f"校长一岗双责述职报告{i}" for i in (1, 2, 3)}

    search = json.loads(_run("search", "隐患挂牌督办", "--k", "3", "--json").output)
    assert search["query"] == "隐患挂牌督办" and 1 <= len(search["hits"]) <= 3
    hit = search["hits"][0]
    assert set(hit) == {"rank", "score", "chunk_id", "doc_title", "section", "text", "source", "start", "end"}
    assert "挂牌督办" in hit["text"]
    source_text = (CORPUS / hit["source"]).read_text(encoding="utf-8")
    assert source_text[hit["start"] : hit["end"]] == hit["text"]

    ask = json.loads(_run("ask", "学校安全隐患挂牌督办由谁负责？", "--role", "校长", "--json").output)
    assert set(ask) >= {"question", "answer", "grounded", "mode", "citations", "related"}
    assert ask["grounded"] is True and ask["mode"] == "extractive"
    for c in ask["citations"]:
        assert set(c) == {"n", "chunk_id", "doc_title", "section", "quote", "source", "start", "end"}
        assert (CORPUS / c["source"]).read_text(encoding="utf-8")[c["start"] : c["end"]] == c["quote"]


def test_second_ingest_reports_unchanged_and_remove_works(env):
    _run("ingest", str(CORPUS))
    again = json.loads(_run("ingest", str(CORPUS), "--json").output)
    assert len(again["unchanged"]) == 3 and again["chunks"] == 0
    removed = json.loads(_run("ingest", "--remove", "校长一岗双责述职报告3.txt", "--json").output)
    assert removed["removed"] == ["校长一岗双责述职报告3.txt"] and removed["documents"] == 2


def test_ask_on_empty_kb_builds_it_from_the_bundled_corpus(env):
    result = _run("ask", "一票否决有哪些情形", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["grounded"] is True


def test_errors_are_one_line_and_non_zero(env, capfd):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "assistant.cli", "search", "食堂", "--role", "厨师"],
                          capture_output=True, text=True, env={**__import__("os").environ})
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("错误：")]
    assert len(errors) == 1 and "unknown role '厨师'" in errors[0]
    assert "Traceback" not in proc.stderr
    empty = subprocess.run([sys.executable, "-m", "assistant.cli", "ingest"], capture_output=True, text=True)
    assert empty.returncode == 1 and "nothing to do" in empty.stderr


def test_chat_picks_a_role_answers_and_follows_up(env):
    result = _run("chat", input="2\n班主任的安全职责是什么？\n/role 校长\n一票否决有哪些情形\n/quit\n")
    assert result.exit_code == 0
    assert "当前角色：班主任" in result.output
    assert "作为班主任" in result.output
    assert "当前角色：校长" in result.output
    assert "再见" in result.output
