"""The user's facts: cleaned of characters that would corrupt a document, split one per line or sentence,
and sorted under the section they belong to. The text of a fact is never changed."""

from __future__ import annotations

import re
import unicodedata

from assistant.draft.model import SECTION_KEYS, Fact
from assistant.draft.rules import Rules, load_rules

# Bullet and numbering markers in front of a line: 「- 」「• 」「1、」「2. 」「（3）」「④」「一、」「（二）」.
# 「3.5万元」 is a number and 「**重点**」 emphasis, not bullets: ASCII bullets need a space after them.
_BULLET = re.compile(
    r"^(?:[-*+]\s+|[•·●○▪■◆◇]\s*|\d{1,3}(?:[.．](?!\d)|[、)）])\s*|[（(]\d{1,3}[)）]\s*|[①-⑳]\s*"
    r"|[一二三四五六七八九十]{1,3}、\s*|[（(][一二三四五六七八九十]{1,3}[)）]\s*)"
)
_SENTENCE = re.compile(r".+?(?:[。！？；!?;]+[”’」』）)】]*|$)")
_HEADING_MARK = re.compile(r"^#{1,6}\s+")
_COLON = "：:"
_BIDI = {*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C}


def clean_text(text: str) -> tuple[str, int]:
    """Drop characters that are invalid in XML or invisible controls; returns (text, how many were dropped).

    Keeps newlines and tabs. Drops C0/C1 controls, lone surrogates, noncharacters and bidi overrides.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = []
    dropped = 0
    for ch in text:
        code = ord(ch)
        if ch in "\n\t":
            kept.append(ch)
        elif (
            unicodedata.category(ch) in {"Cc", "Cs"}
            or code in _BIDI
            or (0xFDD0 <= code <= 0xFDEF)
            or (code & 0xFFFE) == 0xFFFE
        ):
            dropped += 1
        else:
            kept.append(ch)
    return "".join(kept), dropped


def clean_line(text: str) -> str:
    """A one-line field (unit name…): cleaned, whitespace collapsed."""
    cleaned, _ = clean_text(text)
    return re.sub(r"\s+", " ", cleaned).strip()


def split_facts(text: str, *, rules: Rules | None = None, section: str | None = None) -> list[Fact]:
    """One fact per bullet, line or sentence, each filed under a section.

    A line that is only a section label (「存在的问题：」) files the lines after it under that section; a line
    that starts with a label and a colon (「问题：监控覆盖不全」) is filed there itself. Otherwise the wording
    decides (see :func:`classify_fact`). With ``section`` given, every fact goes there.
    """
    rules = rules or load_rules()
    facts: list[Fact] = []
    seen: set[str] = set()
    current: str | None = None
    for raw in text.split("\n"):
        line = _BULLET.sub("", raw.strip()).strip()
        if not line:
            continue
        label = _label_only(line, rules)
        if label is not None:
            current = label
            continue
        forced, line = _label_prefix(line, rules)
        for match in _SENTENCE.finditer(line):
            sentence = match.group(0).strip()
            if not sentence or sentence in seen or not re.search(r"\w", sentence):
                continue
            seen.add(sentence)
            key = section or forced or current or classify_fact(sentence, rules)
            facts.append(Fact(sentence, key, len(facts)))
    return facts


def classify_fact(fact: str, rules: Rules | None = None) -> str:
    """Section of a fact from its wording: shortcomings → problems, intentions → plans, how one sees the
    duty → duties, anything else → work done. The earlier of a problem or plan marker wins."""
    rules = rules or load_rules()
    done = bool(rules.done_markers.search(fact))
    first: tuple[int, str] | None = None
    for key in ("problems", "plans"):
        for match in rules.fact_markers[key].finditer(fact):
            if done and match.group(0) in rules.weak_markers.get(key, ()):
                continue
            if first is None or match.start() < first[0]:
                first = (match.start(), key)
            break
    if first is not None:
        return first[1]
    if rules.fact_markers["duties"].search(fact) and not done:
        return "duties"
    return "work"


def facts_by_section(facts: list[Fact]) -> dict[str, list[Fact]]:
    grouped: dict[str, list[Fact]] = {key: [] for key in SECTION_KEYS}
    for fact in facts:
        grouped[fact.section].append(fact)
    return grouped


def _label_only(line: str, rules: Rules) -> str | None:
    body = _HEADING_MARK.sub("", line)
    body = _BULLET.sub("", body).rstrip(_COLON + " ").strip()
    for key, labels in rules.fact_labels.items():
        if body in labels:
            return key
    return None


def _label_prefix(line: str, rules: Rules) -> tuple[str | None, str]:
    for key, labels in rules.fact_labels.items():
        for label in sorted(labels, key=len, reverse=True):
            if line.startswith(label) and len(line) > len(label) + 1 and line[len(label)] in _COLON:
                return key, line[len(label) + 1 :].strip()
    return None, line
