"""The evaluation harness and `duty eval` on a tiny knowledge base (fake embedder) with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from eval.harness import evaluate_assistant, format_summary, load_questions
from tests.conftest import make_assistant

SCHOOL, BUS, CANTEEN = "学校安全管理办法.md", "校车安全规定.md", "食堂卫生须知.txt"
# The full-width space after 第一条 is normalised by the loader: quotes from that file then differ from the raw bytes.
TINY_DOCS = {
    SCHOOL: "# 学校安全管理办法\n\n第一条\u3000学校应当每学期至少组织两次应急疏散演练，并做好记录。\n\n"
    "第二条\u3000学生在校内受伤的，班主任应当立即通知家长并及时送医。\n\n第三条\u3000学校门卫应当对来访人员进行登记核实。\n",
    BUS: "# 校车安全规定\n\n第一条 校车驾驶人应当取得相应准驾车型的驾驶证，并有三年以上驾驶经历。\n\n"
    "第二条 校车载人不得超过核定的人数，不得以任何理由超员。\n",
    CANTEEN: "食堂卫生须知\n\n一、学校食堂从业人员每年应当进行健康检查，取得健康证明后方可上岗。\n\n"
    "二、食堂应当对每餐次的食品成品进行留样，留样时间不少于四十八小时。\n",
}
TINY_QUESTIONS = [
    # two gold items: 第一条 comes first, 第三条 second → recall@1 = 0.5
    {"id": "q001", "kind": "procedure", "role": "教师", "question": "学校每学期要组织几次应急疏散演练？",
     "gold": [{"file": SCHOOL, "phrase": "每学期至少组织两次应急疏散演练"}, {"file": SCHOOL, "phrase": "对来访人员进行登记核实"}]},
    {"id": "q002", "kind": "fact", "role": "", "question": "校车载人可以超过核定人数吗？",
     "gold": [{"file": BUS, "phrase": "校车载人不得超过核定的人数"}]},
    {"id": "q003", "kind": "fact", "role": "校长", "question": "食堂的饭菜留样要留多长时间？",
     "gold": [{"file": CANTEEN, "phrase": "留样时间不少于四十八小时"}]},
    # the gold file is not in the knowledge base: this question can never be a hit
    {"id": "q005", "kind": "duty", "role": "班主任", "question": "学生在学校受伤了，班主任要立即做什么？",
     "gold": [{"file": "已删除的文件.md", "phrase": "班主任应当立即通知家长"}]},
    {"id": "q010", "kind": "unanswerable", "role": "家长", "question": "学校游泳池的水温应该保持在多少度？", "gold": []},
]
HIT_FIELDS = {"rank", "score", "chunk_id", "doc_title", "section", "text", "source", "start", "end"}
ANSWER_FIELDS = {"question", "answer", "grounded", "mode", "citations", "related"}


def write_tiny_corpus(folder: Path) -> tuple[Path, Path]:
    """Write the three documents and the five-question set; returns (documents folder, question file)."""
    docs = folder / "docs"
    docs.mkdir(parents=True)
    for name, text in TINY_DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    qa = folder / "qa.jsonl"
    qa.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in TINY_QUESTIONS), encoding="utf-8")
    return docs, qa


@pytest.fixture
def tiny(tmp_path):
    docs, qa = write_tiny_corpus(tmp_path)
    assistant = make_assistant(tmp_path / "kb")
    assert len(assistant.ingest([docs]).added) == 3
    yield assistant, qa, tmp_path
    assistant.close()


def test_load_questions_reads_the_set(tiny):
    _, qa, _ = tiny
    questions = load_questions(qa)
    assert [q.id for q in questions] == ["q001", "q002", "q003", "q005", "q010"]
    assert [q.split for q in questions] == ["dev", "dev", "dev", "holdout", "holdout"]
    assert [q.answerable for q in questions] == [True, True, True, True, False]


def test_load_questions_names_the_bad_line(tmp_path):
    qa = tmp_path / "bad.jsonl"
    qa.write_text('{"id": "q001", "kind": "fact", "role": "", "question": "x", "gold": []}\n{"id": "q002"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_questions(qa)


def test_evaluate_assistant_exact_metrics(tiny):
    assistant, qa, tmp_path = tiny
    summary = evaluate_assistant(assistant, qa, hits_out=tmp_path / "hits.jsonl")
    overall = summary["overall"]
    assert (overall["n"], overall["answerable"], overall["unanswerable"]) == (5, 4, 1)
    assert overall["recall@1"] == pytest.approx((0.5 + 1 + 1 + 0) / 4)
    assert overall["recall@5"] == pytest.approx(0.75)
    assert overall["recall@10"] == pytest.approx(0.75)
    assert overall["mrr@10"] == pytest.approx(0.75)
    assert overall["refusal_recall"] == 1.0 and overall["refusal_precision"] == 1.0
    assert overall["false_refusal_rate"] == 0.0
    assert overall["citations"] == 4
    assert overall["citation_exactness"] == 1.0
    # the two quotes from the school file contain a normalised full-width space: exact against the KB, not the raw file
    assert overall["citation_exactness_raw"] == 0.5 and overall["citations_raw_checked"] == 4
    assert overall["search_ms"]["n"] == 5 and overall["ask_ms"]["p95"] >= overall["ask_ms"]["p50"] > 0
    assert overall["search_cpu_ms"]["n"] == 5 and overall["ask_cpu_ms"]["n"] == 5

    dev, holdout = summary["splits"]["dev"], summary["splits"]["holdout"]
    assert dev["n"] == 3 and dev["recall@1"] == pytest.approx(2.5 / 3) and dev["recall@5"] == 1.0 and dev["mrr@10"] == 1.0
    assert holdout["n"] == 2 and holdout["recall@5"] == 0.0 and holdout["refusal_recall"] == 1.0
    assert list(summary["by_kind"]) == ["duty", "procedure", "fact", "unanswerable"]
    assert summary["by_kind"]["duty"]["recall@10"] == 0.0
    assert summary["by_kind"]["fact"]["recall@1"] == 1.0
    assert summary["by_kind"]["unanswerable"]["recall@5"] is None

    assert summary["failures"] == {"missed@5": ["q005"], "false_refusals": [], "missed_refusals": []}

    table = format_summary(summary)
    assert "holdout" in table and "kind:unanswerable" in table and "0.625" in table


def test_summary_breaks_retrieval_down_by_round_of_questions(tiny):
    assistant, qa, tmp_path = tiny
    # q002 and q003 renumbered into the second round (q302 dev, q305 holdout)
    rows = [json.loads(line) for line in qa.read_text(encoding="utf-8").splitlines()]
    rows[1]["id"], rows[2]["id"] = "q302", "q305"
    qa.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    by_batch = evaluate_assistant(assistant, qa)["by_batch"]
    assert list(by_batch) == ["q001–q299", "q300–q499"]
    first, second = by_batch["q001–q299"], by_batch["q300–q499"]
    assert (first["dev"]["n"], first["holdout"]["n"], second["dev"]["n"], second["holdout"]["n"]) == (1, 2, 1, 1)
    assert first["dev"]["recall@1"] == 0.5 and first["holdout"]["recall@5"] == 0.0  # q001's two items; q005 cannot hit
    assert second["dev"]["mrr@10"] == 1.0 and second["holdout"]["mrr@10"] == 1.0


def test_hits_out_has_one_line_per_question(tiny):
    assistant, qa, tmp_path = tiny
    out = tmp_path / "hits.jsonl"
    evaluate_assistant(assistant, qa, hits_out=out)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in lines] == ["q001", "q002", "q003", "q005", "q010"]
    for record in lines:
        assert set(record) == {"id", "question", "hits", "answer"}
        assert 1 <= len(record["hits"]) <= 10
        assert all(set(h) == HIT_FIELDS for h in record["hits"])
        assert ANSWER_FIELDS <= set(record["answer"])
    assert lines[4]["answer"]["grounded"] is False and lines[4]["answer"]["citations"] == []


def test_duty_eval_cli_writes_hits_and_json(tiny):
    assistant, qa, tmp_path = tiny
    kb = assistant.kb.root
    assistant.close()
    out = tmp_path / "cli-hits.jsonl"
    result = CliRunner().invoke(app, ["eval", "--qa", str(qa), "--hits-out", str(out), "--json", "--kb", str(kb)],
                                env={"DUTY_EMBEDDER": "fake", "DUTY_KB": str(kb)})
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["system"] == "ours" and summary["questions"] == 5
    assert summary["overall"]["recall@5"] == pytest.approx(0.75)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 5
    assert all(set(r) == {"id", "question", "hits", "answer"} for r in lines)
    assert all(set(h) == HIT_FIELDS for r in lines for h in r["hits"])


def test_duty_eval_cli_prints_a_table(tiny):
    assistant, qa, _ = tiny
    kb = assistant.kb.root
    assistant.close()
    result = CliRunner().invoke(app, ["eval", "--qa", str(qa), "--kb", str(kb)], env={"DUTY_EMBEDDER": "fake"})
    assert result.exit_code == 0, result.output
    assert "MRR@10" in result.stdout and "holdout" in result.stdout
