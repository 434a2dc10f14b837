"""Fixtures for the HTTP API: TestClient apps over real knowledge bases (fake embedder), and a real
``duty serve`` process on a free loopback port for the OpenAI client and the browser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from assistant.config import Settings
from tests.conftest import CORPUS, make_assistant
from tests.processes import stop_process

LOCAL = ("127.0.0.1", 50123)


def api_settings(kb: Path, **overrides) -> Settings:
    return Settings(kb=kb, embedder="fake", _env_file=None, **overrides)


def local_client(settings: Settings, *, client: tuple[str, int] = LOCAL, **kwargs) -> TestClient:
    """A TestClient that looks like a browser on this machine (loopback address and Host)."""
    return TestClient(create_app(settings), base_url="http://127.0.0.1:8000", client=client, **kwargs)


@pytest.fixture(scope="session")
def laws_client(laws_kb_dir) -> Iterator[TestClient]:
    """The 23-document knowledge base behind a read-mostly app (sessions are written, documents are not)."""
    with local_client(api_settings(laws_kb_dir)) as client:
        yield client


@pytest.fixture(scope="session")
def corpus_kb_template(tmp_path_factory) -> Path:
    """The bundled corpus (3 sample reports) indexed once; tests that change documents get a copy."""
    root = tmp_path_factory.mktemp("corpus-kb")
    assistant = make_assistant(root)
    report = assistant.ingest([CORPUS])
    assert len(report.added) == 3, report.skipped
    assistant.close()
    return root


@pytest.fixture
def small_kb(corpus_kb_template, tmp_path) -> Path:
    kb = tmp_path / "kb"
    shutil.copytree(corpus_kb_template, kb)
    return kb


@pytest.fixture
def small_client(small_kb) -> Iterator[TestClient]:
    with local_client(api_settings(small_kb, max_upload_mb=1)) as client:
        yield client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class LiveServer:
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def live_server(laws_kb_dir, tmp_path_factory) -> Iterator[LiveServer]:
    """``duty serve`` in a subprocess over a copy of the 23-document knowledge base."""
    kb = tmp_path_factory.mktemp("live") / "kb"
    shutil.copytree(laws_kb_dir, kb)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUTY_")}
    env.update(DUTY_EMBEDDER="fake", PYTHONUNBUFFERED="1")
    duty = Path(sys.executable).with_name("duty")
    command = [str(duty)] if duty.exists() else [sys.executable, "-m", "assistant.cli"]
    log = kb.parent / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*command, "serve", "--port", str(port), "--kb", str(kb)], stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=kb.parent)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"duty serve exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"duty serve did not answer /healthz within 90 s:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield LiveServer(url, log)
    finally:
        stop_process(proc, timeout=15)

