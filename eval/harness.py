"""Run a question set through the assistant and measure it (``duty eval``).

Every question is searched (top 10) and asked, with the asker's role. Timing starts after a warm-up, so
model loading and first-use caches do not count as latency.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from eval.metrics import (
    MRR_K,
    Gold,
    Outcome,
    Passage,
    batch_of,
    breakdown,
    first_hit_rank,
    gold_ranks,
    group_by,
    split_gaps,
    split_of,
    summarize,
)

if TYPE_CHECKING:
    from assistant.index import KnowledgeBase
    from assistant.pipeline import Assistant

T = TypeVar("T")
EVAL_DIR = Path(__file__).resolve().parent
KIND_ORDER = ("duty", "procedure", "fact", "role", "report", "unanswerable")
WARMUP_QUESTIONS = 3
RAW_SUFFIXES = {".md", ".txt"}


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    kind: str
    role: str
    question: str
    gold: tuple[Gold, ...]

    @property
    def answerable(self) -> bool:
        return bool(self.gold)

    @property
    def split(self) -> str:
        return split_of(self.id)


def default_question_file() -> Path:
    """The dev question set shipped with the repository (``eval/dev.jsonl``)."""
    return EVAL_DIR / "dev.jsonl"


def load_questions(path: Path) -> list[Question]:
    """Read a JSON-lines question set (DESIGN.md §8); blank lines are skipped."""
    questions = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            gold = tuple(Gold(g["file"], g["phrase"]) for g in row["gold"])
            questions.append(Question(row["id"], row["kind"], row.get("role") or "", row["question"], gold))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a question record ({exc}); see eval/check_questions.py") from exc
    return questions


def document_texts(kb: KnowledgeBase) -> tuple[dict[str, str], dict[str, str]]:
    """Text of every document by file name: as stored in the KB, and as decoded from the file on disk.

    The raw text is only available for plain-text files that still exist at their ingest path.
    """
    from assistant.ingest.loaders import decode_text

    stored: dict[str, str] = {}
    raw: dict[str, str] = {}
    for doc in kb.docs.values():
        stored[doc.source] = doc.text
        path = Path(doc.path)
        if path.suffix.lower() in RAW_SUFFIXES and path.is_file():
            raw[doc.source] = decode_text(doc.source, path.read_bytes())[0]
    return stored, raw


def summarize_run(system: str, outcomes: Sequence[Outcome], *, texts: dict[str, str] | None = None,
                  raw_texts: dict[str, str] | None = None, **info: object) -> dict:
    """Overall metrics, the fixed dev/holdout split and a per-kind breakdown for one system."""
    kwargs = {"texts": texts, "raw_texts": raw_texts}
    by_kind = breakdown(outcomes, lambda o: o.kind, **kwargs)
    order = {kind: i for i, kind in enumerate(KIND_ORDER)}
    return {
        "system": system, **info, "questions": len(outcomes),
        "failures": failures(outcomes),
        "overall": summarize(outcomes, **kwargs),
        "splits": {name: summarize([o for o in outcomes if o.split == name], **kwargs) for name in ("dev", "holdout")},
        "split_gaps": split_gaps(outcomes),
        "by_kind": dict(sorted(by_kind.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))),
        "by_batch": {batch: {name: summarize([o for o in group if o.split == name], **kwargs) for name in ("dev", "holdout")}
                     for batch, group in group_by(outcomes, lambda o: batch_of(o.id)).items()},
    }


def timed(call: Callable[[], T]) -> tuple[T, float, float]:
    """Run ``call``; return its result, wall-clock ms and process CPU ms."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def failures(outcomes: Sequence[Outcome]) -> dict[str, list[str]]:
    """Question ids to look at when tuning: no gold item in the top 5, wrong refusals either way."""
    return {
        "missed@5": [o.id for o in outcomes if o.answerable and (o.first_hit is None or o.first_hit > 5)],
        "false_refusals": [o.id for o in outcomes if o.answerable and o.refused],
        "missed_refusals": [o.id for o in outcomes if not o.answerable and o.refused is False],
    }


