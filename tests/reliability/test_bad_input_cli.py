"""Bad input through the ``duty`` command: a clear one-line error (exit 1) or a correct result, and a
failed ingest leaves the knowledge base as it was (document list and a fixed search compared)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.errors import AssistantError
from assistant.ingest.loaders import MAX_FILE_BYTES
from tests.conftest import CORPUS
from tests.reliability.conftest import FIXED_QUERY, docx_bytes, docx_zip_bomb, minimal_pdf

runner = CliRunner()
GATE = "# 门卫管理规定\n\n第一条 学校门卫应当对来访人员进行登记，核实身份后方可放行。\n\n第二条 門衛發現可疑人員應當立即報告學校保衛部門。\n"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DUTY_KB", str(tmp_path / "kb"))
    monkeypatch.setenv("DUTY_EMBEDDER", "fake")
    monkeypatch.chdir(tmp_path)
    assert _duty("ingest", str(CORPUS)).exit_code == 0
    return tmp_path


def _duty(*args: str):
    """Run the command as ``duty`` does: library errors are one message and exit status 1."""
    result = runner.invoke(app, list(args))
    if isinstance(result.exception, AssistantError):
        return result  # main() prints 「错误：…」 and exits 1; the message is checked by the caller
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _error(result) -> str:
    assert isinstance(result.exception, AssistantError), (result.exit_code, result.output)
    return str(result.exception)


def _state() -> tuple:
    docs = json.loads(_duty("docs", "--json").output)["documents"]
    hits = json.loads(_duty("search", FIXED_QUERY, "--k", "5", "--json").output)["hits"]
    return sorted((d["source"], d["sha256"]) for d in docs), [h["chunk_id"] for h in hits]


@pytest.mark.parametrize(("question", "fragment"), [("", "empty"), ("  \t\n ", "empty"), ("校" * 100_000, "2000")])
def test_empty_blank_and_huge_questions_are_clear_errors(env, question, fragment):
    for command in ("ask", "search"):
        message = _error(_duty(command, question, "--json"))
        assert fragment in message, (command, message)


@pytest.mark.parametrize("question", ["校车驾驶人\x07需要\x1b[31m什么条件？", "🚌校车驾驶人需要什么条件？😀", "學校應當建立校車安全管理制度嗎？"])
def test_control_characters_emoji_and_traditional_chinese_get_answers(env, question):
    result = _duty("ask", question, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    for citation in body["citations"]:
        text = (CORPUS / citation["source"]).read_text(encoding="utf-8")
        assert text[citation["start"]:citation["end"]] == citation["quote"]


def test_unknown_role_and_out_of_range_k_are_clear_errors(env):
    assert "班主任" in _error(_duty("ask", "校车", "--role", "保安"))
    assert "1–200" in _error(_duty("search", "校车", "--k", "100000"))
    assert "1–200" in _error(_duty("search", "校车", "--k", "0"))
    assert _duty("search", "校车", "--k", "many").exit_code == 2  # typer's usage error


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def test_bad_files_are_skipped_with_reasons_and_change_nothing(env):
    bad = env / "bad"
    bad.mkdir()
    files = {
        "二进制.txt": bytes(range(256)) * 64,
        "零字节.md": b"",
        "截断.docx": docx_bytes(GATE)[:3000],
        "截断.pdf": minimal_pdf("School gate")[:200],
        "炸弹.docx": docx_zip_bomb(),
        "只有标题.md": "# 只有标题\n".encode(),
    }
    for name, data in files.items():
        _write(bad, name, data)
    before = _state()
    result = _duty("ingest", str(bad), "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["added"] == [] and len(report["skipped"]) == len(files)
    for name in files:
        assert any(line.startswith(name) for line in report["skipped"]), (name, report["skipped"])
    assert _state() == before


def test_a_file_over_the_50_mb_limit_is_refused_by_the_documented_limit(env):
    big = env / "big" / "超大.txt"
    big.parent.mkdir()
    line = "第一条 学校应当建立安全制度。\n".encode()
    with open(big, "wb") as handle:
        for _ in range(MAX_FILE_BYTES // len(line) + 2):
            handle.write(line)
    assert big.stat().st_size > MAX_FILE_BYTES == 50 * 1024 * 1024
    before = _state()
    result = _duty("ingest", str(big), "--json")
    assert result.exit_code == 1
    (line,) = json.loads(result.output)["skipped"]
    assert "50 MB limit" in line and "split the file" in line
    assert _state() == before


def test_same_name_in_two_folders_keeps_the_first_and_says_so(env):
    for folder, text in (("a", GATE), ("b", GATE.replace("登记", "查验"))):
        (env / folder).mkdir()
        _write(env / folder, "门卫.md", text.encode())
    report = json.loads(_duty("ingest", str(env / "a"), str(env / "b"), "--json").output)
    assert report["added"] == ["门卫.md"]
    assert any("same file name" in line for line in report["skipped"])
    assert json.loads(_duty("docs", "--json").output)["documents"].__len__() == 4


def test_encodings_are_ingested(env):
    folder = env / "enc"
    folder.mkdir()
    _write(folder, "gbk.txt", GATE.replace("門衛發現可疑人員應當", "门卫发现可疑人员应当").encode("gbk"))
    _write(folder, "gb18030.txt", (GATE + "第三条 𠀀𪚥。\n").encode("gb18030"))
    _write(folder, "utf16.txt", GATE.encode("utf-16"))
    report = json.loads(_duty("ingest", str(folder), "--json").output)
    assert sorted(report["added"]) == ["gb18030.txt", "gbk.txt", "utf16.txt"], report


@pytest.mark.parametrize("name", ["../门卫.md", "/tmp/../门卫.md"])
def test_dotdot_and_absolute_paths_name_the_file_not_the_path(env, name):
    target = env / "sub"
    target.mkdir()
    (env / "门卫.md").write_text(GATE, encoding="utf-8")
    path = name if name.startswith("..") else str(env / "sub" / ".." / "门卫.md")
    os.chdir(target)
    report = json.loads(_duty("ingest", path, "--json").output)
    assert report["added"] == ["门卫.md"]
    assert "门卫.md" in {d["source"] for d in json.loads(_duty("docs", "--json").output)["documents"]}
    removed = json.loads(_duty("ingest", "--remove", "../../门卫.md", "--json").output)
    assert removed["removed"] == ["门卫.md"]  # only the name counts; nothing outside the KB is touched
    assert (env / "门卫.md").exists()


def test_the_installed_command_prints_one_line_and_exits_1(env):
    duty = Path(sys.executable).with_name("duty")
    command = [str(duty)] if duty.exists() else [sys.executable, "-m", "assistant.cli"]
    done = subprocess.run([*command, "ask", "   "], capture_output=True, text=True, timeout=120, env=os.environ)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("错误：") and "Traceback" not in done.stderr
