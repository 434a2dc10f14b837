"""Metric code on small hand-made cases with known answers, including ones that must come out below 1."""

from __future__ import annotations

import pytest

from eval.metrics import (
    Gold,
    Outcome,
    Passage,
    batch_of,
    breakdown,
    citation_exactness,
    first_hit_rank,
    gap_interval,
    gold_ranks,
    group_by,
    is_hit,
    latency_summary,
    percentile,
    recall_at,
    reciprocal_rank,
    refusal_scores,
    split_gaps,
    split_of,
    summarize,
)

DRILL = Gold("a.md", "每学期至少组织两次")
INJURY = Gold("a.md", "立即通知家长")
BUS = Gold("b.md", "不得超过核定的人数")


def test_hit_needs_the_same_file_and_the_exact_phrase():
    text = "第一条 学校应当每学期至少组织两次应急疏散演练。"
    assert is_hit(Passage("a.md", text), DRILL)
    assert not is_hit(Passage("b.md", text), DRILL)  # right phrase, wrong file
    assert not is_hit(Passage("a.md", "学校应当每学期至少组织一次应急疏散演练。"), DRILL)  # paraphrase is no hit
    assert not is_hit(Passage("a.md", text), Gold("A.md", DRILL.phrase))  # file names compare exactly


def test_ranks_recall_and_mrr_with_partial_credit():
    passages = [
        Passage("b.md", "第一条 校车驾驶人应当持有驾驶证。"),
        Passage("a.md", "学校应当每学期至少组织两次应急疏散演练。"),
        Passage("a.md", "学生受伤的，班主任应当立即通知家长。"),
        Passage("a.md", "每学期至少组织两次演练（重复）。"),
    ]
    ranks = gold_ranks(passages, [DRILL, INJURY, BUS])
    assert ranks == (2, 3, None)
    assert first_hit_rank(ranks) == 2
    assert recall_at(ranks, 1) == 0.0
    assert recall_at(ranks, 2) == pytest.approx(1 / 3)
    assert recall_at(ranks, 10) == pytest.approx(2 / 3)
    assert reciprocal_rank(first_hit_rank(ranks)) == 0.5
    assert reciprocal_rank(None) == 0.0
    assert reciprocal_rank(11, k=10) == 0.0  # beyond the cut-off counts as a miss


def test_recall_is_undefined_without_gold():
    with pytest.raises(ValueError):
        recall_at((), 5)


def test_refusal_precision_recall_and_false_refusals():
    pairs = [(False, True), (False, True), (False, False), (True, True), (True, False), (True, False), (True, False)]
    scores = refusal_scores(pairs)
    assert (scores.refused_unanswerable, scores.unanswerable, scores.refused_answerable, scores.answerable) == (2, 3, 1, 4)
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx(2 / 3)
    assert scores.false_refusal_rate == pytest.approx(1 / 4)


def test_refusal_scores_undefined_parts_are_none():
    nothing_refused = refusal_scores([(False, False), (True, False)])
    assert nothing_refused.precision is None and nothing_refused.recall == 0.0 and nothing_refused.false_refusal_rate == 0.0
    only_answerable = refusal_scores([(True, True), (True, False)])
    assert only_answerable.precision is None and only_answerable.recall is None and only_answerable.false_refusal_rate == 0.5


def test_citation_exactness_counts_only_verbatim_quotes():
    texts = {"a.md": "第一条 学校应当每学期至少组织两次应急疏散演练。\n"}
    citations = [
        ("a.md", "每学期至少组织两次应急疏散演练。"),  # exact
        ("a.md", "每学期至少组织二次应急疏散演练。"),  # one character changed
        ("a.md", ""),  # an empty quote proves nothing
        ("missing.md", "whatever"),  # not checkable: skipped
    ]
    share, checked = citation_exactness(citations, texts)
    assert checked == 3
    assert share == pytest.approx(1 / 3)
    assert citation_exactness([], texts) == (None, 0)


def test_percentiles_interpolate_linearly():
    assert percentile([40.0, 10.0, 30.0, 20.0], 50) == 25.0
    assert percentile([float(v) for v in range(1, 21)], 95) == pytest.approx(19.05)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    assert latency_summary([1.0, 2.0, 3.0, 4.0, 100.0]) == {"p50": 3.0, "p95": pytest.approx(80.8), "n": 5}


def test_fixed_split_holds_aside_ids_divisible_by_five():
    assert [split_of(i) for i in ("q001", "q005", "q010", "q014", "q250")] == ["dev", "holdout", "holdout", "dev", "holdout"]
    with pytest.raises(ValueError):
        split_of("abc")


