"""Word (.docx) export in the conventional look of Chinese official documents (after GB/T 9704-2012):
A4, 37/35/28/26 mm margins, title in 小标宋 (黑体 fallback), body 仿宋 三号 at a fixed 28 pt line pitch,
一、 headings in 黑体, （一） headings in 楷体, page numbers 「— 1 —」, and a numbered 「依据」 list."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from assistant.draft.compose import quote_more, short_section
from assistant.draft.model import Block, Draft
from assistant.prompts import render

# XML 1.0 forbids these; python-docx raises on them. The drafter already cleans user text; this guards
# every other string (document titles from the knowledge base, unit names) on the way into the file.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


@dataclass(frozen=True, slots=True)
class DocxStyle:
    """Fonts and sizes; the eastAsia names are what Word and WPS look for, ``*_alt`` the fallbacks."""

    title_font: str = "方正小标宋简体"
    title_font_alt: str = "黑体"
    body_font: str = "仿宋_GB2312"
    body_font_alt: str = "仿宋"
    heading_font: str = "黑体"
    subheading_font: str = "楷体_GB2312"
    subheading_font_alt: str = "楷体"
    latin_font: str = "Times New Roman"
    title_pt: float = 22.0  # 二号
    body_pt: float = 16.0  # 三号
    basis_pt: float = 14.0  # 四号
    line_pt: float = 28.0
    margins_mm: tuple[float, float, float, float] = (37.0, 35.0, 28.0, 26.0)  # top, bottom, left, right


def to_docx(draft: Draft, *, kind_of: dict[str, str] | None = None, style: DocxStyle | None = None) -> bytes:
    """The draft as .docx bytes. ``kind_of`` maps chunk ids to document kinds (sample reports are labelled)."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_COLOR_INDEX

    style = style or DocxStyle()
    kind_of = kind_of or {}
    doc = Document()
    _page_setup(doc, style)
    _base_styles(doc, style)
    _register_fallbacks(doc, style)
    doc.core_properties.title = _safe(draft.title)
    doc.core_properties.author = ""
    doc.core_properties.comments = ""

    title = doc.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    fmt = title.paragraph_format
    fmt.first_line_indent = 0
    fmt.space_after = _pt(style.line_pt)
    fmt.line_spacing = _pt(style.title_pt * 1.6)
    _run(title, draft.title, style.title_font, style.title_pt)

    for block in draft.preamble:
        _body(doc, block, style, WD_COLOR_INDEX)
    for section in draft.sections:
        heading = doc.add_paragraph()
        heading.paragraph_format.keep_with_next = True
        _run(heading, section.heading, style.heading_font, style.body_pt)
        for block in section.blocks:
            if block.kind == "subheading":
                sub = doc.add_paragraph()
                sub.paragraph_format.keep_with_next = True
                _run(sub, block.text, style.subheading_font, style.body_pt)
            else:
                _body(doc, block, style, WD_COLOR_INDEX)
    if draft.closing:
        doc.add_paragraph()
    for block in draft.closing:
        p = doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        p.paragraph_format.first_line_indent = 0
        _run(p, block.text, style.body_font, style.body_pt)

    citations = draft.citations
    if citations:
        head = doc.add_paragraph()
        head.paragraph_format.space_before = _pt(style.line_pt)
        head.paragraph_format.keep_with_next = True
        head.paragraph_format.first_line_indent = 0
        _run(head, render("draft", "basis_heading"), style.heading_font, style.body_pt)
        for c in citations:
            note = render("draft", "basis_kind_sample") if kind_of.get(c.chunk_id) == "sample_report" else ""
            text = render("draft", "basis_item", n=c.n, title=c.doc_title, section=short_section(c.section), kind_note=note,
                          quote=c.quote, more=quote_more(c.quote), source=c.source)
            p = doc.add_paragraph()
            fmt = p.paragraph_format
            fmt.first_line_indent = _pt(-style.basis_pt * 2)
            fmt.left_indent = _pt(style.basis_pt * 2)
            fmt.line_spacing = _pt(style.basis_pt * 1.5)
            _run(p, text, style.body_font, style.basis_pt)

    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def write_docx(draft: Draft, path: Path, **options) -> Path:
    path = Path(path)
    path.write_bytes(to_docx(draft, **options))
    return path


# ---------------------------------------------------------------------- helpers
def _pt(value: float):
    from docx.shared import Pt

    return Pt(value)


