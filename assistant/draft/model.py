"""Values of a 述职报告 draft: request, blocks, sections, the draft itself, and its JSON shape (DESIGN §7)."""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.errors import RetrievalError
from assistant.schema import citation_to_json
from assistant.types import Citation

# The four parts of a report, in order: 一 履职基本情况 · 二 主要工作与成效 · 三 存在的问题与不足 · 四 下一步工作打算.
SECTION_KEYS = ("duties", "work", "problems", "plans")
DRAFT_ROLES = ("校长", "分管副校长", "班主任", "教师", "教育局")
MAX_FACTS_CHARS = 20_000
MAX_UNIT_CHARS = 60
YEAR_RANGE = (1990, 2100)


class DraftInputError(RetrievalError):
    """The draft request cannot be served as given (unknown role or section, facts too long…)."""


@dataclass(frozen=True, slots=True)
class DraftRequest:
    role: str
    unit: str
    year: int
    facts: str = ""
    section: str | None = None  # a section key or anything parse_section() accepts; None = all four


@dataclass(frozen=True, slots=True)
class Fact:
    """One fact of the user's, exactly as typed (bullet markers and section labels removed)."""

    text: str
    section: str  # a SECTION_KEYS entry
    ordinal: int  # position in the user's input


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph of a section. ``kind`` drives layout: subheading, lead, provision, fact, placeholder."""

    kind: str
    text: str
    cite: int | None = None  # citation number for provisions


@dataclass(frozen=True, slots=True)
class DraftSection:
    key: str
    heading: str
    blocks: tuple[Block, ...]
    citations: tuple[Citation, ...]
    facts: tuple[Fact, ...] = ()
    placeholders: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join(b.text for b in self.blocks)


@dataclass(frozen=True, slots=True)
class Draft:
    title: str
    role: str
    unit: str
    year: int
    sections: tuple[DraftSection, ...]
    preamble: tuple[Block, ...] = ()
    closing: tuple[Block, ...] = ()
    notices: tuple[str, ...] = ()
    mode: str = "template"
    facts: tuple[Fact, ...] = field(default=())

    @property
    def citations(self) -> tuple[Citation, ...]:
        """All citations, in number order."""
        seen: dict[int, Citation] = {}
        for section in self.sections:
            for c in section.citations:
                seen.setdefault(c.n, c)
        return tuple(seen[n] for n in sorted(seen))

    @property
    def text(self) -> str:
        """The whole draft as plain text (title, preamble, sections, closing), without the 依据 list."""
        parts = [self.title, *(b.text for b in self.preamble)]
        for section in self.sections:
            parts.extend([section.heading, section.text])
        parts.extend(b.text for b in self.closing)
        return "\n".join(parts)


def draft_to_json(draft: Draft, *, markdown: str | None = None) -> dict:
    """DESIGN §7 draft shape, plus the preamble, closing, notices and (optionally) the Markdown."""
    data: dict = {
        "title": draft.title,
        "role": draft.role,
        "unit": draft.unit,
        "year": draft.year,
        "mode": draft.mode,
        "preamble": "\n".join(b.text for b in draft.preamble),
        "sections": [
            {
                "key": s.key,
                "heading": s.heading,
                "text": s.text,
                "citations": [citation_to_json(c) for c in s.citations],
                "facts": [f.text for f in s.facts],
                "placeholders": list(s.placeholders),
            }
            for s in draft.sections
        ],
        "closing": "\n".join(b.text for b in draft.closing),
        "notices": list(draft.notices),
    }
    if markdown is not None:
        data["markdown"] = markdown
    return data
