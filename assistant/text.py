"""Chinese text handling: normalisation, sentence spans and the tokens BM25 indexes.

jieba runs on our own ``Tokenizer`` instance with the domain dictionary, never on the process-global one.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[0-9A-Za-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# A sentence ends at 。！？； (and their ASCII forms), optionally followed by closing quotes/brackets.
_SENTENCE_END = re.compile(r"[。！？；!?;]+[”’」』）)】]*|\n+")

_lock = threading.Lock()


def _data_text(name: str) -> str:
    return resources.files("assistant").joinpath("data", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    return frozenset(line.strip() for line in _data_text("stopwords.txt").splitlines() if line.strip())


@lru_cache(maxsize=1)
def question_fillers() -> frozenset[str]:
    """Spoken fillers of questions (到底、这块…): dropped from the asker's words, kept in the indexes."""
    return frozenset(line.strip() for line in _data_text("question_fillers.txt").splitlines() if line.strip())


@lru_cache(maxsize=1)
def places() -> dict[str, str]:
    """Provinces and large cities a question may name, each with the province it lies in
    (a province with itself; assistant/data/places.txt)."""
    table: dict[str, str] = {}
    for line in _data_text("places.txt").splitlines():
        parts = line.split("#", 1)[0].split()
        if parts:
            table[parts[0]] = parts[1] if len(parts) > 1 else parts[0]
    return table


_PLACE_PREFIX = re.compile(r"^(.{2,3}?)(?:省|市|自治区|特别行政区)")


@lru_cache(maxsize=4096)
def place_of_title(title: str) -> str:
    """「宁波市学校安全条例」 → 「宁波」: how a question would name the region a local regulation binds
    (the whole title when it names no place)."""
    match = _PLACE_PREFIX.match(title)
    return match.group(1) if match else title


@lru_cache(maxsize=1)
def _places_longest_first() -> tuple[str, ...]:
    return tuple(sorted(places(), key=len, reverse=True))


def named_places(text: str) -> list[str]:
    """The provinces and cities of assistant/data/places.txt that ``text`` names, except those inside a longer
    name it also names."""
    found = [place for place in _places_longest_first() if place in text]
    return [p for p in found if not any(p != other and p in other for other in found)]


@lru_cache(maxsize=4096)
def provinces_named(text: str) -> frozenset[str]:
    """The provinces of the places ``text`` names (山东 for 青岛; a province for itself)."""
    table = places()
    return frozenset(table[p] for p in named_places(text))


@lru_cache(maxsize=1)
def thesaurus() -> dict[str, tuple[str, ...]]:
    """Everyday school words → the terms the policy texts use (assistant/data/thesaurus.yaml)."""
    import yaml

    data = yaml.safe_load(_data_text("thesaurus.yaml"))
    return {str(k): tuple(str(v) for v in values) for k, values in data.items()}


@lru_cache(maxsize=1)
def _thesaurus_longest_first() -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted(thesaurus().items(), key=lambda item: -len(item[0])))


def in_legal_terms(question: str) -> str:
    """``question`` with each everyday word of the thesaurus replaced by the first of its legal terms that the
    question does not already use (跟车老师 → 随车照管人员, 一把手 → 主要负责人).

    Longer words win over the words inside them, and a word is replaced once where it stands; a word
    whose terms are all in the question already stays as it is. A question with no thesaurus word comes
    back unchanged.
    """
    taken: list[tuple[int, int, str]] = []
    for word, terms in _thesaurus_longest_first():
        fresh = next((t for t in terms if t != word and t not in question), None)
        at = question.find(word)
        while at >= 0:
            end = at + len(word)
            if not any(start < end and at < stop for start, stop, _ in taken):
                taken.append((at, end, fresh or word))
            at = question.find(word, end)
    parts: list[str] = []
    last = 0
    for start, stop, term in sorted(taken):
        parts += [question[last:start], term]
        last = stop
    return "".join(parts) + question[last:]


@lru_cache(maxsize=1)
def get_pos_tagger():
    """Part-of-speech tagging on our own jieba instance."""
    import jieba.posseg

    return jieba.posseg.POSTokenizer(get_jieba())


@lru_cache(maxsize=1)
def get_jieba():
    """Our own jieba tokenizer with the domain user dictionary (loaded once per process)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    with resources.as_file(resources.files("assistant").joinpath("data", "userdict.txt")) as path:
        tokenizer.load_userdict(str(path))
    with _lock:
        tokenizer.initialize()
    return tokenizer


def normalize_query(text: str) -> str:
    """Fold width variants (ＡＢＣ１２３ → ABC123) and collapse whitespace; used on queries only."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans of the sentences in ``text[start:end]``, trimmed of surrounding whitespace, in order."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for match in _SENTENCE_END.finditer(text, start, end):
        _append_trimmed(text, pos, match.end(), spans)
        pos = match.end()
    _append_trimmed(text, pos, end, spans)
    return spans


def _append_trimmed(text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start and _WORD.search(text, start, end):
        out.append((start, end))


def char_bigrams(text: str) -> list[str]:
    """Overlapping character bigrams over CJK runs: robust to words jieba splits differently."""
    grams: list[str] = []
    for run in _CJK.findall(text):
        grams.extend(run[i : i + 2] for i in range(len(run) - 1))
    return grams


def _clean(tokens: Iterable[str]) -> list[str]:
    stop = stopwords()
    cleaned = (token.strip().lower() for token in tokens)
    return [token for token in cleaned if token and token not in stop and _WORD.search(token)]


def words(text: str) -> list[str]:
    """jieba search-mode words (long words also as their parts) without punctuation and stopwords."""
    return _clean(get_jieba().cut_for_search(text))


def content_words(text: str) -> list[str]:
    """jieba precise-mode words without punctuation, stopwords or repeats: the question's own vocabulary."""
    return list(dict.fromkeys(_clean(get_jieba().cut(text))))


def bm25_tokens(text: str) -> list[str]:
    """What BM25 indexes: words, plus bigrams marked so they never collide with two-character words."""
    return words(text) + ["§" + g for g in char_bigrams(text)]


def join_phrases(words: list[str], phrases: Iterable[str]) -> list[str]:
    """``words`` with the pieces of each phrase joined back into the phrase where jieba split it
    (跟/车/老师 and the phrase 跟车老师 → 跟车老师).

    A piece is a word that occurs inside the phrase; the phrase takes the place of its first piece.
    A phrase that is one of the words already, or that holds none of them, changes nothing.
    """
    joined = list(words)
    for phrase in phrases:
        if phrase in joined:
            continue
        pieces = {w for w in joined if w in phrase}
        if not pieces:
            continue
        first = next(i for i, w in enumerate(joined) if w in pieces)
        joined = [w for w in joined[:first] if w not in pieces] + [phrase] + [w for w in joined[first:] if w not in pieces]
    return list(dict.fromkeys(joined))
