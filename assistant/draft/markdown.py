"""Markdown rendering of a draft. The user's text is escaped so that markup in it stays literal text."""

from __future__ import annotations

import re

from assistant.draft.compose import quote_more, short_section
from assistant.draft.model import Draft
from assistant.prompts import render

# Characters that Markdown (CommonMark + GFM tables/strikethrough) or embedded HTML would interpret;
# a citation marker 「[3]」 is left as it is (it cannot start a link without a definition).
_SPECIAL = re.compile(r"([\\`*_<>|~#&]|\[(?!\d+\](?![(\[:])))")


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown/HTML syntax; a leading 「1.」「-」「+」 cannot start a list."""
    text = _SPECIAL.sub(r"\\\1", text)
    text = re.sub(r"^(\s*)([-+=])", r"\1\\\2", text, flags=re.M)
    return re.sub(r"^(\s*\d+)([.)])", r"\1\\\2", text, flags=re.M)


def to_markdown(draft: Draft, *, kind_of: dict[str, str] | None = None) -> str:
    """The draft as Markdown: title, sections with （一） sub-headings, then the numbered 依据 list.

    ``kind_of`` maps chunk ids to document kinds so that sample reports are labelled as such.
    """
    kind_of = kind_of or {}
    lines = [f"# {escape_markdown(draft.title)}", ""]
    for block in draft.preamble:
        lines += [escape_markdown(block.text), ""]
    for section in draft.sections:
        lines += [f"## {escape_markdown(section.heading)}", ""]
        for block in section.blocks:
            text = escape_markdown(block.text)
            if block.kind == "subheading":
                lines += [f"### {text}", ""]
            elif block.kind == "placeholder":
                lines += [f"*{text}*", ""]
            else:
                lines += [text, ""]
    for block in draft.closing:
        lines += [escape_markdown(block.text), ""]
    citations = draft.citations
    if citations:
        lines += [f"## {escape_markdown(render('draft', 'basis_heading'))}", ""]
        for c in citations:
            note = render("draft", "basis_kind_sample") if kind_of.get(c.chunk_id) == "sample_report" else ""
            item = render("draft", "basis_item", n=c.n, title=c.doc_title, section=short_section(c.section), kind_note=note,
                          quote=c.quote, more=quote_more(c.quote), source=c.source)
            lines += [escape_markdown(item), ""]
    return "\n".join(lines).rstrip() + "\n"
