"""Speed and scale benchmark (``make bench``): our pipeline beside the naive LangChain baseline.

For each corpus size every system is built in its own subprocess (so peak RSS is its own) on a fresh
knowledge base with a cold embedding cache, then measured: ingest time and throughput, size on disk, peak
RSS, search/ask latency p50/p95/p99 after a warm-up, and (ours only: the naive recipe has no incremental
ingest) re-ingest with nothing changed and with one file changed. Results go to ``eval/reports/bench.json``
(appended as each run finishes), ``bench.md`` and ``bench.png`` (latency vs KB size).

Sizes: ``23`` (the customer's document + the 22 shared laws), ``500`` (every 7th file of the full
corpus), ``full`` (all of ../shared/scale-corpus/laws-full.tar.xz, unpacked to a temporary folder).
Large sizes run our bulk profile (USE embedder, article vectors only, parallel parsing); the 23-document KB
also runs the default profile (e5 + USE, sentence vectors). Example::

    python -m eval.bench --sizes 23 500 full
    python -m eval.bench --render-only          # rebuild bench.md/png from bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SMALL_SOURCES = (SHARED / "seeds", SHARED / "policy-corpus" / "laws")
FULL_ARCHIVE = SHARED / "scale-corpus" / "laws-full.tar.xz"
REPORTS = Path(__file__).resolve().parent / "reports"
QUESTIONS = Path(__file__).resolve().parent / "dev.jsonl"
WARMUP = 3

# (system, profile, embedder) per size; "default" is what `duty serve` builds, "bulk" the large-corpus profile.
PLAN: dict[str, list[tuple[str, str, str]]] = {
    "23": [("ours", "default", "auto"), ("ours", "default", "use"), ("ours", "bulk", "use"), ("ours", "bulk-sparse", "use"),
           ("naive", "-", "e5"), ("naive", "-", "use")],
    "500": [("ours", "bulk", "use"), ("naive", "-", "use")],
    "full": [("ours", "bulk-sparse", "use"), ("ours", "bulk", "use"), ("naive", "-", "use")],
}
# The e5 vectors of the 23-document KB, if `make eval` has built them: the default profile then measures a
# warm-cache ingest (flagged in the report) instead of ~10 minutes of e5 time on a busy 2-core machine.
EVAL_CACHE = REPO / ".eval.kb" / "embed-cache.sqlite"


# ---------------------------------------------------------------------------------------------- corpora
def materialize(size: str, work: Path) -> Path:
    """Copy the size's files into one flat folder (unique file names) that the benchmark may modify."""
    target = work / f"corpus-{size}"
    if target.exists():
        return target
    if size == "23":
        files = [p for src in SMALL_SOURCES for p in sorted(src.rglob("*")) if p.is_file()]
    else:
        unpacked = work / "laws-full"
        if not unpacked.exists():
            with tarfile.open(FULL_ARCHIVE) as archive:
                archive.extractall(unpacked, filter="data")
        files = sorted(p for p in unpacked.rglob("*") if p.is_file() and p.suffix in {".md", ".txt"})
        if size == "500":
            files = files[::7][:500]
    target.mkdir(parents=True)
    seen: set[str] = set()
    for path in files:
        if path.name in seen:  # the KB keys documents by file name; the full corpus repeats 4 names
            continue
        seen.add(path.name)
        shutil.copy2(path, target / path.name)
    return target


def disk_usage(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def percentiles(values: list[float]) -> dict:
    import numpy as np

    if not values:
        return {}
    arr = np.asarray(values)
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)),
            "p99": float(np.percentile(arr, 99)), "n": len(values)}


def timed_ms(call, before=None) -> float:
    """Wall-clock milliseconds of ``call()``; ``before()`` runs first, untimed."""
    if before is not None:
        before()
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def peak_rss_mb() -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_rss_mb": round(own, 1), "peak_rss_children_mb": round(children, 1)}


def questions(n: int) -> list[tuple[str, str | None]]:
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["question"], r.get("role") or None) for r in rows[: n + WARMUP]]


