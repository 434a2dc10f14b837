"""Tests for the dev question set (eval/dev.jsonl) and its checker (eval/check_questions.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.check_questions import (
    DEFAULT_SOURCE_DIRS,
    check_question_set,
    longest_common_substring,
    main,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_SET = REPO_ROOT / "eval" / "dev.jsonl"

LAW_TEXT = """# 示例学校安全条例

第一条 为了保障学校安全，制定本条例。
第二条 学校应当建立健全安全管理制度，定期组织应急疏散演练。
第三条 发生学生伤害事故，学校应当在二十四小时内报告主管的教育行政部门。
"""

# relaxed thresholds for the tiny hand-made sets; the real set uses the defaults
SMALL = {"min_questions": 0, "min_unanswerable": 0}


def _rec(rid: str, question: str, gold: list[dict] | None = None, kind: str = "fact", role: str = "") -> dict:
    return {"id": rid, "kind": kind, "role": role, "question": question, "gold": gold or []}


def _good_records() -> list[dict]:
    return [
        _rec(
            "q001",
            "孩子在学校受伤了，学校多久要往上报？",
            [{"file": "law.md", "phrase": "学校应当在二十四小时内报告"}],
            kind="procedure",
            role="校长",
        ),
        _rec(
            "q002",
            "学校平时要不要搞逃生的练习？",
            [{"file": "law.md", "phrase": "定期组织应急疏散演练"}],
            kind="duty",
        ),
        _rec("q003", "高考加分政策怎么规定的？", kind="unanswerable"),
    ]


def _write(tmp_path: Path, records: list[dict] | list[str]) -> tuple[Path, Path]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "law.md").write_text(LAW_TEXT, encoding="utf-8")
    qa = tmp_path / "qa.jsonl"
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    qa.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return qa, src


def _problems(tmp_path: Path, records: list, **kw) -> list[str]:
    qa, src = _write(tmp_path, records)
    return check_question_set(qa, [src], **{**SMALL, **kw})


def _has(problems: list[str], needle: str) -> bool:
    return any(needle in p for p in problems)


@pytest.mark.shared
def test_dev_set_passes_checker():
    missing = [str(d) for d in DEFAULT_SOURCE_DIRS if not d.is_dir()]
    if missing:
        pytest.skip(f"shared source texts not available: {missing}")
    problems = check_question_set(DEV_SET, list(DEFAULT_SOURCE_DIRS))
    assert problems == [], "\n".join(problems)


def _ids(path: Path) -> set[str]:
    return {json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def test_refusal_probe_sets_pass_the_checker_and_share_no_ids():
    missing = [str(d) for d in DEFAULT_SOURCE_DIRS if not d.is_dir()]
    if missing:
        pytest.skip(f"shared source texts not available: {missing}")
    seen = _ids(DEV_SET)
    for name in (f"refusal_probe{n}.jsonl" for n in ("", "2", "3", "4", "5")):
        probe = REPO_ROOT / "eval" / name
        assert main(["--qa", str(probe), "--min-questions", "50", "--min-unanswerable", "25"]) == 0
        ids = _ids(probe)
        assert ids and not ids & seen, name
        seen |= ids


@pytest.mark.shared
def test_dev_set_composition():
    records = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    kinds = [r["kind"] for r in records]
    assert len(records) >= 170
    assert kinds.count("unanswerable") >= 25
    assert {"duty", "procedure", "fact", "role", "report", "unanswerable"} <= set(kinds)
    # every law and the customer's document are covered by at least 4 questions
    laws_dir = DEFAULT_SOURCE_DIRS[1]
    if laws_dir.is_dir():
        per_file: dict[str, set[str]] = {}
        for r in records:
            for g in r["gold"]:
                per_file.setdefault(g["file"], set()).add(r["id"])
        for law in sorted(p.name for p in laws_dir.glob("*.md")):
            assert len(per_file.get(law, ())) >= 4, f"{law} has fewer than 4 questions"
        assert len(per_file.get("000_ef7ac5fda583e90f.txt", ())) >= 25


def test_good_small_set_has_no_problems(tmp_path):
    assert _problems(tmp_path, _good_records()) == []


def test_duplicate_id(tmp_path):
    recs = _good_records()
    recs[1]["id"] = "q001"
    assert _has(_problems(tmp_path, recs), "duplicate id 'q001'")


def test_phrase_not_in_file(tmp_path):
    recs = _good_records()
    recs[0]["gold"][0]["phrase"] = "学校应当在四十八小时内报告"
    assert _has(_problems(tmp_path, recs), "phrase not found in law.md")


def test_phrase_too_short(tmp_path):
    recs = _good_records()
    recs[0]["gold"][0]["phrase"] = "二十四小时"
    assert _has(_problems(tmp_path, recs), "phrase length 5 outside 8-30")


def test_phrase_too_long(tmp_path):
    recs = _good_records()
    recs[0]["gold"][0]["phrase"] = "发生学生伤害事故，学校应当在二十四小时内报告主管的教育行政部门。"
    assert _has(_problems(tmp_path, recs), "outside 8-30")


def test_missing_gold_file(tmp_path):
    recs = _good_records()
    recs[0]["gold"][0]["file"] = "no_such_law.md"
    assert _has(_problems(tmp_path, recs), "gold file not found in source dirs: 'no_such_law.md'")


def test_gold_file_must_be_base_name(tmp_path):
    recs = _good_records()
    recs[0]["gold"][0]["file"] = "src/law.md"
    assert _has(_problems(tmp_path, recs), "must be a base name")


def test_high_verbatim_overlap(tmp_path):
    recs = _good_records()
    recs[0]["question"] = "发生学生伤害事故，学校应当在多久内报告？"
    problems = _problems(tmp_path, recs)
    assert _has(problems, "verbatim overlap")
    assert _has(problems, "发生学生伤害事故，学校应当在")


def test_overlap_threshold_is_configurable(tmp_path):
    recs = _good_records()
    recs[0]["question"] = "发生学生伤害事故了，要报告吗？"  # 8-char run: allowed by default, not at 6
    assert _problems(tmp_path, recs) == []
    assert _has(_problems(tmp_path, recs, max_overlap=6), "verbatim overlap 8 > 6")


def test_unanswerable_requires_empty_gold(tmp_path):
    recs = _good_records()
    recs[2]["gold"] = [{"file": "law.md", "phrase": "定期组织应急疏散演练"}]
    assert _has(_problems(tmp_path, recs), "unanswerable question must have empty gold")


def test_answerable_requires_gold(tmp_path):
    recs = _good_records()
    recs[1]["gold"] = []
    assert _has(_problems(tmp_path, recs), "empty gold but kind is 'duty'")


def test_fields_and_types(tmp_path):
    recs = _good_records()
    recs[0]["extra"] = 1
    del recs[1]["role"]
    recs[2]["question"] = 42
    problems = _problems(tmp_path, recs)
    assert _has(problems, "unexpected field(s) ['extra']")
    assert _has(problems, "missing field(s) ['role']")
    assert _has(problems, "field 'question' must be a string")


def test_gold_entry_fields(tmp_path):
    recs = _good_records()
    recs[0]["gold"][0]["article"] = "第三条"
    assert _has(_problems(tmp_path, recs), "fields must be exactly ['file', 'phrase']")


def test_kind_and_role_values(tmp_path):
    recs = _good_records()
    recs[0]["kind"] = "howto"
    recs[1]["role"] = "学生"
    problems = _problems(tmp_path, recs)
    assert _has(problems, "kind 'howto' not in")
    assert _has(problems, "role '学生' not in")


def test_invalid_json_line(tmp_path):
    recs: list = _good_records()
    recs.insert(1, '{"id": "q009", "kind": ')
    assert _has(_problems(tmp_path, recs), "invalid JSON")


def test_duplicate_question_text(tmp_path):
    recs = _good_records()
    recs[1]["question"] = recs[0]["question"]
    recs[1]["gold"] = recs[0]["gold"]
    assert _has(_problems(tmp_path, recs), "duplicate question")


def test_minimum_counts(tmp_path):
    problems = _problems(tmp_path, _good_records(), min_questions=150, min_unanswerable=20)
    assert _has(problems, "only 3 questions, need at least 150")
    assert _has(problems, "only 1 unanswerable questions, need at least 20")


def test_default_minimum_counts_apply(tmp_path):
    qa, src = _write(tmp_path, _good_records())
    problems = check_question_set(qa, [src])
    assert _has(problems, "need at least 150")
    assert _has(problems, "need at least 20")


def test_missing_question_file(tmp_path):
    problems = check_question_set(tmp_path / "absent.jsonl", [tmp_path], **SMALL)
    assert _has(problems, "question file not found")


def test_cli_exit_codes(tmp_path, capsys):
    qa, src = _write(tmp_path, _good_records())
    assert main(["--qa", str(qa), "--sources", str(src)]) == 1  # too few questions for the defaults
    assert "need at least 150" in capsys.readouterr().out

    bad = _good_records()
    bad[0]["gold"][0]["phrase"] = "不存在的短语不存在的短语"
    qa_bad, _ = _write(tmp_path, bad)
    assert main(["--qa", str(qa_bad), "--sources", str(src), "--sources", str(tmp_path)]) == 1
    assert "phrase not found" in capsys.readouterr().out


def test_longest_common_substring():
    assert longest_common_substring("学校应当报告", "学校应当在二十四小时内报告") == "学校应当"
    assert longest_common_substring("abc", "xyz") == ""
    assert longest_common_substring("", "abc") == ""
    assert longest_common_substring("孩子受伤了", "孩子受伤了") == "孩子受伤了"
