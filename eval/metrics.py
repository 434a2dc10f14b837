"""Evaluation metrics as pure functions over plain values (no assistant, no I/O).

Definitions (DESIGN.md §8):

* a retrieved passage *hits* a gold item when its source file name equals the gold ``file`` and its text
  contains the gold ``phrase``;
* Recall@k of a question is the share of its gold items hit by at least one of the top k passages
  (questions with several gold items get partial credit); MRR@10 uses the rank of the first passage
  that hits any gold item;
* refused means ``grounded`` is false; refusal precision/recall are about the unanswerable items,
  the false-refusal rate about the answerable ones;
* a citation is exact when its quote is a substring of the cited file's text.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

RECALL_KS = (1, 5, 10)
MRR_K = 10
CURVE_K = 10


@dataclass(frozen=True, slots=True)
class Gold:
    file: str
    phrase: str


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved passage as the hit test sees it: its file name and its text."""

    source: str
    text: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one system did on one question; the input of :func:`summarize`."""

    id: str
    kind: str
    split: str  # "dev" or "holdout"
    answerable: bool
    gold_ranks: tuple[int | None, ...] = ()  # per gold item: 1-based rank of the first hitting passage
    first_hit: int | None = None  # 1-based rank of the first passage hitting any gold item
    refused: bool | None = None  # None when the system does not answer (retrieval-only baselines)
    citations: tuple[tuple[str, str], ...] = ()  # (source file name, quote)
    search_ms: float | None = None  # wall-clock
    ask_ms: float | None = None
    search_cpu_ms: float | None = None  # CPU time of the process: less sensitive to a busy machine
    ask_cpu_ms: float | None = None


@dataclass(frozen=True, slots=True)
class RefusalScores:
    refused_unanswerable: int
    unanswerable: int
    refused_answerable: int
    answerable: int
    precision: float | None = field(default=None)
    recall: float | None = field(default=None)
    false_refusal_rate: float | None = field(default=None)


def is_hit(passage: Passage, gold: Gold) -> bool:
    """True when the passage comes from the gold file and contains the gold phrase verbatim."""
    return passage.source == gold.file and gold.phrase in passage.text


def gold_ranks(passages: Sequence[Passage], gold: Sequence[Gold]) -> tuple[int | None, ...]:
    """For each gold item, the 1-based rank of the first passage that hits it (None: never hit)."""
    ranks: list[int | None] = []
    for item in gold:
        ranks.append(next((i + 1 for i, p in enumerate(passages) if is_hit(p, item)), None))
    return tuple(ranks)


def first_hit_rank(ranks: Sequence[int | None]) -> int | None:
    """Rank of the first passage hitting any gold item."""
    found = [r for r in ranks if r is not None]
    return min(found) if found else None


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of gold items hit within the top k. Raises ValueError for a question without gold."""
    if not ranks:
        raise ValueError("recall is undefined for a question without gold items")
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def reciprocal_rank(first_hit: int | None, k: int = MRR_K) -> float:
    """1/rank of the first hit when it is within the top k, else 0."""
    return 1.0 / first_hit if first_hit is not None and first_hit <= k else 0.0


def mean(values: Iterable[float]) -> float | None:
    """Arithmetic mean; None for no values."""
    items = list(values)
    return sum(items) / len(items) if items else None


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def refusal_scores(pairs: Iterable[tuple[bool, bool]]) -> RefusalScores:
    """Refusal quality from ``(answerable, refused)`` pairs.

    precision: refused unanswerable / all refused; recall: refused unanswerable / unanswerable;
    false-refusal rate: refused answerable / answerable. Each is None when its denominator is 0, and
    precision is also None for a group without unanswerable items (there was nothing to refuse rightly).
    """
    ru = u = ra = a = 0
    for answerable, refused in pairs:
        if answerable:
            a += 1
            ra += int(refused)
        else:
            u += 1
            ru += int(refused)
    return RefusalScores(ru, u, ra, a, _ratio(ru, ru + ra) if u else None, _ratio(ru, u), _ratio(ra, a))


def citation_exactness(citations: Iterable[tuple[str, str]], texts: Mapping[str, str]) -> tuple[float | None, int]:
    """Share of ``(source, quote)`` citations whose quote is a non-empty substring of ``texts[source]``.

    Citations whose source is missing from ``texts`` are skipped (not checkable). Returns the share
    (None when nothing was checkable) and the number of citations checked.
    """
    checked = exact = 0
    for source, quote in citations:
        text = texts.get(source)
        if text is None:
            continue
        checked += 1
        exact += int(bool(quote) and quote in text)
    return _ratio(exact, checked), checked


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between closest ranks; None if empty."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0-100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(values: Sequence[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}