# ---------------------------------------------------------------------------------------------- workers
def seed_cache(source: Path, kb: Path) -> None:
    """Copy an embedding cache into a new KB with SQLite's backup API (safe while another process writes it)."""
    import sqlite3

    kb.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(kb / "embed-cache.sqlite")
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def run_ours(corpus: Path, kb: Path, profile: str, embedder: str, n_queries: int, quality: bool) -> dict:
    from assistant.config import Settings
    from assistant.pipeline import build_assistant

    settings = Settings(kb=kb, embedder=embedder, bulk=profile.startswith("bulk"), bulk_vectors=profile != "bulk-sparse", _env_file=None,
                        **({"chroma_url": os.environ["DUTY_CHROMA_URL"]} if os.environ.get("DUTY_CHROMA_URL") else {}))
    result: dict = {"load_start": load_average()}
    assistant = build_assistant(settings)
    result["embedder"] = "+".join(filter(None, [assistant.embedder.name, assistant.kb._aux_name]))
    started = time.perf_counter()
    report = assistant.ingest([corpus])
    result["ingest_s"] = time.perf_counter() - started
    result["ingest_rss"] = peak_rss_mb()
    kb_ = assistant.kb
    result["documents"] = len(kb_.docs)
    result["skipped"] = len(report.skipped)
    result["chunks"] = len(kb_.chunks)
    result["chars"] = sum(len(d.text) for d in kb_.docs.values())
    result["vectors"] = sum(kb_._collection_handle(n).count() for n in ("duty_chunks", "duty_windows"))
    if kb_.aux_embedder is not None:
        result["vectors"] += kb_._collection_handle("duty_windows_aux").count()
    assistant.close()
    del assistant, kb_  # the serving process below starts from nothing


    # a server process starting on the finished KB: load manifest, BM25 and docs once
    import gc

    gc.collect()
    started = time.perf_counter()
    assistant = build_assistant(settings)
    result["open_s"] = time.perf_counter() - started
    qs = questions(n_queries)
    for q, role in qs[:WARMUP]:
        assistant.search(q, k=10, role=role)
        assistant.ask(q, role=role)
    # Each timed question starts without remembered query vectors: an ask after the search of the same
    # question would otherwise skip the model and time only the answering.
    forget = assistant.retriever.forget_queries
    result["search_ms"] = percentiles([timed_ms(lambda q=q, r=r: assistant.search(q, k=10, role=r), before=forget) for q, r in qs[WARMUP:]])
    result["ask_ms"] = percentiles([timed_ms(lambda q=q, r=r: assistant.ask(q, role=r), before=forget) for q, r in qs[WARMUP:]])

    started = time.perf_counter()
    again = assistant.ingest([corpus])
    result["reingest_unchanged_s"] = time.perf_counter() - started
    assert not again.changed, again
    victim = sorted(corpus.iterdir())[len(list(corpus.iterdir())) // 2]
    original = victim.read_bytes()
    try:
        victim.write_bytes(original + "\n\n第九百九十九条 本条为基准测试追加的条款，用于测量增量更新。\n".encode())
        started = time.perf_counter()
        changed = assistant.ingest([corpus])
        result["reingest_one_changed_s"] = time.perf_counter() - started
        assert changed.updated == [victim.name], changed
    finally:
        victim.write_bytes(original)
    assistant.ingest([corpus])  # back to the original text (not timed)
    if quality:
        from eval.harness import evaluate_assistant

        overall = evaluate_assistant(assistant, QUESTIONS)["overall"]
        result["quality"] = {k: overall[k] for k in ("n", "recall@1", "recall@5", "recall@10", "mrr@10", "refusal_recall", "false_refusal_rate")}
    assistant.close()
    result["kb_bytes"] = disk_usage(kb)
    result.update(peak_rss_mb())
    result["load_end"] = load_average()
    return result


def run_naive(corpus: Path, kb: Path, embedder: str, n_queries: int) -> dict:
    from assistant.config import Settings
    from assistant.embed import build_embedder
    from assistant.ingest import discover_files, load_file
    from eval.baseline import NaiveBaseline

    result: dict = {"load_start": load_average()}
    model = build_embedder(Settings(kb=kb, embedder=embedder, _env_file=None))
    result["embedder"] = model.name
    started = time.perf_counter()
    files, _ = discover_files([corpus])
    texts = {p.name: load_file(p).text for p in files}
    baseline = NaiveBaseline.build(texts, model, kb / "chroma")
    result["ingest_s"] = time.perf_counter() - started
    result["ingest_rss"] = peak_rss_mb()
    result["documents"] = len(texts)
    result["chunks"] = result["vectors"] = len(baseline.chunks)
    result["chars"] = sum(len(t) for t in texts.values())
    qs = questions(n_queries)
    for q, _ in qs[:WARMUP]:
        baseline.search(q, k=10)
        baseline.search(q, k=10, hybrid=True)
    result["search_ms"] = percentiles([timed_ms(lambda q=q: baseline.search(q, k=10)) for q, _ in qs[WARMUP:]])
    result["hybrid_search_ms"] = percentiles([timed_ms(lambda q=q: baseline.search(q, k=10, hybrid=True)) for q, _ in qs[WARMUP:]])
    baseline.close()
    result["kb_bytes"] = disk_usage(kb)
    result.update(peak_rss_mb())
    result["load_end"] = load_average()
    return result


def worker(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.bench worker")
    parser.add_argument("--system", choices=("ours", "naive"), required=True)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--embedder", default="auto")
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--kb", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--seed-cache", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.seed_cache is not None:
        seed_cache(args.seed_cache, args.kb)
    if args.system == "ours":
        result = run_ours(args.corpus, args.kb, args.profile, args.embedder, args.queries, args.quality)
    else:
        result = run_naive(args.corpus, args.kb, args.embedder, args.queries)
    print("RESULT " + json.dumps(result, ensure_ascii=False))
    return 0


# ---------------------------------------------------------------------------------------------- report
def _ms(stats: dict | None, key: str) -> str:
    return f"{stats[key]:.1f}" if stats and key in stats else "–"


def _num(value, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def render(runs: list[dict], out: Path) -> None:
    headers = ["KB", "system", "profile", "embedder", "docs", "chunks", "vectors", "ingest s", "docs/s", "chunks/s", "chars/s",
               "disk MB", "peak RSS MB", "open s", "search p50/p95/p99 ms", "ask p50/p95/p99 ms",
               "re-ingest same s", "re-ingest 1 changed s", "load avg start→end"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in runs:
        s = r["ingest_s"]
        search = r.get("search_ms")
        search_cell = "/".join(_ms(search, p) for p in ("p50", "p95", "p99"))
        if r["system"] == "naive":
            search_cell = f"dense {search_cell}; hybrid " + "/".join(_ms(r.get("hybrid_search_ms"), p) for p in ("p50", "p95", "p99"))
        ask_cell = "/".join(_ms(r.get("ask_ms"), p) for p in ("p50", "p95", "p99")) if r.get("ask_ms") else "– (no answerer)"
        peak = max(r.get("peak_rss_mb", 0), r.get("peak_rss_children_mb", 0))
        lines.append("| " + " | ".join([
            r["size"], r["system"], r["profile"] + (" (warm cache)" if r.get("cache") == "warm" else "") + (f" — {r['note']}" if r.get("note") else ""),
            "+".join(part.split("/")[-1] for part in r.get("embedder", "").split("+")), str(r["documents"]), str(r["chunks"]), str(r["vectors"]),
            f"{s:.1f}", f"{r['documents'] / s:.1f}", f"{r['chunks'] / s:.0f}", f"{r['chars'] / s:,.0f}",
            f"{r['kb_bytes'] / 2**20:.0f}", f"{peak:.0f}", _num(r.get("open_s"), "{:.2f}"), search_cell, ask_cell,
            _num(r.get("reingest_unchanged_s"), "{:.2f}") if r["system"] == "ours" else "n/a (full rebuild)",
            _num(r.get("reingest_one_changed_s"), "{:.2f}") if r["system"] == "ours" else "n/a (full rebuild)",
            f"{r['load_start']}→{r['load_end']}",
        ]) + " |")
    quality = [r for r in runs if r.get("quality")]
    qlines = []
    if quality:
        qlines = ["", "## Quality on the dev set (eval/dev.jsonl, dev and held-out parts together, 23-document KB)", "",
                  "| profile | embedder | questions | R@1 | R@5 | R@10 | MRR@10 | refusal recall | false refusals |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in quality:
            q = r["quality"]
            qlines.append(f"| {r['profile']} | {r['embedder']} | {q.get('n', '–')} | {q['recall@1']:.3f} | {q['recall@5']:.3f} | {q['recall@10']:.3f} | "
                          f"{q['mrr@10']:.3f} | {q['refusal_recall']:.3f} | {q['false_refusal_rate']:.3f} |")
    text = "\n".join([
        "# Scale and speed benchmark", "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m eval.bench` (`make bench`) on "
        f"{os.cpu_count()} CPUs. Every system is built in its own process on a fresh KB with a cold embedding cache. "
        "Latency is wall clock after a warm-up of 3 questions, over questions from eval/dev.jsonl (search: top 10 with the "
        "asker's role; ask: extractive). `peak RSS` is the larger of the process and its parsing workers. "
        "The naive baseline (eval/baseline.py) has no answerer and no incremental ingest. "
        "The machine is shared: the load average (1 min) at the start and end of each run is in the last column; "
        "a load above the CPU count means the numbers include waiting for the CPU.", "",
        *lines, *qlines, "", "![Search and ask latency vs KB size](bench.png)", "",
    ])
    notes = out / "bench-notes.md"  # hand-written observations about a run, kept beside the numbers
    if notes.exists():
        text += "\n" + notes.read_text(encoding="utf-8")
    (out / "bench.md").write_text(text, encoding="utf-8")
    plot(runs, out / "bench.png")


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    # one point per series and size: the run with the lowest load average (the machine is shared)
    best: dict[tuple[str, int], tuple[float, float]] = {}
    for r in runs:
        model = "+".join(part.split("/")[-1] for part in r.get("embedder", "").split("+"))
        label = f"{r['system']} {r['profile']} ({model})".replace(" - ", " ")
        load = max(r["load_start"], r["load_end"])
        for key, name in (("search_ms", "search p95"), ("ask_ms", "ask p95"), ("hybrid_search_ms", "hybrid search p95")):
            if r.get(key) and load < best.get((f"{label} {name}", r["chunks"]), (float("inf"), 0.0))[0]:
                best[(f"{label} {name}", r["chunks"])] = (load, r[key]["p95"])
    series: dict[str, list[tuple[int, float, float]]] = {}
    for (label, chunks), (load, value) in best.items():
        series.setdefault(label, []).append((chunks, value, load))
    for label, points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        for x, y, load in points:
            ax.annotate(f"{load:.1f}", (x, y), textcoords="offset points", xytext=(4, 3), fontsize=6, alpha=0.6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("chunks in the KB (log)")
    ax.set_ylabel("p95 latency, ms (log)")
    ax.set_title("p95 latency vs KB size (2 shared cores; labels: load average of the run)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- driver
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        return worker(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m eval.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["23", "500", "full"], choices=list(PLAN))
    parser.add_argument("--systems", nargs="+", default=["ours", "naive"], choices=("ours", "naive"))
    parser.add_argument("--queries", type=int, default=60, help="timed questions per run (after 3 warm-up ones)")
    parser.add_argument("--no-quality", action="store_true", help="skip the dev-set quality run on the 23-document KB")
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one, deleted)")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--cold", action="store_true", help="never seed the default profile's embedding cache from .eval.kb")
    parser.add_argument("--skip", nargs="*", default=[], help="runs to skip, as size:system:profile (e.g. full:naive:-)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "bench.json"
    runs: list[dict] = json.loads(store.read_text(encoding="utf-8")) if store.exists() else []
    if args.render_only:
        render(runs, args.out)
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="duty-bench-"))
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO)}
    try:
        for size in args.sizes:
            corpus = materialize(size, work)
            for system, profile, embedder in PLAN[size]:
                if system not in args.systems or f"{size}:{system}:{profile}" in args.skip:
                    continue
                kb = work / f"kb-{size}-{system}-{profile}-{embedder}"
                shutil.rmtree(kb, ignore_errors=True)
                cmd = [sys.executable, "-m", "eval.bench", "worker", "--system", system, "--profile", profile, "--embedder", embedder,
                       "--corpus", str(corpus), "--kb", str(kb), "--queries", str(args.queries)]
                if system == "ours" and size == "23" and not args.no_quality:
                    cmd.append("--quality")
                warm = system == "ours" and profile == "default" and EVAL_CACHE.exists() and not args.cold
                if warm:
                    cmd += ["--seed-cache", str(EVAL_CACHE)]
                print(f"[bench] {size}: {system} {profile} {embedder} … (load {load_average()})", flush=True)
                proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
                line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
                if proc.returncode != 0 or line is None:
                    print(f"[bench] failed: {proc.stderr[-3000:]}", file=sys.stderr, flush=True)
                    continue
                result = {"size": size, "system": system, "profile": profile, "cache": "warm" if warm else "cold",
                          **json.loads(line[len("RESULT "):])}
                print(f"[bench] {json.dumps(result, ensure_ascii=False)}", flush=True)
                runs = [r for r in runs if (r["size"], r["system"], r["profile"], r.get("embedder")) !=
                        (size, system, profile, result.get("embedder"))] + [result]
                store.write_text(json.dumps(runs, ensure_ascii=False, indent=1), encoding="utf-8")
                render(runs, args.out)
                shutil.rmtree(kb, ignore_errors=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    render(runs, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
