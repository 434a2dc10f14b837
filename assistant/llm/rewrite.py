"""Follow-up questions rewritten into standalone queries by the model, before retrieval."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.errors import LLMError
from assistant.llm.model import ChatClient
from assistant.prompts import render

MAX_HISTORY = 6
_LABEL = re.compile(r"^\S{0,10}问题[：:]\s*")  # a label the model may echo from the prompt
_WRAPPERS = "「」“”\"'《》 "


def rewrite_follow_up(client: ChatClient, question: str, history: Sequence[str]) -> str:
    """The standalone form of ``question`` given the earlier (standalone) questions.

    Raises:
        LLMError: the model failed or its reply is not a usable single question.
    """
    messages = [
        ("system", render("llm", "rewrite_system")),
        ("user", render("llm", "rewrite", history=list(history)[-MAX_HISTORY:], question=question)),
    ]
    reply = client.complete(messages)
    line = next((ln.strip() for ln in reply.splitlines() if ln.strip()), "")
    line = _LABEL.sub("", line).strip(_WRAPPERS)
    if not line or len(line) > max(200, 4 * len(question)):
        raise LLMError(f"the language model's rewrite of the follow-up is unusable: {reply[:80]!r}")
    return line
