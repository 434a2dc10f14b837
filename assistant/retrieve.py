"""Hybrid retrieval: BM25 (words + character bigrams) and dense vectors, fused by reciprocal rank,
re-scored on the best-matching sentence inside each article, deduplicated by article."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from assistant.bm25 import BM25Index, idf_of
from assistant.errors import RetrievalError
from assistant.grounding import topic_coverage
from assistant.index import KnowledgeBase
from assistant.ingest.parser import ARTICLE_HEADING
from assistant.text import (
    bm25_tokens,
    content_words,
    in_legal_terms,
    join_phrases,
    named_places,
    normalize_query,
    place_of_title,
    provinces_named,
    question_fillers,
    sentence_spans,
    thesaurus,
)
from assistant.types import Chunk, Hit

# What each role is called in the policy texts: (specific terms, broader terms that also cover the role).
ROLE_VOCAB: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "教师": (("教师", "教职工", "教职员工"), ("工作人员",)),
    "班主任": (("班主任",), ("教师", "教职员工", "教职工")),
    "分管副校长": (("分管副校长", "分管负责人", "分管领导", "分管"), ("班子成员", "其他负责人", "负责人")),
    "校长": (("校长", "主要负责人", "法定代表人", "第一责任人"), ("负责人", "园长")),
    "教育局": (("教育行政部门", "教育主管部门", "教育局"), ("人民政府",)),
    "家长": (("父母", "监护人", "家长"), ("家庭",)),
}
ROLE_TERMS: dict[str, tuple[str, ...]] = {role: specific + broad for role, (specific, broad) in ROLE_VOCAB.items()}
SAFETY_WORDS = ("安全", "伤害", "事故", "欺凌", "保护", "隐患", "应急", "消防", "防范", "危险", "救助", "报告", "疏散", "侵害")
ROLE_ALIASES = {"老师": "教师", "副校长": "分管副校长", "分管校长": "分管副校长", "一把手": "校长", "教育行政部门": "教育局", "监护人": "家长"}
# Questions about one's own duties in general (「我的安全职责是什么」), as opposed to a specific situation.
ROLE_QUESTION = re.compile(
    r"(我|我们|咱|本人|作为|当).{0,12}(职责|责任|义务|要做|该做|应当做|需要做|干什么|做什么|管什么|管哪些"
    r"|[负担](哪些|什么|多大)的?责|负责(哪些|什么))|(职责|责任)(有哪些|是什么|包括)"
)
# In a question about one's own duties these words only say "duty" (「我要负哪些责」), like 职责 itself.
DUTY_QUESTION_WORDS = frozenset({"安全", "职责", "责任", "负", "责", "负责", "担", "担责"})
DUTY_WORDS = ("职责", "责任", "应当", "负责", "义务")
# 要 as "must" (「各校要严格落实」), not inside 主要、重要、只要、要求、要点…
_MUST = re.compile(r"(?<![主重只摘纲提])要(?![求点素闻害])")
QUERY_CACHE_SIZE = 512
# One thread for primary-model query encodings; the engines serialise their calls anyway.
_ENCODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duty-query-encoder")
# Questions about what happens to someone who breaks a rule (fines, sanctions, liability).
# 罚 that is the asker disciplining a pupil (「罚他站」「罚站」「体罚」) asks what is allowed, not about sanctions.
CONSEQUENCE_QUESTION = re.compile(
    r"(?<!体)罚(?![他她站抄跑写]|学生|孩子)|处分|处理|后果|追究|责任|担责|违法|违反|拘留|吊销|坐牢|判刑|赔"
)
# Questions that ask for the items of something (「要履行哪些义务」), or for "what X" (「需要什么条件」),
# which an article answers with a list when it lists X.
LIST_QUESTION = re.compile(r"哪些|哪几")
WHAT_QUESTION = re.compile(r"什么|啥")
# What a "which ones" question asks the items of (「要履行哪些义务」 → 义务), and what a "what X" question
# asks about (「靠什么机制」 → 机制).
_ASKED_ITEMS = re.compile(r"(?:哪些|哪几[项个类种条点样]?)([\u4e00-\u9fff]{2})")
_ASKED_WHAT = re.compile(r"什么([\u4e00-\u9fff]{2})")
# Questions asking what a term means (「一岗双责是什么意思」), and how texts define one (「本法所称…是指」).
DEFINITION_QUESTION = re.compile(r"^什么是|是什么意思|什么意思|啥意思|指的是什么|是指什么|什么叫|何为|何谓|的含义|含义是|的定义|定义是|怎么理解|的内涵")
_DEFINES = re.compile(r"是指|所称|[，,：:]指|指的是|系指")
# Questions about a time limit or a frequency (「多少天内」「多久一次」), which a sentence with a time span answers.
DURATION_QUESTION = re.compile(r"多久|多少天|几天|多长时间|多少日|几日|多少个?小时|几个?小时|多少个?月|几个月|多少年|几年|期限|时限|几次|多少次")
_DURATION = re.compile(
    r"[0-9零〇一二两三四五六七八九十百]+ ?个?(?:工作日|日|天|小时|周|星期|月|年|学期)(?:内|前|以内|之内|后|以上|起|之日)"
    r"|每(?:学期|学年|年|月|周|季度|天|日)"
)
# The lead of an enumeration, 「应当履行下列职责：」, with what it lists.
_LIST_LEAD = re.compile(r"下列([^。；：:，,]{0,12}?)(?:之一的?)?[：:]")
# Chapters that restate duties as sanctions (「违反本法规定，未……的，处……罚款」).
_PENALTY_CHAPTER = re.compile(r"法律责任|罚则|处罚")


# The national prefix a question leaves out (「按教师法」 for 中华人民共和国教师法).
_NATIONAL_PREFIX = "中华人民共和国"


@lru_cache(maxsize=4096)
def _short_title(title: str) -> str:
    """「中华人民共和国教师法」 → 「教师法」: how a question names a law."""
    return title.removeprefix(_NATIONAL_PREFIX)


def named_titles(question: str, titles: Iterable[str]) -> frozenset[str]:
    """The titles among ``titles`` that ``question`` names (in full or without the national prefix).

    When one named title is part of another (教育法 in 学前教育法), only the longer one counts.
    """
    found = {t for t in titles if len(_short_title(t)) >= 3 and _short_title(t) in question}
    return frozenset(t for t in found if not any(_short_title(t) in _short_title(o) for o in found if o != t))


def is_elsewhere(chunk: Chunk, question: str, region: str = "") -> bool:
    """A local regulation of a place that neither the question nor the school's region (「浙江省宁波市」) names,
    directly or through a city in it (a question about 青岛 is bound by 山东's regulation)."""
    if chunk.doc_kind != "local_regulation":
        return False
    place = place_of_title(chunk.doc_title)
    if place in question or (region and place in region):
        return False
    return place not in provinces_named(f"{question} {region}")


# Texts for kindergartens alone (学前教育法, 幼儿园管理条例) do not bind primary and secondary schools.
_KINDERGARTEN_TITLE = re.compile(r"幼儿园|学前")
_SCHOOLS_TITLE = re.compile(r"学校|小学|中学")
_SCHOOL_LEVEL = re.compile(r"初中|小学|中学|高中|中职|[一二三四五六]年级|中考|高考")
_KINDERGARTEN_WORDS = re.compile(r"幼儿|学前|托儿|入园|园长|保育")


def is_other_level(chunk: Chunk, question: str) -> bool:
    """A text for kindergartens alone, for a question about a primary or secondary school (「我是初中老师」)
    that does not also ask about kindergartens."""
    return (bool(_KINDERGARTEN_TITLE.search(chunk.doc_title)) and not _SCHOOLS_TITLE.search(chunk.doc_title)
            and bool(_SCHOOL_LEVEL.search(question)) and not _KINDERGARTEN_WORDS.search(question))


def only_elsewhere(question: str, chunks: Iterable[Chunk]) -> bool:
    """True when the question names a place and every one of ``chunks`` is a local regulation of somewhere else
    (:func:`is_elsewhere`): 深圳 is bound neither by 上海's rules nor by 山东's. The school's configured region
    does not count here, since the question names another place; a national text may answer anywhere."""
    chunks = list(chunks)
    return bool(chunks) and bool(named_places(question)) and all(is_elsewhere(c, question) for c in chunks)


def canonical_role(role: str | None) -> str | None:
    if not role:
        return None
    role = role.strip()
    role = ROLE_ALIASES.get(role, role)
    if role not in ROLE_TERMS:
        raise RetrievalError(f"unknown role {role!r}; use one of {', '.join(ROLE_TERMS)}")
    return role


@dataclass(frozen=True, slots=True)
class QueryPlan:
    question: str
    role: str | None
    words: tuple[str, ...]  # the asker's own content words
    expansions: tuple[str, ...]  # thesaurus and role terms
    is_role_question: bool = False
    role_words: tuple[str, ...] = ()  # words of the question that only say who is asking
    asks_consequence: bool = False  # about sanctions or liability, not about what to do
    asks_list: bool = False  # for the items of something (which duties, which steps)
    asks_what: bool = False  # 「什么…」: a list answers it only if it lists what was asked
    # ``words`` with the pieces of an everyday phrase from the thesaurus (「跟车老师」 → 跟/车/老师) joined
    # again, so that the sentence focus can credit the phrase's legal equivalent (随车照管人员)
    focus_words: tuple[str, ...] = ()
    asks_duration: bool = False  # for a time limit or how often (「多少天内」「多久一次」)
    asks_definition: bool = False  # what a term means (「一岗双责是什么意思」)
    # the question in the texts' own words (assistant.text.in_legal_terms), embedded beside the question as asked
    reworded: str = ""

    def sparse_tokens(self) -> tuple[list[str], dict[str, float]]:
        tokens = bm25_tokens(self.question)
        weights: dict[str, float] = {}
        # The asker's own name is context, except when the question is about that role's duties.
        topical = set(ROLE_VOCAB[self.role][0]) if self.is_role_question and self.role else set()
        for word in self.role_words:
            if word not in topical:
                for token in bm25_tokens(word):
                    weights[token] = 0.3
        for term in self.expansions:
            for token in bm25_tokens(term):
                if token not in tokens:
                    weights[token] = 0.35 if token.startswith("§") else 0.6
                    tokens.append(token)
        return tokens, weights

    def dense_text(self) -> str:
        """The embedding model reads the question as asked: it handles paraphrase itself, and appended
        thesaurus terms pull the vector toward neighbouring articles. The question reworded (``reworded``)
        is a second, separate query, where the everyday words are replaced rather than added to."""
        return self.question


def plan_query(question: str, role: str | None = None) -> QueryPlan:
    text = normalize_query(question)
    if not text:
        raise RetrievalError("the question is empty; type what you want to know, e.g. 班主任的安全职责是什么？")
    role = canonical_role(role)
    expansions: list[str] = []
    phrases: list[str] = []
    for key, terms in thesaurus().items():
        if key in text:
            phrases.append(key)
            expansions.extend(t for t in terms if t not in text)
    is_role_question = bool(ROLE_QUESTION.search(text))
    if role and (is_role_question or not any(t in text for t in ROLE_TERMS[role])):
        expansions.extend(t for t in ROLE_TERMS[role] if t not in text)
    if is_role_question:
        expansions.extend(t for t in ("安全", "职责") if t not in text)
    all_role_words = {w for terms in ROLE_TERMS.values() for w in terms} | set(ROLE_ALIASES)
    fillers = question_fillers()
    own = [w for w in content_words(text) if w not in fillers]
    role_words = tuple(w for w in own if w in all_role_words or w in {"学校", "老师", "校方"})
    if is_role_question:
        # 「作为初中教师，我的职责」: the duty words and the kind of school say who asks, not what about
        role_words += tuple(w for w in own if w in DUTY_QUESTION_WORDS or _SCHOOL_LEVEL.fullmatch(w))
    return QueryPlan(text, role, tuple(own), tuple(dict.fromkeys(expansions)), is_role_question, role_words,
                     bool(CONSEQUENCE_QUESTION.search(text)), bool(LIST_QUESTION.search(text)),
                     bool(WHAT_QUESTION.search(text)), tuple(join_phrases(own, phrases)),
                     bool(DURATION_QUESTION.search(text)), bool(DEFINITION_QUESTION.search(text)), in_legal_terms(text))


@dataclass(frozen=True, slots=True)
class Signals:
    """Evidence strength of the best hit, for the grounded decision."""

    sentence_coverage: float  # idf-weighted share of the asker's words in the best hit's best sentence
    topic_coverage: float = 1.0  # share of the question's topic words (nouns, verbs) found in the top passages


class RetrievalResult:
    """Hits of one question; the evidence signals are worked out only when asked for (``ask`` needs them,
    ``search`` does not, and part-of-speech tagging the question is one of the slower steps)."""

    __slots__ = ("plan", "hits", "_bm25", "_signals")

    def __init__(self, plan: QueryPlan, hits: list[Hit], bm25: BM25Index) -> None:
        self.plan, self.hits, self._bm25 = plan, hits, bm25
        self._signals: Signals | None = None

    @property
    def bm25(self) -> BM25Index:
        """The BM25 index the hits came from; its idf says how much a question word weighs."""
        return self._bm25

    @property
    def signals(self) -> Signals:
        if self._signals is None:
            top = [h.chunk.index_text() for h in self.hits[:3]]
            self._signals = Signals(
                sentence_coverage=self.hits[0].focus_score if self.hits else 0.0,
                topic_coverage=topic_coverage(self.plan.question, top, self.plan.role_words, self._bm25),
            )
        return self._signals


@dataclass(slots=True)
class RetrieverParams:
    """Fusion weights and depths, tuned on eval/dev.jsonl (see eval/README.md)."""

    depth: int = 100
    rrf_k: int = 10
    w_sparse: float = 1.0
    w_dense: float = 0.5  # whole-article vectors
    w_windows: float = 1.0  # best sentence inside the article, primary model
    w_aux: float = 0.5  # best sentence, second model
    w_focus: float = 1.0  # lexical coverage of the best sentence
    focus_depth: int = 50  # how deep into each list the sentence focus is scored
    superseded_penalty: float = 0.5
    # A local regulation binds only its own region: unless the question names a place, national texts come first.
    local_penalty: float = 0.8
    # Where the school is (DUTY_REGION): its own local regulations are not "elsewhere".
    region: str = ""
    # Sanction articles repeat the duties they punish, so they match "what must I do" questions word for word;
    # they come after the duties themselves unless the question asks about consequences.
    sanction_penalty: float = 0.8
    # A kindergarten text, for a question about a primary or secondary school (:func:`is_other_level`).
    level_penalty: float = 0.5
    # A question that names a law (「按教师法…」) wants that law: other texts come after it.
    unnamed_penalty: float = 0.8
    # A question about one's own duties wants the checklist, which is spread over several texts: each further
    # article of a document already ranked above it loses this factor once more.
    same_doc_decay: float = 0.9
    # A question asking "which ones" is best answered by an article that lists them.
    list_bonus: float = 1.3
    # A question asking "how long" or "how often" is answered by an article that states a time span.
    duration_bonus: float = 1.2
    # A question asking what a term means is answered by an article that defines terms.
    definition_bonus: float = 1.3
    # The question in the texts' own words, a second e5 query: its sentence ranking, and its article ranking
    # at half this weight (only when the thesaurus changed a word).
    w_reworded: float = 0.35


class HybridRetriever:
    """BM25 + dense + sentence focus, fused by reciprocal rank. ``mode`` restricts to one signal for tests."""

    def __init__(self, kb: KnowledgeBase, params: RetrieverParams | None = None, *, mode: str = "hybrid") -> None:
        if mode not in {"hybrid", "sparse", "dense"}:
            raise ValueError(f"unknown retrieval mode {mode!r}")
        self.kb = kb
        self.params = params or RetrieverParams()
        self.mode = mode
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._vectors_lock = threading.Lock()

    def forget_queries(self) -> None:
        """Drop remembered query embeddings (benchmarks time cold questions)."""
        with self._vectors_lock:
            self._vectors.clear()

    def _query_vector(self, embedder, text: str) -> np.ndarray:
        """Query embeddings, remembered for the most recent questions (asked again, or searched then asked)."""
        key = (embedder.name, text)
        with self._vectors_lock:
            if key in self._vectors:
                self._vectors.move_to_end(key)
                return self._vectors[key]
        vector = embedder.embed_query(text)
        with self._vectors_lock:
            self._vectors[key] = vector
            while len(self._vectors) > QUERY_CACHE_SIZE:
                self._vectors.popitem(last=False)
        return vector

    def search(self, question: str, *, k: int = 10, role: str | None = None) -> list[Hit]:
        return self.retrieve(question, k=k, role=role).hits

    def retrieve(self, question: str, *, k: int = 10, role: str | None = None) -> RetrievalResult:
        if k < 1 or k > 200:
            raise RetrievalError(f"k={k} is out of range; use 1–200")
        plan = plan_query(question, role)
        self.kb.refresh()
        p = self.params
        lists: list[tuple[float, list[str]]] = []
        dense_mode = self.mode in {"hybrid", "dense"}
        # The primary model's query encoding is the slowest step: it runs on its own thread (the engine
        # releases the GIL) while BM25, the second model's search and the reworded question's encoding run here.
        pending = _ENCODER.submit(self._query_vector, self.kb.embedder, plan.dense_text()) if dense_mode else None
        if self.mode in {"hybrid", "sparse"}:
            tokens, weights = plan.sparse_tokens()
            sparse = self.kb.bm25.search(tokens, p.depth, weights)
            lists.append((p.w_sparse, [cid for cid, _ in sparse]))
        aux: list[tuple[str, float]] = []
        if dense_mode and self.kb.aux_embedder is not None:
            aux = self.kb.window_search(self._query_vector(self.kb.aux_embedder, plan.dense_text()), p.depth, aux=True)
        reworded = None
        if self.mode == "hybrid" and p.w_reworded > 0 and plan.reworded != plan.question:
            reworded = self._query_vector(self.kb.embedder, plan.reworded)
        if pending is not None:
            vector = pending.result()
            dense = self.kb.dense_search(vector, p.depth)
            windows = self.kb.window_search(vector, p.depth)
            lists.append((p.w_dense if self.mode == "hybrid" else 1.0, [cid for cid, _ in dense]))
            lists.append((p.w_windows, [cid for cid, _ in windows]))
            if self.kb.aux_embedder is not None:
                lists.append((p.w_aux, [cid for cid, _ in aux]))
        if reworded is not None:
            lists.append((p.w_reworded, [cid for cid, _ in self.kb.window_search(reworded, p.depth)]))
            lists.append((p.w_reworded / 2, [cid for cid, _ in self.kb.dense_search(reworded, p.depth)]))
        # Sentence focus is scored only where it can still change the order: the head of each list.
        pool = list(dict.fromkeys(cid for _, ids in lists for cid in ids[: p.focus_depth]))
        idf = question_weights(self.kb, plan)
        focus = {cid: best_sentence(self.kb.chunks[cid], plan, idf) for cid in pool}
        if self.mode == "hybrid" and pool:
            by_focus = sorted(pool, key=lambda cid: -focus[cid][1])
            lists.append((p.w_focus, by_focus))
        named = named_titles(plan.question, self.kb.titles)
        fused: dict[str, float] = {}
        for weight, ids in lists:
            for rank, cid in enumerate(ids):
                fused[cid] = fused.get(cid, 0.0) + weight / (p.rrf_k + rank + 1)
        items_listed = asked_items_listed(plan, (self.kb.chunks[cid] for cid in fused))
        for cid in fused:
            chunk = self.kb.chunks[cid]
            if chunk.doc_id in self.kb.superseded:
                fused[cid] *= p.superseded_penalty
            if is_elsewhere(chunk, plan.question, p.region):
                fused[cid] *= p.local_penalty
            if is_other_level(chunk, plan.question):
                fused[cid] *= p.level_penalty
            fused[cid] *= topic_prior(plan, chunk, p, items_listed=items_listed)
            if named and chunk.doc_title not in named:
                fused[cid] *= p.unnamed_penalty
        ordered = sorted(fused, key=lambda cid: -fused[cid])
        articles: list[str] = []
        seen_articles: set[tuple[str, str]] = set()
        for cid in ordered:
            chunk = self.kb.chunks[cid]
            article = (chunk.doc_id, chunk.section)
            if article not in seen_articles:
                seen_articles.add(article)
                articles.append(cid)
        if plan.is_role_question and p.same_doc_decay < 1.0:
            fused.update(spread_documents(articles, fused, self.kb.chunks, p.same_doc_decay))
            articles.sort(key=lambda cid: -fused[cid])
        hits: list[Hit] = []
        for cid in articles:
            chunk = self.kb.chunks[cid]
            if cid not in focus:
                focus[cid] = best_sentence(chunk, plan, idf)
            span, focus_score = focus[cid]
            hits.append(Hit(chunk, round(fused[cid], 6), len(hits) + 1, span, round(focus_score, 4)))
            if len(hits) >= k:
                break
        return RetrievalResult(plan, hits, self.kb.bm25)


def spread_documents(articles: list[str], scores: dict[str, float], chunks: dict[str, Chunk], decay: float) -> dict[str, float]:
    """Scores of ``articles`` (best first) after the n-th article of each document loses ``decay ** (n - 1)``,
    so that a second document's best article can come before a first document's third."""
    seen: dict[str, int] = {}
    adjusted: dict[str, float] = {}
    for cid in articles:
        doc = chunks[cid].doc_id
        adjusted[cid] = scores[cid] * decay ** seen.get(doc, 0)
        seen[doc] = seen.get(doc, 0) + 1
    return adjusted


def asked_items(plan: QueryPlan) -> str | None:
    """What a "which ones" question asks the items of: 「要履行哪些义务」 → 义务; None when it does not say."""
    match = _ASKED_ITEMS.search(plan.question) if plan.asks_list else None
    return match.group(1) if match else None


def asked_items_listed(plan: QueryPlan, chunks: Iterable[Chunk]) -> bool:
    """True when some of ``chunks`` lists exactly what the question asks the items of."""
    items = asked_items(plan)
    return items is not None and any(items in listed_nouns(chunk.text) for chunk in chunks)


def topic_prior(plan: QueryPlan, chunk: Chunk, params: RetrieverParams, *, items_listed: bool = False) -> float:
    """Factor on an article's fused score from what kind of answer the question wants.

    ``items_listed``: a candidate article lists what the "which ones" question names (「哪些义务」 and
    「下列义务」), so a list of something else (「下列职责」) earns no bonus.
    """
    factor = 1.0
    if not plan.asks_consequence and is_penalty_article(chunk.section):
        factor *= params.sanction_penalty
    if plan.asks_list or plan.asks_what:
        listed = listed_nouns(chunk.text)
        if listed and ((plan.asks_list and not items_listed) or any(noun in plan.question for noun in listed)):
            factor *= params.list_bonus
        elif plan.asks_what and heading_names(chunk.section, asked_what(plan.question)):
            # 「靠什么机制」 and an article under the heading 「……协调机制」
            factor *= params.list_bonus
    if plan.asks_duration and states_duration(chunk.text):
        factor *= params.duration_bonus
    if plan.asks_definition and _DEFINES.search(chunk.text):
        factor *= params.definition_bonus
    return factor


@lru_cache(maxsize=4096)
def asked_what(question: str) -> str | None:
    """What a "what X" question asks about: 「平时靠什么机制一起商量」 → 机制; None when it does not say."""
    match = _ASKED_WHAT.search(question)
    return match.group(1) if match else None


@lru_cache(maxsize=65536)
def heading_names(section: str, noun: str | None) -> bool:
    """True when a heading of ``section`` other than a bare article number names ``noun``
    (「二、学校安全工作议事协调机制 > 2、」 names 机制; 「第一章 总则 > 第四条」 names only 总则)."""
    if not noun:
        return False
    return any(noun in part for part in section.split(" > ") if not ARTICLE_HEADING.match(part.strip()))


@lru_cache(maxsize=16384)
def states_duration(text: str) -> bool:
    """True for an article that states a time span or a frequency (「二十日前」「三个月内」「每学期」)."""
    return bool(_DURATION.search(text))


@lru_cache(maxsize=16384)
def listed_nouns(text: str) -> tuple[str, ...]:
    """What an article enumerates, by the last two characters of each list lead
    (「应当符合下列条件：」 → 条件; 「有下列情形之一的：」 → 情形); empty for an article without a list."""
    return tuple(dict.fromkeys(m.group(1)[-2:] for m in _LIST_LEAD.finditer(text) if len(m.group(1)) >= 2))


@lru_cache(maxsize=16384)
def is_penalty_article(section: str) -> bool:
    """True for articles in a 法律责任/罚则 chapter (judged by the top heading of the section path)."""
    return bool(_PENALTY_CHAPTER.search(section.split(" > ", 1)[0]))


def question_weights(kb: KnowledgeBase, plan: QueryPlan) -> dict[str, float]:
    """How much each of the asker's words (everyday phrases kept whole) matters: its idf, much less for words
    naming the asker, except the asker's own role in a question about that role's duties (as in
    :meth:`QueryPlan.sparse_tokens`)."""
    topical = set(ROLE_VOCAB[plan.role][0]) if plan.is_role_question and plan.role else set()
    return {w: idf_of(kb.bm25, w) * (0.25 if w in plan.role_words and w not in topical else 1.0)
            for w in plan.focus_words or plan.words}


def best_sentence(chunk: Chunk, plan: QueryPlan, idf: dict[str, float]) -> tuple[tuple[int, int] | None, float]:
    """The sentence of ``chunk`` that covers most of the question (idf-weighted), as offsets into chunk.text."""
    total = sum(idf.values())
    # A word absent from the whole article is absent from each of its sentences: check only the others.
    present = [(word, weight) for word, weight in idf.items() if weight > 0 and _match(word, chunk.text)]
    if total <= 0 or not present:
        return None, 0.0
    best: tuple[int, int] | None = None
    best_score = 0.0
    for start, end in _sentences_of(chunk.text):
        sentence = chunk.text[start:end]
        score = sum(weight * _match(word, sentence) for word, weight in present) / total
        if score > best_score:
            best, best_score = (start, end), score
    return best, best_score


@lru_cache(maxsize=65536)
def _sentences_of(text: str) -> tuple[tuple[int, int], ...]:
    """Sentence spans of a chunk's text, remembered: the same articles come back query after query."""
    return tuple(sentence_spans(text))


def _match(word: str, text: str) -> float:
    """1 when ``text`` has the word or a thesaurus equivalent, 0.5 when it has most of a long word's
    character pairs (a reworded compound), else 0."""
    if word in text or _expanded_match(word, text):
        return 1.0
    if len(word) > 2 and sum(word[i : i + 2] in text for i in range(len(word) - 1)) >= (len(word) - 1) * 0.6:
        return 0.5
    return 0.0


def _expanded_match(word: str, text: str) -> bool:
    terms = thesaurus().get(word)
    return bool(terms) and any(t in text for t in terms)


@dataclass(frozen=True, slots=True)
class DutyItem:
    chunk: Chunk
    span: tuple[int, int]  # sentence offsets in chunk.text
    score: float


# Named before the role, an authority or a duty word makes the role the object of someone else's duty.
_AUTHORITY = re.compile(r"政府|国务院|行政部门|主管部门|管理部门|有关部门|机关|委员会")
_OBJECT_CUE = re.compile(r"应当|必须|负责|职责|责任|义务|对")
_SANCTION = re.compile(r"罚款|处分|撤职|降级|开除|追究.{0,8}责任|吊销|拘留|追偿")
# A sentence that speaks of schools, pupils or their staff is a school duty, not one of any unit.
SCHOOL_WORDS = ("学校", "校园", "幼儿园", "学生", "校长", "园长", "教师", "教职", "班主任", "儿童", "未成年")


# What follows a role that the sentence makes its subject: 「教职员工应当」「班主任、辅导员应当」「主要负责人是」.
_SUBJECT_VERB = re.compile(r"[^，。；的]{0,8}?(?:应当|必须|负责|是|要|对)")


# A role term inside another word: 「确保学校长期稳定」 reads 学校 + 长期, not 校长 (but 「中学校长」 and 「校长期间」 are 校长).
_NOT_A_ROLE = {"校长": re.compile(r"(?<=学)校长(?=[期远效久足])")}


def _role_at(sentence: str, term: str) -> int:
    """Where ``term`` first stands in ``sentence`` as a word of its own, or -1."""
    at = sentence.find(term)
    false_match = _NOT_A_ROLE.get(term)
    while at >= 0 and false_match is not None and false_match.match(sentence, at):
        at = sentence.find(term, at + 1)
    return at


def _is_subject(sentence: str, found: dict[str, int]) -> bool:
    """True when a role term (at its position in ``found``) is what the sentence's duty is about
    (「教职员工应当」, not 「教师的平均工资水平应当」)."""
    return any(_SUBJECT_VERB.match(sentence, at + len(term)) for term, at in found.items())


def role_duties(
    kb: KnowledgeBase, role: str, question: str = "", *, region: str = "", limit: int = 12, per_doc: int = 4
) -> list[DutyItem]:
    """Sentences across all documents that lay a duty on ``role``: the checklist behind 「我的安全职责是什么」.

    Candidates come from BM25 on the role's names plus safety/duty words (and the question's own words);
    a sentence qualifies when it names the role (or a broader term covering it) together with a duty word,
    and is about safety unless it names the role specifically. Sanction articles (unless the question asks
    about consequences) and sentences whose duty falls on an authority named before the role are left out;
    sentences about schools rank higher, local regulations of a place neither the question nor ``region``
    names lower (as in retrieval).
    """
    specific, broad = ROLE_VOCAB[role]
    tokens: list[str] = []
    weights: dict[str, float] = {}
    for term in specific:
        for token in bm25_tokens(term):
            tokens.append(token)
            weights[token] = 2.0
    for term in (*broad, "安全", "职责", "应当", *content_words(question)):
        tokens.extend(bm25_tokens(term))
    ranked = kb.bm25.search(tokens, 150, weights)
    asks_consequence = bool(CONSEQUENCE_QUESTION.search(question))
    items: list[DutyItem] = []
    for rank, (cid, _) in enumerate(ranked):
        chunk = kb.chunks[cid]
        if chunk.doc_id in kb.superseded or (is_penalty_article(chunk.section) and not asks_consequence):
            continue  # a 法律责任 article restates a duty as its sanction; the checklist cites the duty
        if is_other_level(chunk, question):
            continue  # a kindergarten's duties are not a 初中 teacher's
        elsewhere = is_elsewhere(chunk, question, region)
        for start, end in sentence_spans(chunk.text):
            sentence = chunk.text[start:end]
            found = {t: at for t in specific + broad if (at := _role_at(sentence, t)) >= 0}  # where each role term stands
            has_specific = any(t in found for t in specific)
            has_broad = any(t in found for t in broad)
            has_duty = any(w in sentence for w in DUTY_WORDS) or bool(_MUST.search(sentence))
            has_safety = any(w in sentence for w in SAFETY_WORDS)
            if not has_duty or not (has_specific or (has_broad and has_safety)):
                continue
            before = sentence[: min(found.values())]
            if _OBJECT_CUE.search(before) or (role != "教育局" and _AUTHORITY.search(before)):
                continue  # 「部门可以对……法定代表人进行约谈」「学校应当对教职员工开展培训」: the duty is someone else's
            if _SANCTION.search(sentence) and not asks_consequence:
                continue
            score = (3.0 * has_specific + has_broad + has_safety + 1.0 / (1 + rank / 10)
                     + any(w in sentence for w in SCHOOL_WORDS) + _is_subject(sentence, found)
                     - 1.5 * elsewhere)
            items.append(DutyItem(chunk, (start, end), score))
    items.sort(key=lambda item: -item.score)
    chosen: list[DutyItem] = []
    per_doc_count: dict[str, int] = {}
    per_chunk: set[str] = set()
    for item in items:
        doc = item.chunk.doc_id
        if item.chunk.chunk_id in per_chunk or per_doc_count.get(doc, 0) >= per_doc:
            continue
        per_chunk.add(item.chunk.chunk_id)
        per_doc_count[doc] = per_doc_count.get(doc, 0) + 1
        chosen.append(item)
        if len(chosen) >= limit:
            break
    return chosen


def as_langchain_retriever(retriever: HybridRetriever, *, k: int = 8, role: str | None = None):
    """Wrap the hybrid retriever as a LangChain ``BaseRetriever`` for users who build their own chains."""
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    class DutyRetriever(BaseRetriever):
        """Hybrid BM25 + dense retrieval over the policy knowledge base."""

        def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
            return [
                Document(
                    page_content=h.chunk.text,
                    metadata={"doc_title": h.chunk.doc_title, "section": h.chunk.section, "source": h.chunk.source,
                              "start": h.chunk.start, "end": h.chunk.end, "chunk_id": h.chunk.chunk_id, "score": h.score},
                )
                for h in retriever.search(query, k=k, role=role)
            ]

    return DutyRetriever()
