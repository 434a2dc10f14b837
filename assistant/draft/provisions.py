"""The provisions a draft states and cites: duty sentences for the role (as in role questions), plus the
articles that best match the user's own facts, filtered to duties about schools and ranked."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.draft.rules import Rules
from assistant.errors import RetrievalError
from assistant.index import KnowledgeBase
from assistant.retrieve import ROLE_VOCAB, HybridRetriever, is_other_level, role_duties
from assistant.text import bm25_tokens, content_words, sentence_spans
from assistant.types import Chunk

MAX_QUOTE_CHARS = 220
QUERY_CHARS = 300  # of the user's facts, for the search; the facts themselves are never cut
MAX_FACT_QUERIES = 12  # facts searched one by one per section
MIN_FOCUS = 0.25  # share of a fact's words the matching sentence must contain
SUBJECT_WINDOW = 12  # the subject (学校/教师…) must come early in the sentence
SHINGLE = 10  # a passage sharing 10 consecutive characters with the facts repeats them
KIND_BONUS = {"law": 1.0, "regulation": 1.0, "local_regulation": 1.0, "bureau_document": 0.8, "other": 0.0, "sample_report": -4.0}
# A quote starts at the duty itself, not at the article number or list marker in front of it.
_LEAD = re.compile(r"(?:第[一二三四五六七八九十百千零〇\d]+条(?:之[一二三四五六七八九十]+)?|[（(][一二三四五六七八九十\d]+[)）]|\d{1,3}[、.．]|[一二三四五六七八九十]{1,3}、)\s*")
_GOVERNMENT = re.compile(r"人民政府|县级以上|监督管理部门|国务院")


@dataclass(frozen=True, slots=True)
class Provision:
    chunk: Chunk
    span: tuple[int, int]  # quote offsets in chunk.text
    score: float

    @property
    def quote(self) -> str:
        return self.chunk.text[self.span[0] : self.span[1]]


class ProvisionFinder:
    """Finds, per section, the provisions to state; an article stated once is not stated again elsewhere
    unless a section would otherwise have none.

    A provision must lay a duty (应当/负责/要…), be about safety, and not be a penalty clause; it ranks
    higher when it names the role, is about schools and comes from a law or regulation rather than a
    sample report. Passages that merely repeat the user's own facts (a sample report the facts were
    copied from) are never cited as their basis.
    """

    def __init__(
        self, kb: KnowledgeBase, retriever: HybridRetriever, role: str, rules: Rules, *, facts: Sequence[str] = (), unit: str = ""
    ) -> None:
        self.kb = kb
        # Facts are matched to articles by words (BM25 + the best sentence): one dense query per fact would
        # cost a model call each (about a second per fact for e5 on a busy 2-core machine).
        self.retriever = HybridRetriever(kb, retriever.params, mode="sparse")
        self.role = role
        self.rules = rules
        self.used: set[str] = set()
        self.unit = unit  # 「某某中学」: kindergarten texts do not bind it (is_other_level)
        self._fact_shingles = {f[i : i + SHINGLE] for f in facts for i in range(len(f) - SHINGLE + 1)}

    def find(self, key: str, facts: list[str], *, quota: int | None = None) -> list[Provision]:
        """Up to ``quota`` provisions for section ``key``, relevant to the section's ``facts`` when given.

        Articles stated in an earlier section are skipped, unless nothing else qualifies: then the best
        of them is stated again (the draft cites it under the same number).
        """
        quota = self.rules.section_quota[key] if quota is None else quota
        chosen = self._choose(self._candidates(key, facts, reuse=False), quota)
        if not chosen:
            chosen = self._choose(self._candidates(key, facts, reuse=True), 1)
        self.used.update(p.chunk.chunk_id for p in chosen)
        # Reading order: laws before sample reports, then by document and position in it.
        return sorted(chosen, key=lambda p: (-KIND_BONUS.get(p.chunk.doc_kind, 0.0), p.chunk.doc_title, p.chunk.ordinal, p.span))

    def _candidates(self, key: str, facts: list[str], *, reuse: bool) -> dict[str, Provision]:
        query = f"{self.rules.section_topics[key]} {' '.join(facts)[:QUERY_CHARS]}".strip()
        candidates: dict[str, Provision] = {}
        for item in role_duties(self.kb, self.role, query, region=self.retriever.params.region, limit=40, per_doc=6):
            self._consider(candidates, item.chunk, item.span, item.score, reuse)
        for chunk, span, score in self._subject_sentences(query):
            self._consider(candidates, chunk, span, score, reuse)
        for fact in facts[:MAX_FACT_QUERIES]:
            for rank, hit in enumerate(self._hits(fact[:QUERY_CHARS])):
                if hit.focus is not None and hit.focus_score >= MIN_FOCUS:
                    self._consider(candidates, hit.chunk, hit.focus, 2.0 + 4.0 * hit.focus_score - 0.3 * rank, reuse)
        return candidates

    @staticmethod
    def _choose(candidates: dict[str, Provision], quota: int) -> list[Provision]:
        ranked = sorted(candidates.values(), key=lambda p: (-p.score, p.chunk.chunk_id))
        chosen: list[Provision] = []
        per_doc: dict[str, int] = {}
        for provision in ranked:
            doc = provision.chunk.doc_id
            if per_doc.get(doc, 0) >= 2:
                continue
            per_doc[doc] = per_doc.get(doc, 0) + 1
            chosen.append(provision)
            if len(chosen) >= quota:
                break
        return chosen

    def _subject_sentences(self, query: str):
        """Sentences on the section's topic whose subject is what the role runs (「学校应当……」)."""
        subjects = self.rules.role_subjects.get(self.role, ())
        topic = set(content_words(query))
        for rank, (cid, _) in enumerate(self.kb.bm25.search(bm25_tokens(query), 60, {})):
            chunk = self.kb.chunks[cid]
            for start, end in sentence_spans(chunk.text):
                sentence = chunk.text[start:end]
                head = sentence[:SUBJECT_WINDOW]
                if not any(s in head for s in subjects):
                    continue
                overlap = sum(1 for w in topic if w in sentence)
                yield chunk, (start, end), 1.0 + 0.5 * min(overlap, 4) + 1.0 / (1 + rank / 10)

    def _hits(self, query: str):
        try:
            return self.retriever.retrieve(query, k=4, role=self.role).hits
        except RetrievalError:
            return []

    def _consider(self, out: dict[str, Provision], chunk: Chunk, sentence: tuple[int, int], base: float, reuse: bool) -> None:
        rules = self.rules
        if (chunk.chunk_id in self.used and not reuse) or chunk.doc_id in self.kb.superseded or rules.penalty_sections.search(chunk.section):
            return
        if is_other_level(chunk, self.unit):
            return
        span = quote_span(chunk, sentence)
        text = chunk.text[span[0] : span[1]]
        if rules.penalty_words.search(text) or rules.not_duty.search(text) or not rules.safety_words.search(text):
            return
        if "\n" in text or text.rstrip().endswith(("：", ":")):  # a bare lead-in to a list states nothing
            return
        if not rules.duty_words.search(text) or self._repeats_facts(text):
            return
        if self.role != "教育局" and (self._government_item(chunk, span) or self._government_subject(text)):
            return
        school = bool(rules.school_words.search(text) or rules.school_titles.search(chunk.doc_title))
        score = base + (2.0 if school else -2.5) + KIND_BONUS.get(chunk.doc_kind, 0.0)
        if self.role != "教育局" and _GOVERNMENT.search(text) and not rules.school_words.search(text):
            score -= 3.0
        if self._names_subject(text):
            score += 1.5
        previous = out.get(chunk.chunk_id)
        if previous is None or previous.score < score:
            out[chunk.chunk_id] = Provision(chunk, span, score)

    def _names_subject(self, text: str) -> bool:
        """The role (or what it runs) comes before the duty word: 「班主任……应当」, 「学校应当」."""
        terms = (*ROLE_VOCAB[self.role][0], *self.rules.role_subjects.get(self.role, ()))
        duty = self.rules.duty_words.search(text)
        return duty is not None and any(0 <= text.find(t) < duty.start() for t in terms)

    def _government_subject(self, text: str) -> bool:
        head = text[:SUBJECT_WINDOW]
        return bool(self.rules.government_subject.search(head)) and not any(s in head for s in ("学校", "幼儿园"))

    @staticmethod
    def _government_item(chunk: Chunk, span: tuple[int, int]) -> bool:
        """An item (「指导学校……；」) of a list of duties that a government body's lead-in introduced."""
        if span[0] == 0:
            return False
        lead = chunk.text[: span[0]]
        colon = max(lead.rfind("："), lead.rfind(":"))
        return colon >= 0 and bool(_GOVERNMENT.search(lead[:colon]) or "部门" in lead[:colon])

    def _repeats_facts(self, text: str) -> bool:
        return any(text[i : i + SHINGLE] in self._fact_shingles for i in range(len(text) - SHINGLE + 1))


def quote_span(chunk: Chunk, sentence: tuple[int, int]) -> tuple[int, int]:
    """The sentence without its article number or list marker, widened past a lead-in ending in 「：」,
    and cut at a comma when very long. Offsets into ``chunk.text``."""
    text = chunk.text
    start, end = sentence
    lead = _LEAD.match(text, start, end)
    if lead and lead.end() < end:
        start = lead.end()
    if text[start:end].rstrip().endswith(("：", ":")):
        following = [s for s in sentence_spans(text) if s[0] >= end]
        if following and following[0][1] - start <= MAX_QUOTE_CHARS and "\n" not in text[end : following[0][0]]:
            end = following[0][1]
    if end - start > MAX_QUOTE_CHARS:
        cut = text.rfind("，", start, start + MAX_QUOTE_CHARS)
        end = cut if cut > start + 40 else start + MAX_QUOTE_CHARS
    return start, end