def test_question_round_by_id_number():
    assert [batch_of(i) for i in ("q001", "q299", "q300", "q450", "q500", "q775")] == [
        "q001–q299", "q001–q299", "q300–q499", "q300–q499", "q500+", "q500+"]


def test_group_by_keeps_first_seen_order():
    outcomes = [Outcome(i, kind, split_of(i), True) for i, kind in (("q001", "fact"), ("q002", "duty"), ("q003", "fact"))]
    assert {k: [o.id for o in v] for k, v in group_by(outcomes, lambda o: o.kind).items()} == {"fact": ["q001", "q003"], "duty": ["q002"]}
    assert list(group_by(outcomes, lambda o: o.kind)) == ["fact", "duty"]


def _outcomes() -> list[Outcome]:
    return [
        Outcome("q001", "fact", "dev", True, (1,), 1, False, (("a.md", "学校应当"),), 10.0, 20.0),
        Outcome("q002", "fact", "dev", True, (3, None), 3, False, (("a.md", "学校不应当"),), 20.0, 30.0),
        Outcome("q003", "duty", "dev", True, (None,), None, True, (), 30.0, 40.0),
        Outcome("q005", "unanswerable", "holdout", False, (), None, True, (), 40.0, 50.0),
        Outcome("q010", "unanswerable", "holdout", False, (), None, False, (("a.md", "学校应当"),), 50.0, 60.0),
    ]


def test_summarize_a_hand_made_run():
    m = summarize(_outcomes(), texts={"a.md": "第一条 学校应当……"}, raw_texts={})
    assert (m["n"], m["answerable"], m["unanswerable"]) == (5, 3, 2)
    assert m["recall@1"] == pytest.approx(1 / 3)  # (1 + 0 + 0) / 3
    assert m["recall@5"] == pytest.approx(0.5)  # (1 + 1/2 + 0) / 3
    assert m["recall@10"] == pytest.approx(0.5)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert m["recall_curve"][:3] == pytest.approx([1 / 3, 1 / 3, 0.5])
    assert m["refusal_recall"] == 0.5 and m["refusal_precision"] == 0.5
    assert m["false_refusal_rate"] == pytest.approx(1 / 3)
    assert m["citations"] == 3
    assert m["citation_exactness"] == pytest.approx(2 / 3)
    assert m["citation_exactness_raw"] is None and m["citations_raw_checked"] == 0
    assert m["search_ms"] == {"p50": 30.0, "p95": pytest.approx(48.0), "n": 5}
    assert m["ask_ms"]["p50"] == 40.0
    assert m["search_cpu_ms"] == {"p50": None, "p95": None, "n": 0}  # not measured in these outcomes


def test_retrieval_only_outcomes_have_no_answer_metrics():
    outcomes = [Outcome(o.id, o.kind, o.split, o.answerable, o.gold_ranks, o.first_hit, search_ms=o.search_ms) for o in _outcomes()]
    m = summarize(outcomes)
    assert m["recall@5"] == pytest.approx(0.5)
    assert "refusal_recall" not in m and "citations" not in m and "ask_ms" not in m


def test_breakdown_groups_by_key():
    groups = breakdown(_outcomes(), lambda o: o.split)
    assert list(groups) == ["dev", "holdout"]
    assert groups["dev"]["recall@1"] == pytest.approx(1 / 3)
    assert groups["holdout"]["recall@1"] is None  # no answerable question there
    assert groups["holdout"]["refusal_recall"] == 0.5
    assert groups["dev"]["refusal_precision"] is None  # nothing there to refuse rightly


def test_gap_interval_brackets_the_gap_and_narrows_with_more_questions():
    gap, low, high = gap_interval([1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0])
    assert gap == pytest.approx(0.25 - 0.75)
    assert low < gap < high and -1.0 <= low and high <= 1.0
    _, low_big, high_big = gap_interval([1.0, 1.0, 0.0, 1.0] * 25, [0.0, 1.0, 0.0, 0.0] * 25)
    assert high_big - low_big < (high - low) / 2  # 25 times the questions: a far narrower interval
    assert gap_interval([1.0] * 5, [1.0] * 3) == (0.0, 0.0, 0.0)  # no spread, no interval
    assert gap_interval([], [1.0]) is None


def test_split_gaps_use_answerable_questions_only():
    outcomes = [Outcome("q001", "fact", "dev", True, (1,), 1), Outcome("q002", "fact", "dev", True, (2, None), 2),
                Outcome("q005", "fact", "holdout", True, (None,), None), Outcome("q010", "unanswerable", "holdout", False)]
    gaps = split_gaps(outcomes)
    assert gaps["recall@5"][0] == pytest.approx(0.0 - (1.0 + 0.5) / 2)
    assert gaps["mrr@10"][0] == pytest.approx(0.0 - (1.0 + 0.5) / 2)
