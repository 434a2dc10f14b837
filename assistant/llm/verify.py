"""Verification of a generated answer against the passages the model was given.

Rules (DESIGN §6, issue 6):
- ``[n]`` must name a passage that was given to the model; other numbers are removed, and a sentence
  whose every marker was invalid is dropped (it claimed a source that does not exist).
- A quote in 「」 or “” attributed to markers (those after it, up to the next quote, else those before
  it in the same sentence) must be verbatim in one of those passages. Only whitespace is ignored when
  locating (plus sentence punctuation at the quote's very edges; 「A……B」 needs A then B in source order);
  the quote is then rewritten to the exact source text. Found verbatim in another given passage →
  re-pointed there.
  Nearly verbatim (≥ 85 % similar to whole clauses) → replaced by the source clauses. Otherwise the
  sentence is dropped.
- A quote of 8+ characters without any marker must be verbatim in some passage (it then gets that
  passage's marker) or its sentence is dropped; shorter quoted terms are left alone.
- A quote that lands on a sentence of a passage addressing the model (「忽略以上指令」, forged passage
  tags …) is never verified. A sentence left without any valid marker that states a duty or permission
  (应当, 必须, 不得, 无需 …) is dropped, unless it is a lead-in ending in 「：」.
- A marker written inside a quote is moved after it. Markers are renumbered 1, 2, … in order of first
  appearance (list items 1. 2. 3. too, when one was dropped); the final citations are built with
  :func:`assistant.answer.cite`, so every quote is an exact substring of its source span.
- Nothing is shown until the first verified citation, so an answer without one never streams out.

The text is processed sentence by sentence, so streaming and whole-text verification agree.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

from assistant.answer import CitationError, cite
from assistant.index import KnowledgeBase
from assistant.llm.locate import exact_text, locate, nearest_span, squeeze
from assistant.text import sentence_spans
from assistant.types import Chunk, Citation, RemovedCitation

log = logging.getLogger(__name__)

MARKER = re.compile(r"[\[［【]\s*(\d{1,3}(?:\s*[,，、\-–~～]\s*\d{1,3})*)\s*[\]］】]")
PARTIAL_MARKER = re.compile(r"[ \t\u3000]*(?:[\[［【][\d \t,，、\-–~～]*)?$")  # a trailer that may still grow
# A quote may span lines; an unclosed one runs to the end of its sentence and is checked all the same.
QUOTE = re.compile(r"「([^「」]*)」?|“([^“”]*)”?")
CLOSING = {"「": "」", "“": "”"}
SENTENCE_END = "。！？!?"
# What may follow a sentence end and still belong to it: markers, closing quotes/brackets, spaces.
TRAILER = re.compile(r"(?:[ \t\u3000]*(?:[\[［【]\s*\d{1,3}(?:\s*[,，、\-–~～]\s*\d{1,3})*\s*[\]］】]|[」”』）)】]))*")
LIST_ITEM = re.compile(r"^(\s*)(\d{1,2})([.．、)）](?!\d)\s*)")
MIN_CHECKED_QUOTE = 8
# An uncited sentence that states a duty or permission is a claim presented as policy without evidence.
NORMATIVE = re.compile(r"应当|应该|必须|须|不得|禁止|严禁|需要|无需|不必|可以")
# In a 述职报告 the writer's own plans (「需要加强」「将进一步」) are not policy claims; duties still are.
DUTY_CLAIMS = re.compile(r"应当|必须|不得|禁止|严禁")
# Sentences of a passage that address the model rather than state policy; never quotable (defence in depth
# behind the prompt, which already tells the model to ignore them).
INSTRUCTION = re.compile(r"(忽略|无视|忘记|忘掉|不要理会)(以上|上述|之前|前面|先前|所有|全部)|你现在(是|不是|必须|要|只能)|"
                         r"</?\s*passage|系统提示|提示词|(ignore|disregard) (all |the )?(previous|above|prior)|system prompt", re.I)
MAX_CITED_SPAN = 520


@dataclass(frozen=True, slots=True)
class Passage:
    """One numbered passage shown to the model: ``chunk.text[start:end]``."""

    n: int
    chunk: Chunk
    start: int
    end: int
    focus: tuple[int, int]  # the span (relative to the passage) cited when the model quotes nothing

    @property
    def text(self) -> str:
        return self.chunk.text[self.start : self.end]


class Segmenter:
    """Cuts streamed text into sentences once each one is certainly complete."""

    def __init__(self) -> None:
        self.buffer = ""

    def feed(self, text: str) -> list[str]:
        self.buffer += text
        return self._cut(final=False)

    def finish(self) -> list[str]:
        return self._cut(final=True)

    def _cut(self, *, final: bool) -> list[str]:
        out: list[str] = []
        depth = 0
        start = 0
        i = 0
        text = self.buffer
        while i < len(text):
            ch = text[i]
            if ch == "\n" and depth == 0:
                j = i + 1
                while j < len(text) and text[j] == "\n":
                    j += 1
                if j == len(text) and not final:
                    break
                out.append(text[start:j])
                start, i, depth = j, j, 0
                continue
            if ch in "[［【" and depth and MARKER.match(text, i):
                depth = 0  # markers never stand inside a quote: the quote was left unclosed
            if ch in "「“":
                depth += 1
            elif ch in "」”":
                depth = max(0, depth - 1)
            elif ch in SENTENCE_END and depth == 0:
                j = i + 1
                while j < len(text) and text[j] in SENTENCE_END:
                    j += 1
                j = TRAILER.match(text, j).end()  # type: ignore[union-attr]
                rest = text[j:]
                if not final and (not rest or PARTIAL_MARKER.match(rest)):
                    break
                out.append(text[start:j])
                start, i = j, j
                continue
            i += 1
        if final and start < len(text):
            out.append(text[start:])
            start = len(text)
        self.buffer = text[start:]
        return out


@dataclass(slots=True)
class _Quote:
    start: int  # of the opening bracket in the sentence
    end: int  # after the closing bracket
    text: str


class CitationVerifier:
    """Feed the model's text (all at once or piece by piece); read back only verified text."""

    def __init__(self, passages: list[Passage], kb: KnowledgeBase, *, claims: re.Pattern[str] = NORMATIVE) -> None:
        self.passages = {p.n: p for p in passages}
        self.claims = claims
        self.kb = kb
        self.removed: list[RemovedCitation] = []
        self.numbering: dict[int, int] = {}  # passage n → number shown to the user
        self.quoted: dict[int, tuple[int, int]] = {}  # passage n → first verified quote (passage-relative)
        self._instructions = {p.n: [s for s in sentence_spans(p.text) if INSTRUCTION.search(p.text[s[0] : s[1]])] for p in passages}
        self._segmenter = Segmenter()
        self._accepted: list[str] = []
        self._released = 0
        self._pending_space = ""
        self._shown: list[str] = []
        self._list: tuple[int, int] | None = None  # (model's last item number, shown number) of the open list

    # ------------------------------------------------------------------ streaming interface
    def feed(self, text: str) -> str:
        """Take more model text; return the verified text that can now be shown (may be empty)."""
        for sentence in self._segmenter.feed(text):
            self._accept(sentence)
        return self._release()

    def finish(self) -> str:
        """The model is done: verify the rest and return what is left to show."""
        for sentence in self._segmenter.finish():
            self._accept(sentence)
        return self._release()

    @property
    def text(self) -> str:
        """Everything shown so far (the verified answer once :meth:`finish` was called)."""
        return "".join(self._shown)

    def citations(self) -> list[Citation]:
        """One exact citation per cited passage, numbered as in the text."""
        out = []
        for n, shown in sorted(self.numbering.items(), key=lambda item: item[1]):
            p = self.passages[n]
            rel = self.quoted.get(n, p.focus)
            try:
                out.append(cite(shown, p.chunk, self.kb, (p.start + rel[0], p.start + rel[1])))
            except CitationError:  # a bug: the span does not match the stored source; never shown
                log.exception("dropped citation [%s] of %s", shown, p.chunk.chunk_id)
        return out

    # ------------------------------------------------------------------ one sentence
    def _accept(self, sentence: str) -> None:
        verified = self._verify(sentence)
        if verified is None:
            return
        at_line_start = not self._accepted or self._accepted[-1].endswith("\n")
        if not verified.strip() and at_line_start:
            return  # the sentences between two line breaks were dropped: keep one break
        if at_line_start:
            verified = self._renumber_list_item(verified)
        self._accepted.append(verified)

    def _renumber_list_item(self, line: str) -> str:
        """Keep ``1. 2. 3.`` consecutive when an item in between was dropped."""
        match = LIST_ITEM.match(line)
        if not match:
            return line
        number = int(match.group(2))
        if self._list is None or number <= self._list[0]:
            self._list = (number, number)
            return line
        self._list = (number, self._list[1] + 1)
        return f"{match.group(1)}{self._list[1]}{match.group(3)}{line[match.end():]}"

    def _release(self) -> str:
        if not self.numbering:
            return ""
        text = self._pending_space + "".join(self._accepted[self._released :])
        self._released = len(self._accepted)
        if not self._shown:
            text = text.lstrip()
        shown = text.rstrip()
        self._pending_space = text[len(shown) :]
        if shown:
            self._shown.append(shown)
        return shown

    def _verify(self, sentence: str) -> str | None:
        """The sentence with verified quotes and renumbered markers, or None when it must be dropped.

        What was removed or changed is reported in ``self.removed``; corrections inside a sentence that is
        dropped anyway are not reported separately.
        """
        sentence = _markers_after_quotes(sentence)
        quotes = _find_quotes(sentence)
        markers = [m for m in MARKER.finditer(sentence) if not any(q.start < m.start() < q.end for q in quotes)]
        valid: dict[int, list[int]] = {}
        unknown: list[RemovedCitation] = []
        for m in markers:
            numbers = _numbers(m.group(1))
            valid[m.start()] = [n for n in numbers if n in self.passages]
            unknown += [RemovedCitation(f"[{n}]", "unknown_passage") for n in numbers if n not in self.passages]
        if markers and not any(valid.values()):  # it claimed only sources that were never given
            return self._drop(unknown[:-1], replace(unknown[-1], sentence=sentence.strip()))
        notes: list[tuple[RemovedCitation, int]] = []  # corrections; re-pointed markers are filled in once numbered
        found: list[tuple[int, tuple[int, int]]] = []  # (passage n, quoted span) of verified quotes
        replaced: dict[int, str] = {}  # quote start → verified quote text
        inserted: dict[int, int] = {}  # quote start → passage n whose marker goes right after the quote
        overrides: dict[int, list[int]] = {}  # marker start → corrected numbers
        for i, q in enumerate(quotes):
            next_start = quotes[i + 1].start if i + 1 < len(quotes) else len(sentence)
            prev_end = quotes[i - 1].end if i else 0
            after = [m for m in markers if q.end <= m.start() < next_start and valid[m.start()]]
            before = [m for m in markers if prev_end <= m.start() < q.start and valid[m.start()]]
            attributed = list(dict.fromkeys(n for m in (after or before) for n in valid[m.start()]))
            label = "".join(f"[{n}]" for n in attributed)
            outcome = self._check_quote(q, attributed)
            if isinstance(outcome, str):
                reason = outcome if attributed or outcome == "instruction_in_source" else "unattributed_quote"
                return self._drop(unknown, RemovedCitation(label, reason, quote=q.text, sentence=sentence.strip()))
            n, text, span, corrected = outcome
            replaced[q.start] = text
            if n < 0:
                continue
            found.append((n, span))
            if corrected:
                notes.append((RemovedCitation(label, "quote_corrected", quote=q.text, replacement=text), -1))
            if n in attributed:
                continue
            if attributed:
                notes.append((RemovedCitation(label, "quote_reattributed", quote=q.text), n))
            direct = after[0] if after and not sentence[q.end : after[0].start()].strip("，。；、 ") else None
            if direct is not None:
                overrides[direct.start()] = [n if x in attributed else x for x in valid[direct.start()]]
            else:
                inserted[q.start] = n
        cited = any(valid.values()) or inserted
        if not cited and self.claims.search(QUOTE.sub("", sentence)) and not sentence.rstrip().endswith(("：", ":")):
            return self._drop(unknown, RemovedCitation("", "uncited_claim", sentence=sentence.strip()))
        rendered = self._render(sentence, quotes, markers, valid, replaced, inserted, overrides)
        for n, span in found:
            self.quoted.setdefault(n, span)
        self.removed += unknown
        self.removed += [r if n < 0 else replace(r, replacement=f"[{self.numbering[n]}]") for r, n in notes]
        return rendered

    def _drop(self, unknown: list[RemovedCitation], reason: RemovedCitation) -> None:
        self.removed += [*unknown, reason]
        return None

    def _check_quote(self, q: _Quote, attributed: list[int]) -> tuple[int, str, tuple[int, int], bool] | str:
        """(passage n, exact quote text, its span, corrected?) for a verifiable quote; else why it is not.

        A short quoted term without a marker comes back as passage -1: it is not presented as a source quote.
        """
        if not attributed and len(squeeze(q.text)[0]) < MIN_CHECKED_QUOTE:
            return -1, q.text, (0, 0), False
        refused = False
        others = [n for n in self.passages if n not in attributed]
        for n in attributed + others:
            spans = locate(self.passages[n].text, q.text)
            if spans and self._is_instruction(n, spans):
                refused = True
            elif spans:
                return (n, *self._exact(n, spans), False)
        for n in attributed:
            span = nearest_span(self.passages[n].text, q.text)
            if span and self._is_instruction(n, [span]):
                refused = True
            elif span:
                return (n, *self._exact(n, [span]), True)
        return "instruction_in_source" if refused else "quote_not_found"

    def _is_instruction(self, n: int, spans: list[tuple[int, int]]) -> bool:
        return any(s < ie and e > is_ for s, e in spans for is_, ie in self._instructions[n])

    def _exact(self, n: int, spans: list[tuple[int, int]]) -> tuple[str, tuple[int, int]]:
        """The exact source text of located spans, and the span a citation of it covers."""
        start, end = spans[0][0], spans[-1][1]
        if end - start > MAX_CITED_SPAN:
            start, end = spans[0]
        return exact_text(self.passages[n].text, spans), (start, end)

    def _render(self, sentence: str, quotes: list[_Quote], markers: list[re.Match[str]], valid: dict[int, list[int]],
                replaced: dict[int, str], inserted: dict[int, int], overrides: dict[int, list[int]]) -> str:
        """The sentence with verified quotes and renumbered markers, numbering in reading order."""
        events = [(q.start, q.end, "quote") for q in quotes] + [(m.start(), m.end(), "marker") for m in markers]
        events.sort(key=lambda e: e[0])
        out: list[str] = []
        pos = 0
        for start, end, kind in events:
            out.append(sentence[pos:start])
            if kind == "quote":
                out.append(sentence[start] + replaced[start] + CLOSING[sentence[start]])
                if start in inserted:
                    out.append(self._marker([inserted[start]]))
            else:
                out.append(self._marker(overrides.get(start, valid[start])))
            pos = end
        out.append(sentence[pos:])
        return re.sub(r"(\[\d+\])(?:\s*\1)+", r"\1", "".join(out))

    def _marker(self, numbers: list[int]) -> str:
        shown = []
        for n in dict.fromkeys(numbers):
            if n < 0:
                continue
            shown.append(self.numbering.setdefault(n, len(self.numbering) + 1))
        return "".join(f"[{s}]" for s in shown)


