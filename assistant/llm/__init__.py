"""LLM mode: any OpenAI-compatible chat model through LangChain, with every citation verified.

``build_llm_answerer`` is called by the composition root only when DUTY_LLM_BASE_URL and DUTY_LLM_MODEL
are set; importing this package does not import langchain-openai.
"""

from __future__ import annotations

from assistant.answer import ExtractiveAnswerer, GroundedPolicy
from assistant.config import Settings
from assistant.index import KnowledgeBase
from assistant.llm.answerer import LLMAnswerer
from assistant.llm.model import ChatClient, build_chat_model, require_llm_config
from assistant.llm.verify import CitationVerifier, Passage
from assistant.retrieve import HybridRetriever

__all__ = [
    "ChatClient", "CitationVerifier", "LLMAnswerer", "Passage", "build_chat_model", "build_llm_answerer", "require_llm_config",
]


def build_llm_answerer(settings: Settings, kb: KnowledgeBase, retriever: HybridRetriever, extractive: ExtractiveAnswerer, *,
                       policy: GroundedPolicy | None = None) -> LLMAnswerer:
    """The LLM answerer for the configured endpoint (no network until the first question).

    Raises:
        ConfigError: DUTY_LLM_BASE_URL or DUTY_LLM_MODEL is missing.
    """
    return LLMAnswerer(ChatClient(settings), kb, retriever, extractive, policy=policy, top_k=settings.top_k)
