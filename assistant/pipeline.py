"""The composition root: the one place that picks concrete classes from settings and wires them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Union

from assistant.answer import ExtractiveAnswerer, GroundedPolicy
from assistant.config import Settings
from assistant.embed import Embedder, build_aux_embedder, build_embedder
from assistant.errors import ConfigError, KnowledgeBaseError, RetrievalError
from assistant.index import IngestReport, KnowledgeBase, ProgressFn
from assistant.retrieve import HybridRetriever, RetrieverParams
from assistant.types import Answer, Hit

if TYPE_CHECKING:
    from assistant.chat import Conversation
    from assistant.draft import Drafter
    from assistant.llm import LLMAnswerer
    from assistant.llm.draft import LLMDrafter

WARM_UP_QUESTION = "班主任的安全职责是什么？"
StreamEvent = Union[tuple[Literal["delta"], str], tuple[Literal["final"], Answer]]  # noqa: UP007



def bundled_corpus_dir() -> Path:
    """The policy texts the product ships (``corpus/`` beside the package in a checkout)."""
    return Path(__file__).resolve().parent.parent / "corpus"


@dataclass
class Assistant:
    settings: Settings
    embedder: Embedder
    kb: KnowledgeBase
    retriever: HybridRetriever
    answerer: ExtractiveAnswerer
    llm: LLMAnswerer | None = None  # set when DUTY_LLM_BASE_URL and DUTY_LLM_MODEL are configured

    def search(self, query: str, *, k: int = 10, role: str | None = None) -> list[Hit]:
        self._check_question(query)
        return self.retriever.search(query, k=k, role=role)

    def warm_up(self) -> None:
        """Load what the first question would otherwise wait for (vector tables, tokenizer dictionaries, the
        models' first call), so a server's first user is answered as fast as the rest."""
        if not self.kb.is_empty:
            self.answerer.answer(WARM_UP_QUESTION)
            self.retriever.forget_queries()

    def _check_question(self, text: str) -> None:
        # The HTTP layer checks this too; the CLI and library callers are held to the same limit.
        limit = self.settings.max_question_chars
        if len(text.strip()) > limit:
            raise RetrievalError(f"the question has {len(text.strip())} characters; the limit is {limit} (DUTY_MAX_QUESTION_CHARS)")
        if any("\ud800" <= ch <= "\udfff" for ch in text):
            # Lone surrogates (a JSON "\ud800" escape, undecodable bytes on a command line) are not text.
            raise RetrievalError("the question contains invalid characters (unpaired UTF-16 surrogates); send valid UTF-8 text")

    def ask(self, question: str, *, role: str | None = None, mode: str | None = None) -> Answer:
        mode = mode or self.settings.mode
        self._check_question(question)
        if mode == "llm":
            return self._llm().answer(question, role=role)
        if mode != "extractive":
            raise ConfigError(f"mode {mode!r} is unknown; use extractive or llm")
        return self.answerer.answer(question, role=role)

    def ask_stream(self, question: str, *, role: str | None = None, mode: str | None = None) -> Iterator[StreamEvent]:
        """Yield the answer as it is produced: ``("delta", text)`` pieces, then one ``("final", Answer)``.

        Extractive answers are complete at once and are streamed line by line; an LLM answerer streams
        tokens, and its final event carries the verified citations.
        """
        self._check_question(question)
        if (mode or self.settings.mode) == "llm":
            yield from self._llm().stream(question, role=role)
            return
        answer = self.ask(question, role=role, mode=mode)
        for line in answer.answer.splitlines(keepends=True):
            yield ("delta", line)
        yield ("final", answer)

    def resolve(self, conversation: Conversation, text: str, *, mode: str | None = None) -> tuple[str, str | None]:
        """A follow-up as a standalone question and the role to answer for; in LLM mode the model rewrites
        it from the conversation's earlier questions, falling back to the heuristic ``Conversation.resolve``."""
        question, role = conversation.resolve(text)
        if (mode or self.settings.mode) == "llm" and conversation.turns:
            question = self._llm().standalone_question(text, [t.query for t in conversation.turns], fallback=question)
        return question, role

    def drafter(self, mode: str | None = None) -> Drafter | LLMDrafter:
        """The 述职报告 drafter: the template one, or in LLM mode one whose prose is verified the same way."""
        from assistant.draft import Drafter

        mode = mode or self.settings.mode
        if mode not in {"template", "extractive", "llm"}:
            raise ConfigError(f"draft mode {mode!r} is unknown; use template or llm")
        template = Drafter(self.kb, self.retriever)
        if mode != "llm":
            return template
        from assistant.llm.draft import LLMDrafter

        return LLMDrafter(self._llm().client, self.kb, template)

    def _llm(self) -> LLMAnswerer:
        if self.llm is None:
            from assistant.llm import require_llm_config

            require_llm_config(self.settings)
            raise ConfigError("LLM mode is not available in this assistant; build it with build_assistant(settings)")
        return self.llm

    def ingest(self, paths: list[Path], *, progress: ProgressFn | None = None) -> IngestReport:
        return self.kb.ingest(paths, progress=progress)

    def ensure_corpus(self, *, progress: ProgressFn | None = None) -> IngestReport | None:
        """On first use with an empty knowledge base, ingest the configured or bundled corpus."""
        if not self.kb.is_empty:
            return None
        corpus = self.settings.corpus_dir or bundled_corpus_dir()
        if not Path(corpus).is_dir():
            raise KnowledgeBaseError(f"the knowledge base at {self.kb.root} is empty and no corpus folder was found at {corpus}; run `duty ingest PATH...`")
        return self.kb.ingest([Path(corpus)], progress=progress)

    def close(self) -> None:
        self.kb.close()


def build_embedders(settings: Settings) -> tuple[Embedder, Embedder | None]:
    primary = build_embedder(settings)
    return primary, build_aux_embedder(settings, primary)


def kb_options(settings: Settings) -> dict:
    """The storage and ingest knobs of :class:`KnowledgeBase` taken from settings."""
    return {"chroma_url": settings.chroma_url, "chroma_prefix": settings.chroma_prefix, "bulk": settings.bulk,
            "bulk_vectors": settings.bulk_vectors, "commit_every": settings.commit_every,
            "exact_max": settings.exact_search_max}


def build_assistant(settings: Settings, *, embedder: Embedder | None = None) -> Assistant:
    if embedder is None:
        embedder, aux = build_embedders(settings)
    else:
        aux = build_aux_embedder(settings, embedder)
    kb = KnowledgeBase(settings.kb, embedder, aux, **kb_options(settings))
    params = RetrieverParams(depth=settings.candidate_depth, rrf_k=settings.rrf_k, region=settings.region.strip())
    retriever = HybridRetriever(kb, params)
    policy = GroundedPolicy()
    answerer = ExtractiveAnswerer(kb, retriever, policy=policy, top_k=settings.top_k)
    llm = None
    if settings.llm_base_url and settings.llm_model:
        from assistant.llm import build_llm_answerer

        llm = build_llm_answerer(settings, kb, retriever, answerer, policy=policy)
    return Assistant(settings, embedder, kb, retriever, answerer, llm)