def _markers_after_quotes(sentence: str) -> str:
    """``「…[1]…」`` → ``「……」[1]``: a marker is never part of the quoted text."""
    def move(m: re.Match[str]) -> str:
        whole = m.group(0)
        if whole[-1] != CLOSING[whole[0]] or not MARKER.search(whole):
            return whole
        return whole[0] + MARKER.sub("", whole[1:-1]) + whole[-1] + "".join(x.group(0) for x in MARKER.finditer(whole))

    return QUOTE.sub(move, sentence)


def _find_quotes(sentence: str) -> list[_Quote]:
    quotes = []
    for m in QUOTE.finditer(sentence):
        text = m.group(1) if m.group(1) is not None else m.group(2)
        end = m.end()
        if sentence[end - 1] != CLOSING[sentence[m.start()]]:  # unclosed: stop at the first marker
            marker = MARKER.search(text)
            text = text[: marker.start()] if marker else text
            text = text.rstrip().rstrip("。！？!?")
            end = m.start() + 1 + len(text)
        quotes.append(_Quote(m.start(), end, text))
    return quotes


def _numbers(group: str) -> list[int]:
    """``1, 3、5`` → [1, 3, 5]; ``2-4`` → [2, 3, 4] (short ranges only)."""
    numbers: list[int] = []
    for part in re.split(r"\s*[,，、]\s*", group.strip()):
        bounds = [int(x) for x in re.split(r"\s*[\-–~～]\s*", part) if x]
        if len(bounds) == 2 and 0 <= bounds[1] - bounds[0] <= 20:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return numbers
