"""The ``duty`` command: ingest policy texts, search, ask, chat, draft, serve and evaluate.

Heavy modules (Chroma, embedders, the API server) are imported inside the commands so that
``duty --help`` stays instant.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from assistant.errors import AssistantError

KEEP_ALIVE_S = 30  # seconds an idle HTTP connection stays open on the server (see serve)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="学校安全「一岗双责」政策助手：只依据政策原文作答，逐条给出可核验的引用。\n\n"
    "Example: duty ingest corpus/ && duty ask \"班主任的安全职责是什么？\" --role 班主任",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

KbOption = Annotated[Path | None, typer.Option("--kb", help="knowledge-base directory (default: $DUTY_KB)", show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="print machine-readable JSON (DESIGN §7 shapes)")]
RoleOption = Annotated[str | None, typer.Option("--role", "-r", help="asker's role: 教师 班主任 分管副校长 校长 教育局")]


def _settings(kb: Path | None):
    from pydantic import ValidationError

    from assistant.config import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise AssistantError(f"invalid setting {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc
    if kb is not None:
        settings = settings.model_copy(update={"kb": kb})
    return settings


def _assistant(kb: Path | None, *, ensure_corpus: bool = False):
    from assistant.pipeline import build_assistant

    assistant = build_assistant(_settings(kb))
    if ensure_corpus and assistant.kb.is_empty:
        with _progress() as progress:
            report = assistant.ensure_corpus(progress=progress)
        if report is not None:
            typer.echo(f"首次使用：已从内置 corpus/ 建立知识库（{len(report.added)} 个文件，{report.chunks_embedded} 个片段）。", err=True)
    return assistant


class _progress:
    """A rich progress bar fed by the library's progress(stage, done, total) callback."""

    def __enter__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
            transient=True, disable=not sys.stderr.isatty(), console=None,
        )
        self._bar.__enter__()
        self._tasks: dict[str, int] = {}
        return self

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self._tasks:
            self._tasks[stage] = self._bar.add_task(stage, total=total)
        self._bar.update(self._tasks[stage], completed=done, total=total)

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="files or folders (.md .txt .docx .pdf)", show_default=False)] = None,
    kb: KbOption = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="remove a document by file name (repeatable)")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="drop the index and re-embed everything (e.g. after changing DUTY_EMBEDDER)")] = False,
    bulk: Annotated[bool, typer.Option("--bulk", help="bulk profile for large corpora: no sentence vectors, parallel parsing (DUTY_BULK=1)")] = False,
    as_json: JsonOption = False,
) -> None:
    """Add or update policy files; unchanged files are skipped. Example: duty ingest corpus/ ../laws/"""
    if not paths and not remove:
        raise AssistantError("nothing to do: give files or folders to ingest, or --remove NAME")
    from assistant.index import IngestReport, rebuild_knowledge_base
    from assistant.pipeline import build_embedders, kb_options

    report = IngestReport()
    if rebuild:
        settings = _settings(kb)
        with _progress() as progress:
            primary, aux = build_embedders(settings)
            options = kb_options(settings) | ({"bulk": True} if bulk else {})
            report = rebuild_knowledge_base(settings.kb, primary, list(paths or []), aux_embedder=aux, progress=progress, **options)
    assistant = _assistant(kb)
    if bulk:
        assistant.kb.bulk = True
    if remove:
        removed = assistant.kb.remove(remove)
        report.removed, report.skipped = removed.removed, report.skipped + removed.skipped
    if paths and not rebuild:
        with _progress() as progress:
            added = assistant.ingest(list(paths), progress=progress)
        report.added, report.updated, report.unchanged = added.added, added.updated, added.unchanged
        report.skipped += added.skipped
        report.chunks_embedded, report.seconds = added.chunks_embedded, added.seconds
    if as_json:
        _print_json({
            "added": report.added, "updated": report.updated, "unchanged": report.unchanged, "removed": report.removed,
            "skipped": report.skipped, "chunks": report.chunks_embedded, "seconds": round(report.seconds, 3),
            "documents": len(assistant.kb.documents()),
        })
    else:
        for line in report.skipped:
            typer.echo(f"跳过 {line}", err=True)
        typer.echo(
            f"新增 {len(report.added)}，更新 {len(report.updated)}，未变 {len(report.unchanged)}，删除 {len(report.removed)}，"
            f"跳过 {len(report.skipped)}；向量化 {report.chunks_embedded} 个片段，用时 {report.seconds:.1f} 秒。"
            f"知识库共 {len(assistant.kb.documents())} 个文件：{assistant.kb.root}"
        )
    if report.skipped and not (report.added or report.updated or report.unchanged or report.removed):
        raise typer.Exit(1)