def summarize(outcomes: Sequence[Outcome], texts: Mapping[str, str] | None = None,
              raw_texts: Mapping[str, str] | None = None) -> dict:
    """All metrics for one group of outcomes, as a JSON-ready dict (None where undefined)."""
    answerable = [o for o in outcomes if o.answerable]
    metrics: dict = {"n": len(outcomes), "answerable": len(answerable), "unanswerable": len(outcomes) - len(answerable)}
    for k in RECALL_KS:
        metrics[f"recall@{k}"] = mean(recall_at(o.gold_ranks, k) for o in answerable)
    metrics[f"mrr@{MRR_K}"] = mean(reciprocal_rank(o.first_hit) for o in answerable)
    metrics["recall_curve"] = [mean(recall_at(o.gold_ranks, k) for o in answerable) for k in range(1, CURVE_K + 1)]
    asked = [o for o in outcomes if o.refused is not None]
    if asked:
        scores = refusal_scores((o.answerable, bool(o.refused)) for o in asked)
        metrics.update(refusal_precision=scores.precision, refusal_recall=scores.recall,
                       false_refusal_rate=scores.false_refusal_rate)
        citations = [c for o in asked for c in o.citations]
        metrics["citations"] = len(citations)
        if texts is not None:
            metrics["citation_exactness"], _ = citation_exactness(citations, texts)
        if raw_texts is not None:
            metrics["citation_exactness_raw"], metrics["citations_raw_checked"] = citation_exactness(citations, raw_texts)
    metrics["search_ms"] = latency_summary([o.search_ms for o in outcomes if o.search_ms is not None])
    metrics["search_cpu_ms"] = latency_summary([o.search_cpu_ms for o in outcomes if o.search_cpu_ms is not None])
    if asked:
        metrics["ask_ms"] = latency_summary([o.ask_ms for o in asked if o.ask_ms is not None])
        metrics["ask_cpu_ms"] = latency_summary([o.ask_cpu_ms for o in asked if o.ask_cpu_ms is not None])
    return metrics


def gap_interval(dev: Sequence[float], holdout: Sequence[float], *, resamples: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float] | None:
    """mean(holdout) − mean(dev), with a bootstrap interval: both parts resampled with replacement,
    ``resamples`` times. How far the gap between two fixed parts can move by which questions happened to be
    drawn into them; None when a part is empty."""
    if not dev or not holdout:
        return None
    rng = random.Random(seed)
    gap = sum(holdout) / len(holdout) - sum(dev) / len(dev)
    draws = sorted(sum(rng.choices(holdout, k=len(holdout))) / len(holdout) - sum(rng.choices(dev, k=len(dev))) / len(dev)
                   for _ in range(resamples))
    tail = (1 - level) / 2
    return gap, draws[int(tail * (resamples - 1))], draws[int((1 - tail) * (resamples - 1))]


def split_gaps(outcomes: Sequence[Outcome]) -> dict[str, tuple[float, float, float] | None]:
    """Holdout − dev of Recall@5 and MRR@10 over the answerable outcomes, each with its bootstrap interval."""
    answerable = [o for o in outcomes if o.answerable]
    parts = {split: [o for o in answerable if o.split == split] for split in ("dev", "holdout")}
    per_question = {"recall@5": lambda o: recall_at(o.gold_ranks, 5), "mrr@10": lambda o: reciprocal_rank(o.first_hit)}
    return {key: gap_interval([f(o) for o in parts["dev"]], [f(o) for o in parts["holdout"]]) for key, f in per_question.items()}


def _id_number(question_id: str) -> int:
    digits = "".join(c for c in question_id if c.isdigit())
    if not digits:
        raise ValueError(f"question id {question_id!r} has no number")
    return int(digits)


def split_of(question_id: str) -> str:
    """The fixed split: ids whose number is divisible by 5 are held aside ("holdout"), the rest "dev"."""
    return "holdout" if _id_number(question_id) % 5 == 0 else "dev"


# Rounds in which questions were added to eval/dev.jsonl, by the first id number of each round. The second
# was written blind (from the texts alone, after the ranking of the first had been tuned), so its figures
# measure how that tuning carries over to new questions.
QUESTION_BATCHES = ((1, "q001–q299"), (300, "q300–q499"), (500, "q500+"))


def batch_of(question_id: str) -> str:
    """The round a question was written in, by its id number (see QUESTION_BATCHES)."""
    number = _id_number(question_id)
    label = QUESTION_BATCHES[0][1]
    for first, name in QUESTION_BATCHES:
        if number >= first:
            label = name
    return label


def group_by(outcomes: Sequence[Outcome], key: Callable[[Outcome], str]) -> dict[str, list[Outcome]]:
    """Outcomes by ``key``, groups in first-seen order."""
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(key(o), []).append(o)
    return groups


def breakdown(outcomes: Sequence[Outcome], key: Callable[[Outcome], str], **kwargs: Mapping[str, str] | None) -> dict[str, dict]:
    """:func:`summarize` per group, groups in first-seen order."""
    return {name: summarize(items, **kwargs) for name, items in group_by(outcomes, key).items()}
