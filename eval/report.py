"""``python -m eval.report`` (``make eval``): our assistant and the naive baselines, side by side, in one run.

Builds (or reuses) a knowledge base of the evaluation corpus (../shared/seeds + ../shared/policy-corpus/laws),
evaluates our pipeline and both naive variants on the same questions, prints the tables and writes
``report.md``, ``recall.png`` and ``summary.json`` to the output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from eval.harness import (
    KIND_ORDER,
    default_question_file,
    evaluate_assistant,
    fmt,
    format_summary,
    load_questions,
    text_table,
)

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DEFAULT_SOURCES = (SHARED / "seeds", SHARED / "policy-corpus" / "laws")
DEFAULT_KB = REPO / ".eval.kb"  # kept apart from the product's KB; ignored by git (*.kb/)
DEFAULT_OUT = REPO / "eval" / "reports"
# Question sets beyond the dev set for the refusal checks (eval/README.md says which of them were tuned on).
DEFAULT_PROBES = tuple(REPO / "eval" / f"refusal_probe{n}.jsonl" for n in ("", "2", "3", "4", "5"))
HEADLINE = (("R@1", "recall@1"), ("R@5", "recall@5"), ("R@10", "recall@10"), ("MRR@10", "mrr@10"))
KIND_LABELS = {"duty": "职责", "procedure": "流程", "fact": "事实", "role": "岗位清单", "report": "述职报告范文", "unanswerable": "无答案"}


# ---------------------------------------------------------------------------------------------- running
class _Progress:
    """Progress on stderr, at most every 10 s per stage (and at the end of a stage with a known total)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int | None = None) -> None:
        now = time.monotonic()
        if (total is not None and done >= total) or now - self._last.get(stage, 0.0) > 10:
            self._last[stage] = now
            print(f"  {stage} {done}" + (f"/{total}" if total is not None else ""), file=sys.stderr, flush=True)


def prepare_assistant(kb: Path, sources: Sequence[Path], embedder: str | None):
    """The assistant over a KB holding exactly the files under ``sources`` (ingested incrementally)."""
    from assistant.config import Settings
    from assistant.errors import KnowledgeBaseError
    from assistant.ingest import discover_files
    from assistant.pipeline import build_assistant

    settings = Settings(kb=kb, **({"embedder": embedder} if embedder else {}))
    assistant = build_assistant(settings)
    report = assistant.ingest(list(sources), progress=_Progress())
    if report.skipped:
        print(f"  skipped: {report.skipped}", file=sys.stderr)
    expected = {p.name for p in discover_files(list(sources))[0]}
    extra = {d.source for d in assistant.kb.docs.values()} - expected
    if extra:
        assistant.close()
        raise KnowledgeBaseError(f"the knowledge base at {kb} also holds {sorted(extra)[:3]}…; pass a fresh --kb folder for evaluation")
    return assistant


def run(kb: Path, qa: Path, sources: Sequence[Path], *, embedder: str | None = None, skip_baseline: bool = False,
        hits_out: Path | None = None, probes: Sequence[Path] = ()) -> dict:
    """Evaluate ours (and the baselines); returns ``{"systems": {name: summary}, "timings": {...}, ...}``."""
    timings: dict[str, float] = {}
    load_start = _load_average()
    started = time.perf_counter()
    print(f"knowledge base: {kb}", file=sys.stderr)
    assistant = prepare_assistant(kb, sources, embedder)
    timings["ingest_s"] = time.perf_counter() - started
    try:
        print(f"evaluating ours ({assistant.embedder.name}) …", file=sys.stderr)
        t = time.perf_counter()
        systems = {"ours": evaluate_assistant(assistant, qa, hits_out=hits_out)}
        timings["ours_s"] = time.perf_counter() - t
        probe_summaries = []
        for probe in probes:
            print(f"evaluating ours on the refusal probe {_relative(probe)} …", file=sys.stderr)
            probe_summaries.append({**evaluate_assistant(assistant, probe), "qa": _relative(probe)})
        if not skip_baseline:
            from eval.baseline import run_baselines

            print("evaluating the naive baselines (splitting, embedding, Chroma) …", file=sys.stderr)
            t = time.perf_counter()
            texts = {doc.source: doc.text for doc in assistant.kb.docs.values()}
            progress, embedded = _Progress(), [0]

            def count(n: int) -> None:
                embedded[0] += n
                progress("baseline chunks embedded (not cached)", embedded[0])

            systems.update(run_baselines(texts, assistant.embedder, load_questions(qa),
                                         cache_path=assistant.kb.root / "embed-cache.sqlite", progress=count))
            timings["baselines_s"] = time.perf_counter() - t
        chunks = len(assistant.kb.chunks)
    finally:
        assistant.close()
    timings["total_s"] = time.perf_counter() - started
    return {"generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "qa": _relative(qa),
            "kb_chunks": chunks, "systems": systems, "timings": timings, "cpus": os.cpu_count(),
            "probes": probe_summaries,
            "load_start": load_start, "load_end": _load_average()}