@app.command()
def docs(kb: KbOption = None, as_json: JsonOption = False) -> None:
    """List the documents in the knowledge base."""
    assistant = _assistant(kb)
    documents = assistant.kb.documents()
    if as_json:
        _print_json({"documents": [d.to_json() for d in documents]})
        return
    if not documents:
        typer.echo("知识库为空：运行 duty ingest corpus/ 添加政策文件。")
    for d in documents:
        note = f"（旧版本，已有 {d.superseded_by}）" if d.superseded_by else ""
        typer.echo(f"{d.title}{note}\t{d.kind}\t{d.chunks} 段\t{d.source}")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    k: Annotated[int, typer.Option("--k", help="number of articles to return (1-200)")] = 10,
    role: RoleOption = None,
    kb: KbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the articles that match a question. Example: duty search "校车驾驶人 资格" --k 5"""
    from assistant.schema import search_to_json

    assistant = _assistant(kb, ensure_corpus=True)
    hits = assistant.search(query, k=k, role=role)
    if as_json:
        _print_json(search_to_json(query, hits))
        return
    if not hits:
        typer.echo("没有找到相关条文。")
    for h in hits:
        typer.echo(f"[{h.rank}] 《{h.chunk.doc_title}》{h.chunk.section}  ({h.score:.4f})")
        typer.echo("    " + h.chunk.text.strip().replace("\n", "\n    ")[:400])


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="your question, in plain words")],
    role: RoleOption = None,
    mode: Annotated[str | None, typer.Option("--mode", help="extractive (default) or llm")] = None,
    kb: KbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer from the policy texts with exact citations. Example: duty ask "学生被欺凌，班主任该怎么做？" --role 班主任"""
    from assistant.schema import answer_to_json

    assistant = _assistant(kb, ensure_corpus=True)
    if not as_json:
        _ask_and_print(assistant, question, role=role, mode=mode)
        return
    _print_json(answer_to_json(assistant.ask(question, role=role, mode=mode)))


def _ask_and_print(assistant, question: str, *, role: str | None, mode: str | None):
    """Print the answer; in LLM mode as it streams (verified sentence by sentence), then its citations."""
    if (mode or assistant.settings.mode) != "llm":
        answer = assistant.ask(question, role=role, mode=mode)
        _print_answer(answer)
        return answer
    shown = ""
    answer = None
    for kind, value in assistant.ask_stream(question, role=role, mode=mode):
        if kind == "delta":
            typer.echo(value, nl=False)
            shown += value
        else:
            answer = value
    typer.echo("")
    if answer.answer != shown:  # the final, verified text is authoritative
        typer.echo(answer.answer)
    _print_answer(answer, with_text=False)
    return answer


def _print_answer(answer, *, with_text: bool = True) -> None:
    if with_text:
        typer.echo(answer.answer)
    if answer.citations:
        typer.echo("\n引用：")
        for c in answer.citations:
            typer.echo(f"[{c.n}] 《{c.doc_title}》{c.section}（{c.source}，字符 {c.start}-{c.end}）")
    for notice in answer.notices:
        typer.echo(f"提示：{notice}", err=True)


