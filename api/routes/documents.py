"""The knowledge base's documents: list, upload (.md .txt .docx .pdf), remove; articles and texts to show."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile

from api.deps import AdminDep, ClientDep, Runtime, RuntimeDep
from api.errors import ApiError
from api.schemas import ChunkResponse, DocumentsResponse, DocumentTextResponse, RemoveResponse, UploadResponse
from api.uploads import MAX_FILES_PER_UPLOAD, UPLOAD_DIR, check_upload, write_atomic

router = APIRouter(prefix="/v1", tags=["documents"])


def _documents(runtime: Runtime) -> list[dict]:
    return [d.to_json() for d in runtime.assistant.kb.documents()]


@router.get("/documents", response_model=DocumentsResponse, dependencies=[ClientDep])
def list_documents(runtime: RuntimeDep) -> dict:
    """Every document in the knowledge base."""
    with runtime.gate.read():
        return {"documents": _documents(runtime)}


@router.post("/documents", response_model=UploadResponse, dependencies=[AdminDep])
def upload_documents(
    file: Annotated[list[UploadFile], File(description="one or more .md .txt .docx .pdf files (field name `file`)")],
    runtime: RuntimeDep,
    response: Response,
) -> dict:
    """Add or update documents. Every file is checked first; if one is refused nothing is changed.

    Files are kept under ``<kb>/uploads/`` and indexed incrementally (unchanged bytes cost nothing).
    """
    if len(file) > MAX_FILES_PER_UPLOAD:
        raise ApiError(400, f"{len(file)} files in one upload; send at most {MAX_FILES_PER_UPLOAD} at a time")
    limit = runtime.settings.max_upload_mb * 1024 * 1024
    checked = [check_upload(f.filename, f.file, limit) for f in file]
    names = [c.name for c in checked]
    if len(set(names)) != len(names):
        raise ApiError(400, "two uploaded files have the same name; rename one of them")
    folder = runtime.assistant.kb.root / UPLOAD_DIR
    with runtime.gate.write():
        previous = {c.name: (folder / c.name).read_bytes() if (folder / c.name).is_file() else None for c in checked}
        for c in checked:
            write_atomic(folder / c.name, c.data)
        try:
            report = runtime.assistant.ingest([folder / name for name in names])
        except BaseException:
            _restore(runtime, previous)
            raise
        refused = {name: line for name in names for line in report.skipped if line.startswith(f"{name}:")}
        _restore(runtime, {name: previous[name] for name in refused})
        if len(refused) == len(names):
            raise ApiError(400, "; ".join(refused.values()))
        documents = _documents(runtime)
    response.status_code = 201 if report.added else 200
    return {
        "added": report.added, "updated": report.updated, "unchanged": report.unchanged, "skipped": report.skipped,
        "chunks": report.chunks_embedded, "documents": documents,
    }


def _restore(runtime: Runtime, previous: dict[str, bytes | None]) -> None:
    folder = runtime.assistant.kb.root / UPLOAD_DIR
    for name, data in previous.items():
        if data is None:
            (folder / name).unlink(missing_ok=True)
        else:
            write_atomic(folder / name, data)


@router.delete("/documents/{key}", response_model=RemoveResponse, dependencies=[AdminDep])
def remove_document(key: str, runtime: RuntimeDep) -> dict:
    """Remove a document by its ``doc_id`` or file name; an uploaded copy is deleted too."""
    with runtime.gate.write():
        kb = runtime.assistant.kb
        match = next((d for d in kb.documents() if key in (d.doc_id, d.source)), None)
        if match is None:
            raise ApiError(404, f"no document {key!r} in the knowledge base; GET /v1/documents lists them")
        report = kb.remove([match.source])
        (kb.root / UPLOAD_DIR / match.source).unlink(missing_ok=True)
        return {"removed": report.removed, "documents": _documents(runtime)}


@router.get("/documents/{doc_id}/text", response_model=DocumentTextResponse, dependencies=[ClientDep])
def document_text(doc_id: str, runtime: RuntimeDep) -> dict:
    """The whole normalised text of a document; citation offsets point into it."""
    with runtime.gate.read():
        doc = runtime.assistant.kb.docs.get(doc_id)
        if doc is None:
            raise ApiError(404, f"no document with doc_id {doc_id!r}; GET /v1/documents lists them")
        return {"doc_id": doc.doc_id, "title": doc.meta.title, "source": doc.source, "text": doc.text}


@router.get("/chunks/{chunk_id}", response_model=ChunkResponse, dependencies=[ClientDep])
def get_chunk(chunk_id: str, runtime: RuntimeDep) -> dict:
    """One article, verbatim, with its document offsets: a citation's quote is ``text[start-chunk.start : ...]``."""
    with runtime.gate.read():
        kb = runtime.assistant.kb
        chunk = kb.chunks.get(chunk_id)
        if chunk is None:
            raise ApiError(404, f"no passage {chunk_id!r}; the document may have been updated — ask again")
        return {
            "chunk_id": chunk.chunk_id, "doc_id": chunk.doc_id, "doc_title": chunk.doc_title, "doc_kind": chunk.doc_kind,
            "section": chunk.section, "source": chunk.source, "text": chunk.text, "start": chunk.start, "end": chunk.end,
            "superseded_by": kb.superseded.get(chunk.doc_id, ""),
        }
