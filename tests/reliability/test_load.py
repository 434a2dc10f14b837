"""Concurrency: a shortened load test against a real ``duty serve`` on loopback (0 errors), and two
``duty ingest`` processes writing one knowledge base at once (serialised by its lock, nothing lost)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.loadtest import UPLOAD_NAME, measure, serve
from tests.conftest import LAWS, SEEDS, make_assistant

pytestmark = pytest.mark.shared


def test_ten_clients_for_five_seconds_with_an_upload_have_no_errors(laws_kb_dir):
    with serve(laws_kb_dir, embedder="fake", startup_timeout=120) as server:
        summary = measure(server.url, server.pid, clients=10, duration=5)
        import httpx

        documents = httpx.get(f"{server.url}/v1/documents", timeout=30).json()["documents"]
    assert summary["errors"] == 0, summary["error_samples"]
    assert summary["requests"] >= 50, summary
    assert set(summary["kinds"]) == {"search", "ask", "chat", "ingest"}
    assert summary["kinds"]["ingest"]["requests"] == 1
    assert UPLOAD_NAME in {d["source"] for d in documents}
    assert len(documents) == 24
    # Memory: a five-second run must not grow the server by more than a generous margin.
    if summary["rss_before_mb"] and summary["rss_after_mb"]:
        assert summary["rss_after_mb"] < summary["rss_before_mb"] + 300, summary
    assert not (laws_kb_dir / "uploads").exists()  # the server ran on a copy


def _duty() -> list[str]:
    duty = Path(sys.executable).with_name("duty")
    return [str(duty)] if duty.exists() else [sys.executable, "-m", "assistant.cli"]


def _state(kb: Path) -> tuple:
    assistant = make_assistant(kb)
    try:
        docs = sorted((d.source, d.sha256, d.chunks) for d in assistant.kb.documents())
        for d in assistant.kb.documents():
            assert len(assistant.kb.chunks_of(d.doc_id)) == d.chunks, d.source
        searches = [[h.chunk.chunk_id for h in assistant.search(q, k=5)] for q in ("校车驾驶人", "食品安全", "隐患挂牌督办")]
        return docs, searches
    finally:
        assistant.close()


def test_two_processes_ingesting_into_one_kb_at_once_give_a_consistent_kb(tmp_path):
    laws = sorted(LAWS.glob("*.md"))
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for i, path in enumerate(laws):
        (first if i % 2 else second).joinpath(path.name).symlink_to(path)
    seed = next(SEEDS.glob("*.txt"))
    (second / seed.name).symlink_to(seed)
    kb = tmp_path / "kb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUTY_")}
    env.update(DUTY_EMBEDDER="fake", DUTY_KB=str(kb))
    procs = [subprocess.Popen([*_duty(), "ingest", str(folder), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, text=True) for folder in (first, second)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    reports = [json.loads(out) for out, _ in outputs]
    assert sorted(n for r in reports for n in r["added"]) == sorted([p.name for p in laws] + [seed.name])

    sequential = tmp_path / "sequential"
    reference = make_assistant(sequential)
    reference.ingest([first])
    reference.ingest([second])
    reference.close()
    assert _state(kb) == _state(sequential)


def test_concurrent_uploads_through_the_api_all_land(small_kb):
    """Eight uploads racing through the server's reader/writer gate: every one is indexed exactly once."""
    import httpx

    with serve(small_kb, embedder="fake", startup_timeout=120) as server:

        async def upload(i: int) -> int:
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
                text = f"# 规定{i}\n\n第一条 第{i}号规定要求学校每日检查门窗{i}次。\n"
                response = await http.post("/v1/documents", files={"file": (f"规定{i}.md", text.encode())})
                return response.status_code

        async def run() -> list[int]:
            return await asyncio.gather(*(upload(i) for i in range(8)))

        assert asyncio.run(run()) == [201] * 8
        documents = httpx.get(f"{server.url}/v1/documents", timeout=30).json()["documents"]
    assert sorted(d["source"] for d in documents if d["source"].startswith("规定")) == sorted(f"规定{i}.md" for i in range(8))
