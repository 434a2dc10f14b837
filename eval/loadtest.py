"""``python -m eval.loadtest`` (``make loadtest``): N concurrent clients for T seconds against a real server.

Each client loops over a mix of ``/v1/search`` (40 %), ``/v1/ask`` (40 %) and ``/v1/chat/completions``
(20 %) with teacher-style questions; one extra task uploads a document a third of the way in. Reports
requests, errors, p50/p95 latency per kind and the server's resident memory before and after.

By default it starts its own ``duty serve`` on a free loopback port over a temporary copy of ``--kb``
(or an empty knowledge base, which the server fills from the bundled corpus), so the user's knowledge
base is never touched. ``--url`` targets a running server instead (``--api-key`` if it needs one).

    python -m eval.loadtest --clients 50 --duration 60
    python -m eval.loadtest --clients 10 --duration 5 --embedder fake --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

QUESTIONS = [
    "校车驾驶人需要具备什么条件？",
    "学生在学校受伤了，学校要承担什么责任",
    "班主任的安全职责是什么",
    "发现校园欺凌，老师应该怎么做？",
    "学校食堂的食品安全由谁负责",
    "安全隐患挂牌督办是什么意思",
    "校长作为第一责任人要做哪些事",
    "学校每学期要搞几次应急疏散演练",
    "学生溺水事故怎么预防",
    "寄宿制学校晚上要有人值班吗",
]
ROLES = [None, "教师", "班主任", "分管副校长", "校长"]
UPLOAD_NAME = "压测门卫管理规定.md"
UPLOAD_TEXT = (
    "# 压测门卫管理规定\n\n第一条 学校门卫应当对来访人员进行登记，核实身份后方可放行。\n\n"
    "第二条 门卫发现可疑人员应当立即报告学校保卫部门，并做好记录。\n\n"
    "第三条 放学时段门卫应当在校门口值守，维护学生离校秩序。\n"
)


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)

    def record(self, kind: str, seconds: float, error: str | None) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        if error:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            if len(self.samples) < 10:
                self.samples.append(f"{kind}: {error}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _request(kind: str, rng: random.Random) -> tuple[str, dict]:
    question = rng.choice(QUESTIONS)
    role = rng.choice(ROLES)
    if kind == "search":
        return "/v1/search", {"query": question, "k": 10, **({"role": role} if role else {})}
    if kind == "ask":
        return "/v1/ask", {"question": question, **({"role": role} if role else {})}
    messages = ([{"role": "system", "content": f"角色：{role}"}] if role else []) + [{"role": "user", "content": question}]
    return "/v1/chat/completions", {"model": "duty-assistant", "messages": messages}


def _check(kind: str, response: httpx.Response) -> str | None:
    if response.status_code >= 300:
        return f"HTTP {response.status_code} {response.text[:200]}"
    body = response.json()
    ok = {"search": "hits" in body, "ask": "answer" in body and "citations" in body,
          "chat": bool(body.get("choices")), "ingest": "documents" in body}[kind]
    return None if ok else f"unexpected body {str(body)[:200]}"


async def _client(http: httpx.AsyncClient, stats: Stats, deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        kind = rng.choices(["search", "ask", "chat"], weights=[4, 4, 2])[0]
        path, body = _request(kind, rng)
        started = time.perf_counter()
        try:
            error = _check(kind, await http.post(path, json=body))
        except (httpx.HTTPError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        stats.record(kind, time.perf_counter() - started, error)


async def _ingest_once(http: httpx.AsyncClient, stats: Stats, delay: float) -> None:
    await asyncio.sleep(delay)
    started = time.perf_counter()
    try:
        response = await http.post("/v1/documents", files={"file": (UPLOAD_NAME, UPLOAD_TEXT.encode())})
        error = _check("ingest", response)
        if not error and UPLOAD_NAME not in {d["source"] for d in response.json()["documents"]}:
            error = "uploaded document missing from the document list"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    stats.record("ingest", time.perf_counter() - started, error)


async def run_load(url: str, *, clients: int, duration: float, api_key: str | None = None,
                   ingest: bool = True, timeout: float = 120.0) -> Stats:
    """Drive ``clients`` concurrent loops for ``duration`` seconds; one upload a third of the way in."""
    stats = Stats()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout, limits=limits) as http:
        deadline = time.monotonic() + duration
        tasks = [asyncio.create_task(_client(http, stats, deadline, seed)) for seed in range(clients)]
        if ingest:
            tasks.append(asyncio.create_task(_ingest_once(http, stats, duration / 3)))
        await asyncio.gather(*tasks)
    return stats


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB (Linux /proc; None elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    pid: int
    log: Path


@contextlib.contextmanager
def serve(kb: Path | None, *, embedder: str | None = None, startup_timeout: float = 600.0) -> Iterator[Server]:
    """``duty serve`` on a free loopback port over a temporary copy of ``kb`` (never the original)."""
    work = Path(tempfile.mkdtemp(prefix="duty-loadtest-"))
    try:
        target = work / "kb"
        if kb is not None and Path(kb).is_dir():
            shutil.copytree(kb, target, ignore=shutil.ignore_patterns(".lock", "sessions.sqlite*"))
        env = {k: v for k, v in os.environ.items() if k not in {"DUTY_API_KEYS", "DUTY_ADMIN_KEYS", "DUTY_KB"}}
        env["PYTHONUNBUFFERED"] = "1"
        if embedder:
            env["DUTY_EMBEDDER"] = embedder
        port = free_port()
        duty = Path(sys.executable).with_name("duty")
        command = [str(duty)] if duty.exists() else [sys.executable, "-m", "assistant.cli"]
        log = work / "server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([*command, "serve", "--port", str(port), "--kb", str(target)],
                                    stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"duty serve exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"duty serve did not start within {startup_timeout:.0f} s")
                time.sleep(0.3)
            yield Server(url, proc.pid, log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def summarise(stats: Stats, *, clients: int, duration: float, rss_before: float | None, rss_after: float | None) -> dict:
    every = [s for values in stats.latencies.values() for s in values]
    kinds = {
        kind: {"requests": len(values), "errors": stats.errors.get(kind, 0),
               "p50_ms": round(1000 * percentile(values, 0.5), 1), "p95_ms": round(1000 * percentile(values, 0.95), 1)}
        for kind, values in sorted(stats.latencies.items())
    }
    return {
        "clients": clients, "duration_s": duration, "requests": len(every), "errors": sum(stats.errors.values()),
        "throughput_rps": round(len(every) / duration, 1) if duration else 0.0,
        "p50_ms": round(1000 * percentile(every, 0.5), 1), "p95_ms": round(1000 * percentile(every, 0.95), 1),
        "mean_ms": round(1000 * statistics.fmean(every), 1) if every else 0.0,
        "rss_before_mb": round(rss_before, 1) if rss_before else None,
        "rss_after_mb": round(rss_after, 1) if rss_after else None,
        "kinds": kinds, "error_samples": stats.samples,
    }


def format_summary(summary: dict) -> str:
    lines = [
        f"clients {summary['clients']} × {summary['duration_s']:g} s: {summary['requests']} requests "
        f"({summary['throughput_rps']} /s), {summary['errors']} errors, p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms",
        f"server RSS {summary['rss_before_mb']} MB before → {summary['rss_after_mb']} MB after",
    ]
    for kind, row in summary["kinds"].items():
        lines.append(f"  {kind:7s} {row['requests']:6d} requests {row['errors']:4d} errors  p50 {row['p50_ms']:8.1f} ms  p95 {row['p95_ms']:8.1f} ms")
    lines.extend(f"  error: {sample}" for sample in summary["error_samples"])
    return "\n".join(lines)


async def _warm_up(url: str, api_key: str | None) -> None:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
        for question in QUESTIONS[:3]:
            await http.post("/v1/ask", json={"question": question})


def measure(url: str, pid: int | None, *, clients: int, duration: float, api_key: str | None = None) -> dict:
    asyncio.run(_warm_up(url, api_key))
    before = rss_mb(pid) if pid else None
    stats = asyncio.run(run_load(url, clients=clients, duration=duration, api_key=api_key))
    after = rss_mb(pid) if pid else None
    return summarise(stats, clients=clients, duration=duration, rss_before=before, rss_after=after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--url", help="a running server (default: start duty serve on a temporary copy of --kb)")
    parser.add_argument("--api-key", default=os.environ.get("DUTY_LOADTEST_KEY"), help="Bearer key for --url")
    parser.add_argument("--kb", type=Path, default=Path(os.environ["DUTY_KB"]) if os.environ.get("DUTY_KB") else None,
                        help="knowledge base to copy for the server (default: $DUTY_KB; empty = bundled corpus)")
    parser.add_argument("--embedder", help="DUTY_EMBEDDER for the started server (default: the environment's)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0:
        parser.error("--clients must be ≥ 1 and --duration > 0")
    if args.url:
        summary = measure(args.url, None, clients=args.clients, duration=args.duration, api_key=args.api_key)
    else:
        with serve(args.kb, embedder=args.embedder) as server:
            summary = measure(server.url, server.pid, clients=args.clients, duration=args.duration)
    print(json.dumps(summary, ensure_ascii=False, indent=2) if args.json else format_summary(summary))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
