"""The web chat page at ``/``: one static HTML file with its CSS and JS, no build step, no CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from api.deps import SettingsDep, check_client

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(include_in_schema=False)


@router.get("/")
def index(request: Request, settings: SettingsDep) -> FileResponse:
    if not (settings.api_key_list or settings.admin_key_list):
        check_client(request, settings)  # loopback-only servers do not show the page to others either
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})