@app.command()
def chat(
    role: RoleOption = None,
    kb: KbOption = None,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="where 「帮我写述职报告……」 drafts are saved as .docx")] = Path("."),
) -> None:
    """Interactive chat in the terminal. Commands: /role 班主任 · /help · /quit

    「帮我写述职报告的履职情况部分，我们今年……」 writes a cited draft and saves it as .docx in --out-dir."""
    from assistant.chat import Conversation
    from assistant.config import ROLES

    assistant = _assistant(kb, ensure_corpus=True)
    if role is None:
        typer.echo("请选择您的角色：" + "  ".join(f"{i + 1}.{r}" for i, r in enumerate(ROLES)) + "  （直接回车跳过）")
        choice = _read_line("角色> ")
        if choice is None:
            return
        role = _pick_role(choice, ROLES)
    conversation = Conversation(role=role)
    typer.echo(f"当前角色：{role or '未设置'}。输入问题后回车；/role 班主任 切换角色，/quit 退出。")
    while True:
        line = _read_line("问> ")
        if line is None or line.strip() in {"/quit", "/exit", "/q"}:
            typer.echo("再见。")
            return
        line = line.strip()
        if not line:
            continue
        if line.startswith("/role"):
            conversation.role = _pick_role(line.removeprefix("/role").strip(), ROLES)
            typer.echo(f"当前角色：{conversation.role or '未设置'}")
            continue
        if line in {"/help", "/?"}:
            typer.echo("输入问题即可，例如：班主任的安全职责是什么？ /role 校长 切换角色，/quit 退出。")
            continue
        try:
            if _chat_draft(assistant, line, conversation.role, out_dir):
                continue
            query, role_now = assistant.resolve(conversation, line)
            answer = _ask_and_print(assistant, query, role=role_now, mode=None)
        except AssistantError as exc:
            typer.echo(f"错误：{exc}", err=True)
            continue
        conversation.record(line, query, answer)
        typer.echo("")


def _chat_draft(assistant, line: str, role: str | None, out_dir: Path) -> bool:
    """Answer a drafting request with the Markdown draft and a .docx in ``out_dir``; False for other lines."""
    from assistant.draft.chat import docx_filename, draft_from_chat
    from assistant.prompts import render

    made = draft_from_chat(assistant, line, role=role)
    if made is None:
        return False
    out_dir.mkdir(parents=True, exist_ok=True)
    path = _free_path(out_dir / docx_filename(made.draft))
    path.write_bytes(made.docx)
    typer.echo(made.markdown)
    for notice in made.draft.notices:
        typer.echo(f"提示：{notice}", err=True)
    typer.echo(render("draft_chat", "saved_line", path=path) + "\n")
    return True


def _free_path(path: Path) -> Path:
    """``path``, or ``name-2.docx``, ``name-3.docx``… when it exists already."""
    n = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def _read_line(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None


def _pick_role(choice: str, roles: tuple[str, ...]) -> str | None:
    choice = choice.strip()
    if not choice:
        return None
    if choice.isdigit() and 1 <= int(choice) <= len(roles):
        return roles[int(choice) - 1]
    from assistant.retrieve import canonical_role

    return canonical_role(choice)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on (0.0.0.0 for the whole network; then set DUTY_API_KEYS)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    kb: KbOption = None,
) -> None:
    """Start the HTTP API and the web chat at /; an empty knowledge base is first filled from corpus/.

    Example: duty serve --port 8000, then open http://127.0.0.1:8000/
    """
    import logging

    import uvicorn

    from api.app import create_app

    settings = _settings(kb)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"网页对话：http://{shown}:{port}/    API 文档：http://{shown}:{port}/docs    知识库：{settings.kb}")
    if settings.api_key_list or settings.admin_key_list:
        typer.echo("已配置 API 密钥：/v1 接口需带 Authorization: Bearer <密钥>。")
    else:
        typer.echo("未配置 API 密钥（DUTY_API_KEYS）：只接受本机（127.0.0.1 / ::1）的请求。")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    # Idle keep-alive connections are closed by the clients first: HTTP client pools (httpx, requests, proxies) drop idle
    # connections after 5 s or more, and a server closing at the same moment races a reused connection into a reset
    # (1 in ~10,000 requests under `make loadtest` with uvicorn's default of 5 s).
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", timeout_keep_alive=KEEP_ALIVE_S)


