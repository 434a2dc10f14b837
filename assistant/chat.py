"""Conversations: the asker's role and recent turns, so that follow-ups such as 「那班主任呢？」 make sense."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.retrieve import ROLE_ALIASES, ROLE_TERMS
from assistant.types import Answer

_FOLLOW_UP = re.compile(r"^(那|那么|还有|如果是|要是|换成|假如是)?\s*(?P<core>.{1,12}?)\s*(呢|怎么办|怎么样|又如何)?[？?。！!]*$")
_ROLE_NAMES = sorted(set(ROLE_TERMS) | set(ROLE_ALIASES), key=len, reverse=True)


@dataclass
class Turn:
    question: str  # what the user typed
    query: str  # the standalone question that was answered
    grounded: bool


@dataclass
class Conversation:
    role: str | None = None
    turns: list[Turn] = field(default_factory=list)

    def resolve(self, text: str) -> tuple[str, str | None]:
        """Turn a follow-up into a standalone question; returns (question, role to answer for)."""
        text = text.strip()
        if not self.turns:
            return text, self.role
        previous = self.turns[-1].query
        match = _FOLLOW_UP.match(text)
        if not match or len(text) > 16 or not _is_elliptical(text):
            return text, self.role
        core = match.group("core")
        new_role = next((r for r in _ROLE_NAMES if r == core or core.endswith(r)), None)
        if new_role:
            role = ROLE_ALIASES.get(new_role, new_role)
            for old in _ROLE_NAMES:
                if old in previous:
                    return previous.replace(old, new_role, 1), role
            return f"{new_role}{previous}", role
        return f"{previous}（{core}）", self.role

    def record(self, text: str, query: str, answer: Answer) -> None:
        self.turns.append(Turn(text, query, answer.grounded))
        del self.turns[:-20]


def _is_elliptical(text: str) -> bool:
    return bool(re.search(r"(呢|那|还有|如果是|要是|换成)", text))