def evaluate_assistant(assistant: Assistant, qa_path: Path, *, hits_out: Path | None = None, k: int = 10) -> dict:
    """Search and ask every question; write per-question hits when ``hits_out`` is given.

    Returns the summary of :func:`summarize_run` (system ``"ours"``).
    """
    from assistant.schema import answer_to_json, hit_to_json

    questions = load_questions(qa_path)
    for q in questions[:WARMUP_QUESTIONS]:
        assistant.search(q.question, k=k, role=q.role or None)
        assistant.ask(q.question, role=q.role or None)
    outcomes: list[Outcome] = []
    with open(hits_out, "w", encoding="utf-8") if hits_out else contextlib.nullcontext() as out:
        for q in questions:
            # Each timed call starts without remembered query vectors, as a new question from a user would.
            assistant.retriever.forget_queries()
            hits, search_ms, search_cpu = timed(lambda q=q: assistant.search(q.question, k=k, role=q.role or None))
            assistant.retriever.forget_queries()
            answer, ask_ms, ask_cpu = timed(lambda q=q: assistant.ask(q.question, role=q.role or None))
            ranks = gold_ranks([Passage(h.chunk.source, h.chunk.text) for h in hits[:MRR_K]], q.gold)
            outcomes.append(Outcome(
                q.id, q.kind, q.split, q.answerable, ranks, first_hit_rank(ranks), not answer.grounded,
                tuple((c.source, c.quote) for c in answer.citations), search_ms, ask_ms, search_cpu, ask_cpu,
            ))
            if out is not None:
                record = {"id": q.id, "question": q.question, "hits": [hit_to_json(h) for h in hits], "answer": answer_to_json(answer)}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    texts, raw = document_texts(assistant.kb)
    return summarize_run("ours", outcomes, texts=texts, raw_texts=raw, embedder=assistant.embedder.name,
                         qa=str(qa_path), k=k, documents=len(texts))


# ---------------------------------------------------------------------------------------------- tables
def fmt(value: object, digits: int = 3) -> str:
    """A metric value for a table cell: fixed decimals, '–' for undefined."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def group_rows(summary: dict) -> list[tuple[str, dict]]:
    """(label, metrics) for overall, the two splits and every kind."""
    rows = [("overall", summary["overall"])]
    rows += [(name, m) for name, m in summary["splits"].items()]
    rows += [(f"kind:{name}", m) for name, m in summary["by_kind"].items()]
    return rows


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned plain-text table."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


METRIC_COLUMNS = (("R@1", "recall@1"), ("R@5", "recall@5"), ("R@10", "recall@10"), ("MRR@10", "mrr@10"),
                  ("refused(unans)", "refusal_recall"), ("refusal prec", "refusal_precision"),
                  ("false refusal", "false_refusal_rate"))


def format_summary(summary: dict) -> str:
    """A readable table of one system's summary: groups × metrics, then citations and latency."""
    headers = ["group", "n", *(label for label, _ in METRIC_COLUMNS)]
    rows = [[label, str(m["n"]), *(fmt(m.get(key)) for _, key in METRIC_COLUMNS)] for label, m in group_rows(summary)]
    overall = summary["overall"]
    lines = [f"system: {summary['system']}  embedder: {summary.get('embedder', '?')}  questions: {summary['questions']}", "",
             text_table(headers, rows), ""]
    if "citations" in overall:
        lines.append(f"citations: {overall['citations']}  exact (KB text): {fmt(overall.get('citation_exactness'))}  "
                     f"exact (raw file, {overall.get('citations_raw_checked', 0)} checkable): {fmt(overall.get('citation_exactness_raw'))}")
    for name in ("search", "ask"):
        if f"{name}_ms" in overall:
            wall, cpu = overall[f"{name}_ms"], overall.get(f"{name}_cpu_ms", {})
            lines.append(f"{name} latency: p50 {fmt(wall['p50'], 1)} ms  p95 {fmt(wall['p95'], 1)} ms  (n={wall['n']}; "
                         f"CPU time p50 {fmt(cpu.get('p50'), 1)} ms  p95 {fmt(cpu.get('p95'), 1)} ms)")
    return "\n".join(lines)
