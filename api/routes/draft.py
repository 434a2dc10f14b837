"""``POST /v1/draft``: a 述职报告 draft from the user's facts, every duty cited — as JSON (default),
Markdown, or a Word document (``"format": "docx"`` or ``Accept: application/vnd…wordprocessingml.document``)."""

from __future__ import annotations

import re
import time
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClientDep, RuntimeDep
from api.errors import ApiError
from api.schemas import CitationOut, Role
from assistant.draft import DraftRequest, draft_to_json, kinds_of, to_docx, to_markdown
from assistant.draft.model import MAX_FACTS_CHARS, MAX_UNIT_CHARS, YEAR_RANGE
from assistant.draft.store import DraftStore
from assistant.prompts import render

router = APIRouter(prefix="/v1", tags=["draft"], dependencies=[ClientDep])

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MARKDOWN_MEDIA_TYPE = "text/markdown; charset=utf-8"
_FILENAME_UNSAFE = re.compile(r'[\\/:*?"<>|\s]+')


class DraftBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role = Field(description="述职人角色：校长 分管副校长 班主任 教师 教育局")
    unit: str = Field(min_length=1, max_length=MAX_UNIT_CHARS, description="单位名称，如 某某镇中心校")
    year: int = Field(ge=YEAR_RANGE[0], le=YEAR_RANGE[1], description="述职年度")
    section: str | None = Field(None, max_length=20, description="只写一部分：1-4 或 履职情况/工作成效/问题/打算；不填为全文")
    facts: str = Field("", max_length=MAX_FACTS_CHARS, description="你的工作事实，每行/每句一条；原样保留")
    format: Literal["json", "markdown", "docx"] | None = Field(None, description="默认 json；也可用 Accept 头选择")
    mode: Literal["template", "llm"] | None = Field(None, description="template（默认，离线）或 llm（模型润色，引用与事实同样校验）")


class DraftSectionOut(BaseModel):
    key: str
    heading: str
    text: str
    citations: list[CitationOut]
    facts: list[str] = Field(description="the user's facts filed under this section, verbatim")
    placeholders: list[str] = Field(description="what the user still has to write here")


class DraftResponse(BaseModel):
    title: str
    role: str
    unit: str
    year: int
    mode: str
    preamble: str
    sections: list[DraftSectionOut]
    closing: str
    notices: list[str]
    markdown: str
    seconds: float = Field(description="time taken to compose the draft")


@router.post(
    "/draft",
    response_model=DraftResponse,
    responses={200: {"content": {DOCX_MEDIA_TYPE: {}, "text/markdown": {}}, "description": "JSON, Markdown or .docx"}},
)
def create_draft(body: DraftBody, request: Request, runtime: RuntimeDep):
    """Draft a 述职报告 (or one section of it): the role's duties quoted from the policy texts with citations,
    the user's facts verbatim under 一 履职基本情况 / 二 主要工作与成效 / 三 存在的问题与不足 / 四 下一步工作打算."""
    started = time.perf_counter()
    assistant = runtime.assistant
    with runtime.gate.read():
        draft = assistant.drafter(body.mode).draft(DraftRequest(body.role, body.unit, body.year, body.facts, body.section))
        kinds = kinds_of(assistant.kb, draft)
    fmt = body.format or _format_from_accept(request.headers.get("accept", ""))
    if fmt == "docx":
        return Response(to_docx(draft, kind_of=kinds), media_type=DOCX_MEDIA_TYPE,
                        headers={"Content-Disposition": content_disposition(draft.unit, draft.year)})
    markdown = to_markdown(draft, kind_of=kinds)
    if fmt == "markdown":
        return Response(markdown, media_type=MARKDOWN_MEDIA_TYPE)
    return {**draft_to_json(draft, markdown=markdown), "seconds": round(time.perf_counter() - started, 3)}


def _format_from_accept(accept: str) -> str:
    accept = accept.lower()
    if DOCX_MEDIA_TYPE in accept:
        return "docx"
    if "text/markdown" in accept:
        return "markdown"
    return "json"


def content_disposition(unit: str, year: int) -> str:
    """``attachment`` with an ASCII fallback name and the Chinese name in RFC 5987 form."""
    name = _FILENAME_UNSAFE.sub("_", f"{unit}{year}年度述职报告")[:80] + ".docx"
    return f"attachment; filename=\"duty-report-{year}.docx\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get("/drafts/{draft_id}.docx", response_class=FileResponse,
            responses={200: {"content": {DOCX_MEDIA_TYPE: {}}, "description": "the .docx of a draft made in chat"}})
def download_draft(draft_id: str, runtime: RuntimeDep) -> FileResponse:
    """The Word document of a draft written in chat (its link is in the chat reply); 404 once expired."""
    path = DraftStore.for_kb(runtime.assistant.kb.root).path(draft_id)
    if path is None:
        raise ApiError(404, "unknown or expired draft; ask for the draft again in chat")
    name = quote(render("draft_chat", "download_name"), safe="")
    return FileResponse(path, media_type=DOCX_MEDIA_TYPE, headers={
        "Content-Disposition": f"attachment; filename=\"duty-report-draft.docx\"; filename*=UTF-8''{name}",
        "Cache-Control": "private, no-store"})
