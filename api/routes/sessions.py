"""Conversations on the server: ``session_id`` lets follow-ups such as 「那班主任呢？」 use earlier turns."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import ClientDep, RuntimeDep
from api.errors import ApiError
from api.schemas import SessionCreate, SessionId, SessionResponse
from assistant.retrieve import canonical_role

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], dependencies=[ClientDep])


@router.post("", response_model=SessionResponse, status_code=201)
def create_session(runtime: RuntimeDep, body: SessionCreate | None = None) -> dict:
    """Start a conversation; pass the returned ``session_id`` to /v1/ask or /v1/chat/completions."""
    role = canonical_role(body.role) if body else None
    return {"session_id": runtime.sessions.create(role), "role": role, "turns": []}


@router.get("/{session_id}", response_model=SessionResponse)
def get_session(session_id: SessionId, runtime: RuntimeDep) -> dict:
    """The conversation's role and stored turns."""
    turns = runtime.sessions.history(session_id)
    conversation = runtime.sessions.load(session_id)
    if turns is None or conversation is None:
        raise ApiError(404, f"unknown session_id {session_id!r}; create one with POST /v1/sessions")
    return {"session_id": session_id, "role": conversation.role, "turns": turns}


@router.delete("/{session_id}", status_code=204)
def delete_session(session_id: SessionId, runtime: RuntimeDep) -> Response:
    if not runtime.sessions.delete(session_id):
        raise ApiError(404, f"unknown session_id {session_id!r}")
    return Response(status_code=204)