@app.command()
def draft(
    role: Annotated[str, typer.Option("--role", "-r", help="述职人角色：校长 分管副校长 班主任 教师 教育局")],
    unit: Annotated[str, typer.Option("--unit", help="单位名称，如 某某镇中心校")],
    year: Annotated[int, typer.Option("--year", help="述职年度，如 2026")],
    section: Annotated[str | None, typer.Option("--section", help="只写一部分：1-4 或 履职情况/工作成效/问题/打算")] = None,
    facts: Annotated[str | None, typer.Option("--facts", help="你的工作事实：文本文件，或 - 从标准输入读取（每行/每句一条）")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="写入 .docx 或 .md 文件（不给则在终端输出 Markdown）")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="template (default) or llm: the model writes prose, citations and facts verified")] = None,
    kb: KbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Draft a 述职报告 from your facts, every duty cited. Example: duty draft --role 校长 --unit 某某镇中心校 --year 2026 --facts facts.txt --out report.docx"""
    import time

    from assistant.draft import DraftRequest, draft_to_json, kinds_of, to_docx, to_markdown
    from assistant.ingest.loaders import decode_text

    if out is not None and out.suffix.lower() not in {".docx", ".md"}:
        raise AssistantError(f"--out {out}: use a .docx or .md file name")
    facts_text = ""
    if facts == "-":
        facts_text, _ = decode_text("<stdin>", sys.stdin.buffer.read())
    elif facts:
        if not Path(facts).is_file():
            raise AssistantError(f"facts file {facts} not found; give a text file or - for standard input")
        facts_text, _ = decode_text(facts, Path(facts).read_bytes())
    assistant = _assistant(kb, ensure_corpus=True)
    started = time.perf_counter()
    result = assistant.drafter(mode).draft(DraftRequest(role, unit, year, facts_text, section))
    kinds = kinds_of(assistant.kb, result)
    markdown = to_markdown(result, kind_of=kinds)
    if out is not None:
        if out.suffix.lower() == ".docx":
            out.write_bytes(to_docx(result, kind_of=kinds))
        else:
            out.write_text(markdown, encoding="utf-8")
        typer.echo(f"已生成 {out}（{len(result.sections)} 个部分，{len(result.citations)} 条引用，用时 {time.perf_counter() - started:.1f} 秒）。", err=as_json)
    if as_json:
        _print_json(draft_to_json(result, markdown=markdown))
    elif out is None:
        typer.echo(markdown)
    for notice in result.notices:
        typer.echo(f"提示：{notice}", err=True)


@app.command(name="eval")
def evaluate(
    qa: Annotated[Path | None, typer.Option("--qa", help="question set (JSON lines, DESIGN §8); default eval/dev.jsonl")] = None,
    hits_out: Annotated[Path | None, typer.Option("--hits-out", help="write one JSON line per question: id, question, hits, answer")] = None,
    kb: KbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Measure retrieval and answers on a question set. Example: duty eval --qa eval/dev.jsonl --json"""
    from eval.harness import default_question_file, evaluate_assistant, format_summary

    assistant = _assistant(kb, ensure_corpus=True)
    summary = evaluate_assistant(assistant, qa or default_question_file(), hits_out=hits_out)
    if as_json:
        _print_json(summary)
    else:
        typer.echo(format_summary(summary))


def main() -> None:
    """Entry point: library errors become one line on stderr and exit status 1."""
    try:
        app(standalone_mode=True)
    except AssistantError as exc:
        typer.echo(f"错误：{exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("已中断。", err=True)
        sys.exit(130)
    except Exception as exc:  # an unexpected failure: one line, details only on request
        if os.environ.get("DUTY_DEBUG"):
            raise
        typer.echo(f"内部错误：{type(exc).__name__}: {exc}（设置 DUTY_DEBUG=1 查看详情）", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
