"""Internal value types. Vendor objects (Chroma, LangChain) are converted to these where they enter."""

from __future__ import annotations

from dataclasses import dataclass, field

# Document kinds, from most to least binding.
DOC_KINDS = ("law", "regulation", "local_regulation", "bureau_document", "sample_report", "other")


@dataclass(frozen=True, slots=True)
class DocMeta:
    title: str
    kind: str = "other"
    issuer: str = ""
    doc_number: str = ""  # 文号, e.g. 莆教〔2015〕12号
    date: str = ""  # effective / issue date as written, ISO when known
    version: str = ""


@dataclass(frozen=True, slots=True)
class SourceDoc:
    """One ingested file: its normalised text is the reference every span and quote points into."""

    doc_id: str
    source: str  # file name as ingested
    path: str  # absolute path at ingest time
    sha256: str  # of the raw file bytes
    text: str
    meta: DocMeta
    encoding: str = "utf-8"


@dataclass(frozen=True, slots=True)
class Section:
    """A heading recognised by the structure parser."""

    level: int
    style: str  # part/book/chapter/section/article/cn/paren_cn/arabic/paren_arabic/circled/md/title
    label: str
    start: int  # span of the heading line (or of the article marker line) in SourceDoc.text
    end: int


@dataclass(frozen=True, slots=True)
class Unit:
    """A leaf block of text with its heading path, as produced by the parser."""

    path: tuple[str, ...]
    start: int
    end: int
    kind: str  # article / block / preamble
    top: str = ""  # the top-level division (章 or sub-document) the unit belongs to


@dataclass(frozen=True, slots=True)
class Chunk:
    chunk_id: str
    doc_id: str
    doc_title: str
    source: str
    section: str  # heading path joined by " > "
    text: str  # verbatim source span
    start: int
    end: int
    kind: str = "article"
    ordinal: int = 0  # position within the document
    doc_kind: str = "other"

    def index_text(self) -> str:
        """Text that is embedded and indexed: title and heading path give the article its context."""
        head = f"《{self.doc_title}》 {self.section}".strip()
        return f"{head}\n{self.text}"


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float
    rank: int
    # best-matching sentence inside the chunk, as offsets into chunk.text
    focus: tuple[int, int] | None = None
    focus_score: float = 0.0  # share of the question the focus sentence covers


@dataclass(frozen=True, slots=True)
class Citation:
    n: int
    chunk_id: str
    doc_title: str
    section: str
    quote: str
    source: str
    start: int  # span of the quote in the source document text
    end: int


@dataclass(frozen=True, slots=True)
class RemovedCitation:
    """A citation marker or quote written by the language model that failed verification (LLM mode)."""

    marker: str  # as the model wrote it, e.g. "[9]"; "" for a quote that had no marker
    # unknown_passage | quote_not_found | quote_corrected | quote_reattributed | unattributed_quote
    # | instruction_in_source | uncited_claim
    reason: str
    quote: str = ""  # the model's quoted text, when a quote was involved
    replacement: str = ""  # the verified text or marker put in its place, if any
    sentence: str = ""  # the sentence dropped from the answer, if any


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    answer: str
    grounded: bool
    mode: str
    citations: tuple[Citation, ...] = ()
    related: tuple[Hit, ...] = ()
    notices: tuple[str, ...] = field(default=())
    removed_citations: tuple[RemovedCitation, ...] = ()
