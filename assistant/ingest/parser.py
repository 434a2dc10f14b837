"""One-pass recogniser of the heading hierarchy in Chinese policy text.

Legal divisions (编/分编/章/节/条) have fixed depths. Outline numbering (一、 /（一）/ 1、 /（1）/ ①) and
Markdown headings take their depth from the order in which styles appear, the way a word processor's
outline does. Inside an article, numbered lines are its 款/项 and do not start new units; in running
text, references such as 「依照本法第二十条」 never do, because only a line's start is examined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.types import Section, Unit

_CN = "零〇一二三四五六七八九十百千万两"
_NUM = rf"(?:[{_CN}]+|[0-9]+)"

_LEGAL = {
    "book": (1, re.compile(rf"^第{_NUM}编(?=\s|$)")),
    "subbook": (2, re.compile(rf"^第{_NUM}分编(?=\s|$)")),
    "chapter": (3, re.compile(rf"^第{_NUM}章(?=\s|$)")),
    "section": (4, re.compile(rf"^第{_NUM}节(?=\s|$)")),
}
# An article heading, 「第十五条」 or 「第十五条之一」 (retrieval reads section paths with it too).
ARTICLE_HEADING = re.compile(rf"^第({_NUM})条(?:之({_NUM}))?")
ARTICLE_LEVEL = 5
_OUTLINE = (
    ("cn", re.compile(rf"^[{_CN}]+[、．]")),
    ("paren_cn", re.compile(rf"^[（(][{_CN}]+[）)]")),
    ("arabic", re.compile(r"^[0-9]{1,3}(?:[、．]|\.(?![0-9]))")),
    ("paren_arabic", re.compile(r"^[（(][0-9]{1,3}[）)]")),
    ("circled", re.compile(r"^[①-⑳]")),
)
_MD = re.compile(r"^(#{1,6})\s+(.*)$")
_COMMENT = re.compile(r"^<!--.*-->$")
# Titles of documents bound into one file, e.g. 「校长一岗双责述职报告1」.
_DOC_TITLE = re.compile(
    r"^[^\s，。；：,;:！？]{2,40}?(?:述职报告|报告|范文|条例|规定|办法|细则|通知|意见|方案|制度|机制|决定|法)[0-9一二三四五六七八九十]{0,3}$"
)
# Characters after 「第X条」 that mean the line is running text citing an article, not the article itself.
_NOT_ARTICLE_FOLLOWERS = set("第、，,的规至和或及款项中所之以")
TITLE_MAX = 40


def chinese_to_int(text: str) -> int:
    """第一千零二 → 1002; also accepts Arabic digits."""
    if text.isdigit():
        return int(text)
    digits = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
    units = {"十": 10, "百": 100, "千": 1000, "万": 10000}
    total, section, number = 0, 0, 0
    for ch in text:
        if ch in digits:
            number = digits[ch]
        elif ch in units:
            unit = units[ch]
            if unit == 10000:
                section = (section + number) * unit
                total += section
                section = 0
            else:
                section += (number or 1) * unit
            number = 0
    return total + section + number


@dataclass(slots=True)
class Structure:
    sections: list[Section] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    markup: list[tuple[int, int]] = field(default_factory=list)  # spans that are neither content nor heading
    title: str = ""


@dataclass(slots=True)
class _Open:
    level: int
    style: str
    label: str


@dataclass(slots=True)
class _Block:
    path: tuple[str, ...]
    start: int
    end: int
    kind: str
    top: str


def _lines(text: str):
    pos = 0
    for raw in text.split("\n"):
        yield pos, pos + len(raw), raw
        pos += len(raw) + 1


# Zero-width characters that web copies of laws leave on otherwise empty lines.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
# A chapter title whose 「第X章」 was lost (web copies print 「法律责任」 alone between two articles): short,
# no punctuation, and not an outline item.
_BARE_CHAPTER = re.compile(r"^[\u4e00-\u9fff][\u4e00-\u9fff ]{1,14}$")


def _bare_chapter(body: str, next_line: str, last_article: int) -> bool:
    """True for a line that titles the next chapter although it carries no 「第X章」: a short title alone
    between the end of one article and the heading of the next one in sequence."""
    if not _BARE_CHAPTER.match(body) or body.startswith("第"):
        return False
    following = ARTICLE_HEADING.match(next_line)
    return bool(following) and chinese_to_int(following.group(1)) == last_article + 1 and _starts_article(
        next_line, following, last_article)


def _is_title_like(body: str) -> bool:
    return len(body) <= TITLE_MAX and not re.search(r"[。；;！？]", body)


def parse_structure(text: str) -> Structure:
    """Recognise headings and cut ``text`` into leaf units with heading paths and exact spans."""
    result = Structure()
    stack: list[_Open] = []
    outline_order: list[str] = []  # styles in order of first appearance under the current legal parent
    blocks: list[_Block] = []
    current: _Block | None = None
    in_article = False
    last_article = 0
    seen_heading = False

    def path() -> tuple[str, ...]:
        return tuple(item.label for item in stack)

    def top() -> str:
        for item in stack:
            if item.style in {"title", "chapter", "book", "subbook"}:
                return item.label
        return ""

    def close() -> None:
        nonlocal current
        if current is not None:
            blocks.append(current)
            current = None

    def push(level: int, style: str, label: str) -> None:
        while stack and stack[-1].level >= level:
            stack.pop()
        stack.append(_Open(level, style, label))

    def push_outline(style: str, label: str) -> None:
        base = max((item.level for item in stack if item.style in _LEGAL_STYLES or item.style == "title"), default=0)
        if style in outline_order:
            depth = outline_order.index(style)
            del outline_order[depth + 1 :]
        else:
            outline_order.append(style)
            depth = len(outline_order) - 1
        push(max(base, ARTICLE_LEVEL) + 1 + depth, style, label)

    lines = list(_lines(text))
    # The next line with visible text after each line, for headings recognised by what follows them.
    following = [""] * len(lines)
    upcoming = ""
    for i in range(len(lines) - 1, -1, -1):
        following[i] = upcoming
        visible = lines[i][2].strip().strip(_INVISIBLE).strip()
        if visible:
            upcoming = visible
    for i, (start, end, raw) in enumerate(lines):
        stripped = raw.strip()
        if not stripped.strip(_INVISIBLE).strip():
            continue
        lead = start + (len(raw) - len(raw.lstrip()))
        if _COMMENT.match(stripped):
            close()
            result.markup.append((lead, end))
            continue

        md = _MD.match(stripped)
        body = md.group(2).strip() if md else stripped

        legal = next(((style, lvl) for style, (lvl, rx) in _LEGAL.items() if rx.match(body)), None)
        if legal and _is_title_like(body):
            style, level = legal
            close()
            push(level, style, re.sub(r"\s+", " ", body))
            outline_order.clear()
            in_article = False
            seen_heading = True
            result.sections.append(Section(level, style, stack[-1].label, lead, end))
            continue

        if in_article and not md and _bare_chapter(body, following[i], last_article):
            close()
            label = re.sub(r"\s+", " ", body)
            push(_LEGAL["chapter"][0], "chapter", label)
            outline_order.clear()
            in_article = False
            result.sections.append(Section(_LEGAL["chapter"][0], "chapter", label, lead, end))
            continue

        article = ARTICLE_HEADING.match(body) if not md else None
        if article and _starts_article(body, article, last_article):
            close()
            number = chinese_to_int(article.group(1))
            last_article = number
            push(ARTICLE_LEVEL, "article", article.group(0))
            outline_order.clear()
            in_article = True
            seen_heading = True
            result.sections.append(Section(ARTICLE_LEVEL, "article", article.group(0), lead, lead + article.end()))
            current = _Block(path(), lead, end, "article", top())
            continue

        if md:
            close()
            level_hashes = len(md.group(1))
            if not seen_heading and level_hashes == 1 and not result.title:
                result.title = body
                result.sections.append(Section(0, "title", body, lead, end))
                seen_heading = True
                continue
            in_article = False
            stack[:] = [s for s in stack if s.style != "title" or level_hashes > 1]
            push_outline(f"md{level_hashes}", body)
            result.sections.append(Section(stack[-1].level, stack[-1].style, body, lead, end))
            continue

        if not in_article and _DOC_TITLE.match(stripped) and not any(rx.match(stripped) for _, rx in _OUTLINE):
            close()
            if not seen_heading and not result.title:
                result.title = stripped
                result.sections.append(Section(0, "title", stripped, lead, end))
                seen_heading = True
                continue
            stack.clear()
            outline_order.clear()
            stack.append(_Open(0, "title", stripped))
            last_article = 0
            seen_heading = True
            result.sections.append(Section(0, "title", stripped, lead, end))
            continue

        outline = next((style for style, rx in _OUTLINE if rx.match(stripped)), None)
        if in_article and not (outline == "cn" and _is_title_like(stripped)):
            outline = None  # inside an article, numbered lines are its 款/项; only a 「一、标题」 line ends it
        if outline:
            close()
            in_article = False
            while stack and stack[-1].style == "article":
                stack.pop()
            marker = _OUTLINE_DICT[outline].match(stripped).group(0)  # type: ignore[union-attr]
            label = stripped if _is_title_like(stripped) else marker
            push_outline(outline, label)
            seen_heading = True
            if _is_title_like(stripped):
                # A heading line on its own: the text under it, if any, joins it in one block.
                result.sections.append(Section(stack[-1].level, outline, label, lead, end))
                current = _Block(path(), lead, end, "block", top())
                current.kind = "heading"
            else:
                result.sections.append(Section(stack[-1].level, outline, label, lead, lead + len(marker)))
                current = _Block(path(), lead, end, "block", top())
            continue

        # Plain paragraph: continues the open block, or opens one under the current heading.
        if current is None:
            current = _Block(path(), lead, end, "block" if stack else "preamble", top())
        else:
            if current.kind == "heading":
                current.kind = "block"
            current.end = end
    close()

    for block in blocks:
        if block.kind == "heading":
            continue  # a bare heading line: recorded in sections, carries no content of its own
        result.units.append(Unit(block.path, block.start, block.end, block.kind, block.top))
    return result


_LEGAL_STYLES = set(_LEGAL) | {"article"}
_OUTLINE_DICT = dict(_OUTLINE)


def _starts_article(body: str, match: re.Match[str], last_article: int) -> bool:
    rest = body[match.end() :]
    if not rest or rest[0].isspace():
        return True
    if rest[0] in _NOT_ARTICLE_FOLLOWERS:
        return False
    # 「第十条为了……」 without a space: accept only when it is the next article in sequence.
    return chinese_to_int(match.group(1)) == last_article + 1
