"""HTTP request and response bodies. Requests are strict (unknown fields are an error); responses mirror
the JSON shapes of DESIGN §7 that ``assistant.schema`` produces for the CLI."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints


def _blank_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


Role = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
# A blank role ("" from a form's 「未选择」) means no role.
OptionalRole = Annotated[Role | None, BeforeValidator(_blank_to_none)]
SessionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
Mode = Literal["extractive", "llm"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- search / ask
class SearchRequest(Request):
    query: str = Field(min_length=1, description="what to look for, in plain words")
    k: int = Field(10, ge=1, le=200, description="number of articles to return")
    role: OptionalRole = Field(None, description="asker's role: 教师 班主任 分管副校长 校长 教育局")


class HitOut(BaseModel):
    rank: int
    score: float
    chunk_id: str
    doc_title: str
    section: str
    text: str = Field(description="the article, verbatim from the source")
    source: str = Field(description="file name of the ingested document")
    start: int
    end: int


class SearchResponse(BaseModel):
    query: str
    hits: list[HitOut]


class AskRequest(Request):
    question: str = Field(min_length=1, description="the question, in plain words")
    role: OptionalRole = Field(None, description="asker's role: 教师 班主任 分管副校长 校长 教育局")
    mode: Mode | None = Field(None, description="extractive (default) or llm")
    stream: bool = Field(False, description="answer as Server-Sent Events: `delta` pieces, then one `final` event")
    session_id: SessionId | None = Field(None, description="from POST /v1/sessions; follow-ups use earlier turns")


class CitationOut(BaseModel):
    n: int
    chunk_id: str
    doc_title: str
    section: str
    quote: str = Field(description="exact substring of the source document at [start, end)")
    source: str
    start: int
    end: int


class DraftSectionBrief(BaseModel):
    key: str
    heading: str
    text: str
    placeholders: list[str]


class DraftLinkOut(BaseModel):
    """A chat reply that is a 述职报告 draft: its structure and where to download the .docx."""

    title: str
    download_url: str = Field(description="GET it (same API key) for the .docx; expires after expires_in_days")
    filename: str
    expires_in_days: int
    role: str
    unit: str
    year: int
    preamble: str
    sections: list[DraftSectionBrief]
    closing: str


class AskResponse(BaseModel):
    question: str = Field(description="the standalone question that was answered (follow-ups are expanded)")
    answer: str
    grounded: bool = Field(description="false: the policy texts do not answer; `related` lists the nearest passages")
    mode: str
    citations: list[CitationOut]
    related: list[HitOut]
    notices: list[str] | None = None
    session_id: str | None = None
    draft: DraftLinkOut | None = Field(None, description="set when the question asked for a 述职报告 draft")


# ---------------------------------------------------------------- sessions
class SessionCreate(Request):
    role: OptionalRole = None


class TurnOut(BaseModel):
    question: str
    query: str
    grounded: bool
    answer: str


class SessionResponse(BaseModel):
    session_id: str
    role: str | None
    turns: list[TurnOut] = []


# ---------------------------------------------------------------- documents
class DocumentOut(BaseModel):
    doc_id: str
    title: str
    kind: str
    source: str
    chunks: int
    sha256: str


class DocumentsResponse(BaseModel):
    documents: list[DocumentOut]


class UploadResponse(BaseModel):
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    skipped: list[str]
    chunks: int = Field(description="passages embedded by this upload")
    documents: list[DocumentOut]


class RemoveResponse(BaseModel):
    removed: list[str]
    documents: list[DocumentOut]


class ChunkResponse(BaseModel):
    chunk_id: str
    doc_id: str
    doc_title: str
    doc_kind: str
    section: str
    source: str
    text: str = Field(description="the article, verbatim; document offsets [start, end)")
    start: int
    end: int
    superseded_by: str = Field("", description="set when a newer version of this law is in the knowledge base")


class DocumentTextResponse(BaseModel):
    doc_id: str
    title: str
    source: str
    text: str


class HealthResponse(BaseModel):
    status: str
    documents: int
    chunks: int
    embedder: str
    mode: str
    auth: Literal["api-keys", "loopback-only"]


# ---------------------------------------------------------------- OpenAI-compatible
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")  # image_url, input_audio … are refused by the route, not here

    type: str
    text: str | None = None


class ChatMessage(Request):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    # Fields the official client puts on assistant messages that callers append back into the history.
    refusal: str | None = None
    annotations: list[Any] | None = None
    audio: Any = None
    function_call: Any = None
    tool_calls: list[Any] | None = None
    tool_call_id: str | None = None


class ChatCompletionRequest(Request):
    """OpenAI's request body. Sampling knobs are accepted and ignored (answers are quoted, not sampled);
    like OpenAI itself, an unknown field is an error."""

    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    user: str | None = Field(None, max_length=200, description="a role name (e.g. 班主任) sets the asker's role")
    # extensions
    session_id: SessionId | None = Field(None, description="extension: keep the conversation on the server")
    mode: Mode | None = Field(None, description="extension: extractive or llm")
    # accepted, ignored
    n: int | None = Field(None, ge=1, le=1)
    stream_options: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    logit_bias: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    reasoning_effort: str | None = None
    service_tier: str | None = None
    modalities: list[str] | None = None
    prediction: Any = None
    verbosity: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
