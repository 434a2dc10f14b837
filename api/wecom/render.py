"""Plain-text rendering of answers for WeCom (``text`` messages render in WeCom and in the WeChat plugin)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from api.wecom.splitter import split_message
from assistant.types import Answer, Citation

__all__ = ["Reply", "compact_citation", "format_answer", "reply_for"]

_ARTICLE = re.compile(r"第[一二三四五六七八九十百千零〇两\d]+条(之[一二三四五六七八九十]+)?")
_MARKER = re.compile(r"\[(\d+)\]")
_MAX_SECTION_CHARS = 40


def compact_citation(citation: Citation) -> str:
    """``〔《文件》第X条〕``; sections without an article number keep their (shortened) heading path."""
    parts = [p.strip() for p in citation.section.split(">") if p.strip()]
    where = ""
    for i, part in enumerate(parts):
        match = _ARTICLE.search(part)
        if match:
            # The article plus any 款/项 below it, e.g. 第二十五条 (一).
            where = " ".join([match.group(0), *parts[i + 1 :]])
            break
    if not where:
        where = " ".join(parts)
        if len(where) > _MAX_SECTION_CHARS:
            where = "…" + where[-(_MAX_SECTION_CHARS - 1) :]
    return f"〔《{citation.doc_title}》{where}〕"


@dataclass(frozen=True, slots=True)
class Reply:
    """Text for a user, plus the source line of each ``[n]`` marker it may contain."""

    body: str
    sources: dict[int, str] = field(default_factory=dict)

    def footer(self, text: str) -> str:
        """The 出处 block for the markers that occur in ``text`` ("" when none)."""
        cited = sorted({int(n) for n in _MARKER.findall(text)} & self.sources.keys())
        if not cited:
            return ""
        return "\n\n出处：\n" + "\n".join(self.sources[n] for n in cited)

    def text(self) -> str:
        """The whole reply in one string."""
        body = self.body.strip("\n")
        return body + self.footer(body)

    def pieces(self, *, limit: int, max_pieces: int | None = None) -> list[str]:
        """Split into messages of at most ``limit`` bytes, each with the sources of its own markers."""
        return split_message(self.body, limit=limit, max_pieces=max_pieces, footer=self.footer)


def reply_for(answer: Answer) -> Reply:
    """The answer text with compact 〔《文件》第X条〕 source lines for its citations."""
    sources = {c.n: f"[{c.n}]{compact_citation(c)}" for c in answer.citations}
    return Reply(answer.answer.strip(), sources)


def format_answer(answer: Answer) -> str:
    """The answer text followed by one compact citation line per ``[n]`` marker."""
    return reply_for(answer).text()
