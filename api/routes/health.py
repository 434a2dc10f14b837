"""``GET /healthz``: liveness and what the server is running with (no secrets)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RuntimeDep
from api.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
def healthz(runtime: RuntimeDep) -> dict:
    kb = runtime.assistant.kb
    settings = runtime.settings
    return {
        "status": "ok", "documents": len(kb.docs), "chunks": len(kb.chunks), "embedder": runtime.assistant.embedder.name,
        "mode": settings.mode, "auth": "api-keys" if settings.api_key_list or settings.admin_key_list else "loopback-only",
    }