def _busy_warning(result: dict) -> str:
    loads = [v for v in (result.get("load_start"), result.get("load_end")) if v is not None]
    if loads and result.get("cpus") and max(loads) > result["cpus"]:
        return " **The machine was busy during this run: these latencies are not representative; re-run on a quiet machine.**"
    return ""


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return None


def _load(result: dict, key: str) -> str:
    value = result.get(key)
    return "?" if value is None else f"{value:.1f}"


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------- tables
def _baselines(systems: dict) -> list[str]:
    return [name for name in systems if name != "ours"]


def _best_baseline(systems: dict, key: str, group: str) -> float | None:
    values = [_metric(systems[name], group, key) for name in _baselines(systems)]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _metric(summary: dict, group: str, key: str):
    if group == "overall":
        return summary["overall"].get(key)
    if group in summary["splits"]:
        return summary["splits"][group].get(key)
    return summary["by_kind"].get(group, {}).get(key)


def _delta(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None else f"{a - b:+.3f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or not b else f"{a / b:.2f}×"


def comparison_rows(systems: dict) -> tuple[list[str], list[list[str]]]:
    """Retrieval metrics × (overall, dev, holdout): every system, and ours against the best naive variant."""
    names = list(systems)
    headers = ["metric", "part", *names]
    if _baselines(systems):
        headers += ["ours − best naive", "ours ÷ best naive"]
    rows = []
    for label, key in HEADLINE:
        for group in ("overall", "dev", "holdout"):
            ours = _metric(systems["ours"], group, key)
            row = [label, group, *(fmt(_metric(systems[n], group, key)) for n in names)]
            if _baselines(systems):
                best = _best_baseline(systems, key, group)
                row += [_delta(ours, best), _ratio(ours, best)]
            rows.append(row)
    return headers, rows


def kind_rows(systems: dict) -> tuple[list[str], list[list[str]]]:
    """Per question kind: Recall@5 and MRR@10 of every system, and ours' refusals."""
    names = list(systems)
    headers = ["kind", "n", *(f"R@5 {n}" for n in names), *(f"MRR {n}" for n in names), "refused (ours)"]
    rows = []
    for kind, m in systems["ours"]["by_kind"].items():
        refused = m.get("refusal_recall") if kind == "unanswerable" else m.get("false_refusal_rate")
        rows.append([kind, str(m["n"]), *(fmt(_metric(systems[n], kind, "recall@5")) for n in names),
                     *(fmt(_metric(systems[n], kind, "mrr@10")) for n in names), fmt(refused)])
    return headers, rows


def _gap(value) -> str:
    if not value:
        return "–"
    gap, low, high = value
    return f"{gap:+.3f} [{low:+.3f}, {high:+.3f}]"


def gap_rows(systems: dict) -> tuple[list[str], list[list[str]]]:
    """Holdout − dev per system with its bootstrap interval: the naive recipes are tuned on nothing, so their
    gaps show how much harder one part is than the other by the draw of the split alone."""
    headers = ["system", "R@5 holdout − dev [95% interval]", "MRR@10 holdout − dev [95% interval]"]
    rows = [[name, _gap(s.get("split_gaps", {}).get("recall@5")), _gap(s.get("split_gaps", {}).get("mrr@10"))]
            for name, s in systems.items()]
    return headers, rows


def batch_rows(systems: dict) -> tuple[list[str], list[list[str]]]:
    """Retrieval per round of questions and split: was the tuning on the first round's dev part carried over to
    questions written later? The naive baselines, tuned on nothing, show how hard each part is."""
    names = list(systems)
    headers = ["questions", "part", "answerable", *(f"R@5 {n}" for n in names), *(f"MRR {n}" for n in names)]
    rows = []
    for batch, splits in systems["ours"].get("by_batch", {}).items():
        for split, m in splits.items():
            if not m.get("answerable"):
                continue
            parts = [systems[n].get("by_batch", {}).get(batch, {}).get(split, {}) for n in names]
            rows.append([batch, split, str(m["answerable"]), *(fmt(p.get("recall@5")) for p in parts),
                         *(fmt(p.get("mrr@10")) for p in parts)])
    return headers, rows


def answer_rows(ours: dict) -> tuple[list[str], list[list[str]]]:
    """Refusal and citation metrics of ours per part."""
    headers = ["part", "n", "refused unanswerable (recall)", "refusal precision", "false refusals", "citations",
               "exact vs KB text", "exact vs raw file"]
    groups = [("overall", ours["overall"]), *ours["splits"].items()]
    rows = [[name, str(m["n"]), fmt(m.get("refusal_recall")), fmt(m.get("refusal_precision")), fmt(m.get("false_refusal_rate")),
             str(m.get("citations", "–")), fmt(m.get("citation_exactness")),
             f"{fmt(m.get('citation_exactness_raw'))} ({m.get('citations_raw_checked', 0)} checkable)"] for name, m in groups]
    return headers, rows


def latency_rows(systems: dict) -> tuple[list[str], list[list[str]]]:
    """Wall-clock and CPU-time percentiles of search and ask, per system."""
    headers = ["system", "search p50", "search p95", "ask p50", "ask p95",
               "search CPU p50", "search CPU p95", "ask CPU p50", "ask CPU p95"]
    rows = []
    for name, s in systems.items():
        o = s["overall"]
        cells = [o.get(key, {}).get(q) for key in ("search_ms", "ask_ms", "search_cpu_ms", "ask_cpu_ms") for q in ("p50", "p95")]
        rows.append([name, *(fmt(c, 1) for c in cells)])
    return headers, rows


def probe_rows(probes: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """Ours on each refusal probe set."""
    headers = ["question set", "questions", "answerable", "unanswerable", "refused unanswerable", "false refusals", "Recall@5",
               "MRR@10", "citation exactness"]
    rows = []
    for probe in probes:
        o = probe["overall"]
        rows.append([f"`{probe['qa']}`", str(o["n"]), str(o["answerable"]), str(o["unanswerable"]), fmt(o.get("refusal_recall")),
                     fmt(o.get("false_refusal_rate")), fmt(o.get("recall@5")), fmt(o.get("mrr@10")), fmt(o.get("citation_exactness"))])
    return headers, rows


def target_rows(systems: dict, probes: Sequence[dict] = ()) -> tuple[list[str], list[list[str]]]:
    """The targets of issue 3 against this run (the refusal targets also on each probe set that ran)."""
    ours = systems["ours"]
    dev, hold, overall = ours["splits"]["dev"], ours["splits"]["holdout"], ours["overall"]
    checks: list[tuple[str, float | None, float, bool]] = [  # (label, measured, bound, measured must be ≥ bound)
        ("Recall@5 (dev) ≥ 0.95", dev["recall@5"], 0.95, True),
        ("MRR@10 (dev) ≥ 0.85", dev["mrr@10"], 0.85, True),
        ("Recall@5 holdout − dev ≥ −0.05", _sub(hold["recall@5"], dev["recall@5"]), -0.05, True),
        ("MRR@10 holdout − dev ≥ −0.05", _sub(hold["mrr@10"], dev["mrr@10"]), -0.05, True),
        ("unanswerable refused ≥ 0.90", overall.get("refusal_recall"), 0.90, True),
        ("answerable refused ≤ 0.05", overall.get("false_refusal_rate"), 0.05, False),
        ("citation exactness = 1.00", overall.get("citation_exactness"), 1.0, True),
        ("search p95 ≤ 50 ms (wall clock)", overall["search_ms"]["p95"], 50.0, False),
        ("ask p95 ≤ 150 ms (wall clock)", overall.get("ask_ms", {}).get("p95"), 150.0, False),
        ("search p95 ≤ 50 ms (CPU time)", overall.get("search_cpu_ms", {}).get("p95"), 50.0, False),
        ("ask p95 ≤ 150 ms (CPU time)", overall.get("ask_cpu_ms", {}).get("p95"), 150.0, False),
    ]
    for i, probe in enumerate(probes):
        name = Path(probe["qa"]).stem
        checks.insert(6 + 2 * i, (f"unanswerable refused ≥ 0.90 ({name})", probe["overall"].get("refusal_recall"), 0.90, True))
        checks.insert(7 + 2 * i, (f"answerable refused ≤ 0.05 ({name})", probe["overall"].get("false_refusal_rate"), 0.05, False))
    if _baselines(systems):
        best = _best_baseline(systems, "recall@5", "overall")
        checks.insert(4, ("Recall@5 − best naive ≥ +0.15 (overall)", _sub(overall["recall@5"], best), 0.15, True))
    rows = []
    for label, value, bound, at_least in checks:
        ok = value is not None and (value >= bound - 1e-9 if at_least else value <= bound + 1e-9)
        rows.append([label, fmt(value, 1 if bound > 1 else 3), "met" if ok else "NOT met"])
    return ["target", "measured", "status"], rows


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(result: dict, chart: str | None) -> str:
    """The report: headline comparison, per kind, answers, latency, targets."""
    systems = result["systems"]
    ours = systems["ours"]
    t = result["timings"]
    overall = ours["overall"]
    parts = [
        "# Evaluation report",
        "",
        f"Generated {result['generated']} by `python -m eval.report` (`make eval`). Questions: `{result['qa']}` — "
        f"{overall['n']} ({overall['answerable']} answerable, {overall['unanswerable']} unanswerable); "
        f"fixed split: ids divisible by 5 are held aside (holdout {ours['splits']['holdout']['n']}, dev {ours['splits']['dev']['n']}). "
        f"Embedder `{ours.get('embedder')}`; knowledge base of {ours.get('documents')} documents, {result['kb_chunks']} chunks"
        + (f"; naive baseline {systems[_baselines(systems)[0]].get('chunks')} chunks (500/50 splitter)." if _baselines(systems) else ".")
        + f" Run time {t['total_s']:.0f} s (ingest {t['ingest_s']:.0f} s, ours {t['ours_s']:.0f} s"
        + (f", baselines {t['baselines_s']:.0f} s)." if "baselines_s" in t else ")."),
        "",
        "A retrieved passage hits a gold item when it comes from the gold file and contains the gold phrase verbatim. "
        "Recall@k is the share of a question's gold items hit in the top k (averaged over answerable questions); "
        "MRR@10 uses the first passage hitting any gold item.",
        "",
        "## Retrieval: ours vs the naive recipe",
        "",
        markdown_table(*comparison_rows(systems)),
        "",
    ]
    if chart:
        parts += [f"![Recall@k, ours vs naive baselines]({chart})", ""]
    if len(ours.get("by_batch", {})) > 1:
        parts += ["## Per round of questions", "", markdown_table(*batch_rows(systems)), "",
                  "Questions q300–q499 were written in round 4 from the texts alone, without running the assistant, after the "
                  "ranking had been tuned on the dev part of q001–q299 (eval/README.md).", ""]
    parts += ["## Per question kind", "", markdown_table(*kind_rows(systems)), "",
              "`refused (ours)`: share refused — for `unanswerable` that is the refusal recall, for the others the false-refusal rate.", "",
              "## Answers (ours): refusals and citations", "", markdown_table(*answer_rows(ours)), "",
              "Citation exactness: share of citations whose quote is an exact substring of the cited document's text as stored in the "
              "KB, and of the raw file on disk (plain-text files only; the loader normalises whitespace, so quotes across such spots "
              "can differ from the raw bytes).", "",
              "## Latency (ms, after warm-up)", "", markdown_table(*latency_rows(systems)), "",
              f"Load average (1 min) at start / end of the run: {_load(result, 'load_start')} / {_load(result, 'load_end')} on "
              f"{result.get('cpus', '?')} CPUs. Wall clock includes waiting for the CPU; CPU time excludes that wait but still "
              "grows on a contended or virtualised machine (shared caches, stolen time)." + _busy_warning(result), "",
              *(["## Refusal probes", "", "Question sets beyond the dev set, each written blind and not changed since; "
                 "eval/README.md says when each was written and which were later tuned on.", "",
                 markdown_table(*probe_rows(result["probes"])), ""] if result.get("probes") else []),
              "## Targets (issue 3)", "", markdown_table(*target_rows(systems, result.get("probes", ()))), "",
              "### The dev / holdout gap", "", markdown_table(*gap_rows(systems)), "",
              "Intervals: 2,000 bootstrap resamples of the questions in each part. The naive recipes are tuned on nothing, so "
              "their gaps show how much the draw of the split alone separates the parts.", ""]
    return "\n".join(parts)


def format_console(result: dict) -> str:
    systems = result["systems"]
    blocks = [format_summary(systems["ours"]), "", text_table(*comparison_rows(systems)), "", text_table(*kind_rows(systems)),
              "", text_table(*latency_rows(systems)), "", text_table(*target_rows(systems, result.get("probes", ()))),
              "", f"run time: {result['timings']['total_s']:.0f} s"]
    return "\n".join(blocks)


# ---------------------------------------------------------------------------------------------- chart
def _cjk_font() -> str | None:
    """A font with Chinese glyphs (Noto Sans CJK preferred), or None to fall back to English labels."""
    from matplotlib import font_manager

    names = {font.name for font in font_manager.fontManager.ttflist}
    for name in ("Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei", "PingFang SC"):
        if name in names:
            return name
    return None


def plot_recall(systems: dict, path: Path) -> None:
    """Recall@k (k = 1..10) of every system: overall, then one panel per answerable question kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = _cjk_font()
    if font:
        plt.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
        plt.rcParams["axes.unicode_minus"] = False
    kinds = [k for k in systems["ours"]["by_kind"] if systems["ours"]["by_kind"][k]["answerable"]]
    kinds.sort(key=lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else len(KIND_ORDER))
    panels = [("overall", "overall" + (" 全部" if font else ""))]
    panels += [(k, f"{k} {KIND_LABELS.get(k, '')}" if font else k) for k in kinds]
    columns = 3
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(11, 3.3 * rows), sharey=True, squeeze=False)
    styles = {"ours": ("#c0392b", "o", 2.2), "naive-dense": ("#7f8c8d", "s", 1.4), "naive-hybrid": ("#2980b9", "^", 1.4)}
    for ax, (group, title) in zip(axes.flat, panels, strict=False):
        for name, summary in systems.items():
            curve = (summary["overall"] if group == "overall" else summary["by_kind"].get(group, {})).get("recall_curve")
            if not curve:
                continue
            color, marker, width = styles.get(name, ("#333333", ".", 1.2))
            ax.plot(range(1, len(curve) + 1), [c or 0 for c in curve], color=color, marker=marker, markersize=3, linewidth=width, label=name)
        ours = systems["ours"]["overall"] if group == "overall" else systems["ours"]["by_kind"][group]
        ax.set_title(f"{title} (n={ours['answerable']})", fontsize=10)
        ax.set_xticks(range(1, 11))
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("Recall@k")
    for ax in axes[-1, :]:
        ax.set_xlabel("k")
    axes.flat[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Recall@k — {systems['ours'].get('embedder', '')}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- entry
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.report", description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, default=DEFAULT_KB, help=f"evaluation knowledge base (default {_relative(DEFAULT_KB)})")
    parser.add_argument("--qa", type=Path, default=default_question_file(), help="question set (default eval/dev.jsonl)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder (default eval/reports)")
    parser.add_argument("--sources", type=Path, nargs="+", default=list(DEFAULT_SOURCES), help="corpus folders/files to evaluate on")
    parser.add_argument("--embedder", choices=["auto", "e5", "use", "st", "fake"], help="override DUTY_EMBEDDER")
    parser.add_argument("--skip-baseline", action="store_true", help="evaluate ours only")
    parser.add_argument("--hits-out", type=Path, help="also write ours' per-question hits (JSON lines)")
    parser.add_argument("--probe", type=Path, nargs="*", help="refusal probe sets evaluated beside (default with the dev set: "
                        "eval/refusal_probe.jsonl, refusal_probe2.jsonl and refusal_probe3.jsonl)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.sources if not p.exists()]
    if missing:
        parser.error(f"corpus not found: {', '.join(missing)} (the evaluation reads ../shared)")
    from assistant.errors import AssistantError

    try:
        result = run(args.kb, args.qa, args.sources, embedder=args.embedder, skip_baseline=args.skip_baseline, hits_out=args.hits_out,
                     probes=args.probe if args.probe is not None else
                     [p for p in DEFAULT_PROBES if p.exists()] if args.qa.resolve() == default_question_file().resolve() else [])
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    plot_recall(result["systems"], args.out / "recall.png")
    (args.out / "report.md").write_text(render_markdown(result, "recall.png"), encoding="utf-8")
    (args.out / "summary.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(format_console(result))
    print(f"\nwrote {_relative(args.out / 'report.md')}, {_relative(args.out / 'recall.png')}, {_relative(args.out / 'summary.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
