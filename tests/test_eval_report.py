"""`python -m eval.report` end to end on the tiny corpus with the fake embedder."""

from __future__ import annotations

import json

from eval.report import main
from tests.test_eval_harness import write_tiny_corpus


def test_report_writes_markdown_chart_and_summary(tmp_path, capsys):
    docs, qa = write_tiny_corpus(tmp_path)
    out = tmp_path / "reports"
    code = main(["--kb", str(tmp_path / "eval.kb"), "--qa", str(qa), "--out", str(out), "--sources", str(docs), "--embedder", "fake",
                 "--probe", str(qa)])
    assert code == 0
    report = (out / "report.md").read_text(encoding="utf-8")
    for part in ("ours vs the naive recipe", "naive-dense", "naive-hybrid", "holdout", "Per question kind", "Targets", "recall.png",
                 "Refusal probes", f"unanswerable refused ≥ 0.90 ({qa.stem})", "The dev / holdout gap"):
        assert part in report
    png = (out / "recall.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) < 300_000
    result = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert set(result["systems"]) == {"ours", "naive-dense", "naive-hybrid"}
    assert result["systems"]["ours"]["overall"]["recall@5"] == 0.75
    # dev: q001–q003 all found (R@5 1.0); holdout: q005's gold file is not in the KB (0.0)
    assert result["systems"]["ours"]["split_gaps"]["recall@5"] == [-1.0, -1.0, -1.0]
    assert result["probes"][0]["overall"]["recall@5"] == 0.75  # the same questions, evaluated again as a probe
    assert "ours − best naive" in capsys.readouterr().out


def test_report_skip_baseline_and_reuse_kb(tmp_path):
    docs, qa = write_tiny_corpus(tmp_path)
    args = ["--kb", str(tmp_path / "eval.kb"), "--qa", str(qa), "--out", str(tmp_path / "r"), "--sources", str(docs),
            "--embedder", "fake", "--skip-baseline"]
    assert main(args) == 0
    assert main(args) == 0  # second run reuses the knowledge base
    result = json.loads((tmp_path / "r" / "summary.json").read_text(encoding="utf-8"))
    assert list(result["systems"]) == ["ours"]
    assert result["probes"] == []  # no probe unless asked for, or the dev set itself is evaluated


def test_report_refuses_a_kb_with_other_documents(tmp_path, capsys):
    docs, qa = write_tiny_corpus(tmp_path)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "其他文件.md").write_text("# 其他文件\n\n第一条 与评测无关的内容。\n", encoding="utf-8")
    kb = str(tmp_path / "eval.kb")
    common = ["--kb", kb, "--qa", str(qa), "--out", str(tmp_path / "r"), "--embedder", "fake", "--skip-baseline"]
    assert main([*common, "--sources", str(docs), str(extra)]) == 0
    assert main([*common, "--sources", str(docs)]) == 1
    assert "fresh --kb" in capsys.readouterr().err


def test_report_has_a_table_per_round_of_questions(tmp_path):
    docs, qa = write_tiny_corpus(tmp_path)
    rows = [json.loads(line) for line in qa.read_text(encoding="utf-8").splitlines()]
    rows[1]["id"] = "q302"  # 校车载人…: found first
    qa.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "r"
    assert main(["--kb", str(tmp_path / "eval.kb"), "--qa", str(qa), "--out", str(out), "--sources", str(docs),
                 "--embedder", "fake", "--skip-baseline"]) == 0
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Per round of questions" in report
    assert "| q300–q499 | dev | 1 | 1.000 | 1.000 |" in report
    assert "| q001–q299 | holdout | 1 | 0.000 | 0.000 |" in report  # q005: its gold file is not in the KB