def _safe(text: str) -> str:
    return _XML_INVALID.sub("", text)


def _set_east_asia(rpr_holder, font: str) -> None:
    """Set the eastAsia font name (python-docx's ``font.name`` only sets the Latin slots)."""
    from docx.oxml.ns import qn

    rpr = rpr_holder.get_or_add_rPr()
    fonts = rpr.get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), font)


def _run(paragraph, text: str, font: str, size_pt: float):
    run = paragraph.add_run(_safe(text))
    run.font.size = _pt(size_pt)
    _set_east_asia(run._element, font)  # the public API has no eastAsia setter
    return run


def _body(doc, block: Block, style: DocxStyle, colors) -> None:
    p = doc.add_paragraph()
    run = _run(p, block.text, style.body_font, style.body_pt)
    if block.kind == "placeholder":
        run.font.highlight_color = colors.YELLOW  # easy to find what still needs writing


def _page_setup(doc, style: DocxStyle) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Mm

    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    top, bottom, left, right = style.margins_mm
    section.top_margin, section.bottom_margin = Mm(top), Mm(bottom)
    section.left_margin, section.right_margin = Mm(left), Mm(right)
    section.header_distance, section.footer_distance = Mm(15), Mm(20)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    footer.paragraph_format.first_line_indent = 0
    _run(footer, "— ", "宋体", 14)
    run = _run(footer, "", "宋体", 14)
    for kind, text in (("begin", None), (None, " PAGE "), ("separate", None), (None, "1"), ("end", None)):
        if kind:
            char = OxmlElement("w:fldChar")
            char.set(qn("w:fldCharType"), kind)
            run._element.append(char)
        elif text == " PAGE ":
            instr = OxmlElement("w:instrText")
            instr.set(qn("xml:space"), "preserve")
            instr.text = text
            run._element.append(instr)
        else:
            t = OxmlElement("w:t")
            t.text = text
            run._element.append(t)
    _run(footer, " —", "宋体", 14)


def _base_styles(doc, style: DocxStyle) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import RGBColor

    normal = doc.styles["Normal"]
    normal.font.name = style.latin_font
    normal.font.size = _pt(style.body_pt)
    normal.font.color.rgb = RGBColor(0, 0, 0)
    _set_east_asia(normal.element, style.body_font)
    lang = OxmlElement("w:lang")
    lang.set(qn("w:val"), "zh-CN")
    lang.set(qn("w:eastAsia"), "zh-CN")
    normal.element.get_or_add_rPr().append(lang)
    fmt = normal.paragraph_format
    fmt.line_spacing = _pt(style.line_pt)
    fmt.first_line_indent = _pt(style.body_pt * 2)
    fmt.space_before = _pt(0)
    fmt.space_after = _pt(0)
    fmt.widow_control = True


def _register_fallbacks(doc, style: DocxStyle) -> None:
    """Declare the Chinese fonts in the font table with an altName fallback (黑体/仿宋/楷体) and the GB2312
    charset, so Word/WPS substitute a Chinese face when 方正小标宋简体 or 仿宋_GB2312 is not installed."""
    from lxml import etree

    part = next((p for p in doc.part.package.parts if str(p.partname).endswith("/fontTable.xml")), None)
    if part is None or not hasattr(part, "_blob"):
        return
    root = etree.fromstring(part.blob)
    names = {f.get(f"{{{_W}}}name") for f in root}
    for name, alt, family in (
        (style.title_font, style.title_font_alt, "script"),
        (style.body_font, style.body_font_alt, "modern"),
        (style.subheading_font, style.subheading_font_alt, "modern"),
        (style.heading_font, "SimHei", "modern"),
        (style.body_font_alt, "FangSong", "modern"),
        (style.subheading_font_alt, "KaiTi", "modern"),
    ):
        if name in names:
            continue
        font = etree.SubElement(root, f"{{{_W}}}font", {f"{{{_W}}}name": name})
        etree.SubElement(font, f"{{{_W}}}altName", {f"{{{_W}}}val": alt})
        etree.SubElement(font, f"{{{_W}}}charset", {f"{{{_W}}}val": "86"})
        etree.SubElement(font, f"{{{_W}}}family", {f"{{{_W}}}val": family})
        etree.SubElement(font, f"{{{_W}}}pitch", {f"{{{_W}}}val": "variable"})
        names.add(name)
    # python-docx keeps unknown parts as raw bytes; there is no public setter for them.
    part._blob = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
