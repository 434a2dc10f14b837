"""Validate the evaluation question set (eval/dev.jsonl) against the source texts.

Format (DESIGN.md §8): one JSON object per line with exactly the fields
``id, kind, role, question, gold``; ``gold`` is a list of ``{"file", "phrase"}``
where ``file`` is a source file's base name and ``phrase`` an exact substring
(8-30 characters, within one line) of that file.

Checks:
* every line is valid JSON with exactly those fields and the right types;
* ids are unique (and look like ``q001``); questions are not duplicated;
* ``kind`` and ``role`` come from the allowed sets;
* each gold file exists in one of the source directories;
* each phrase is 8-30 characters and an exact substring of its file;
* ``kind == "unanswerable"`` if and only if ``gold`` is empty;
* low verbatim overlap: the longest common substring between the question
  and every line containing a gold phrase is at most 8 characters;
* the set holds at least 150 questions, at least 20 of them unanswerable.

Usage (from the repository root)::

    python3 eval/check_questions.py [--qa eval/dev.jsonl] [--sources DIR ...]

Standard library only; importable as ``eval.check_questions``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_QA = REPO_ROOT / "eval" / "dev.jsonl"
DEFAULT_SOURCE_DIRS: tuple[Path, ...] = (
    REPO_ROOT.parent / "shared" / "seeds",
    REPO_ROOT.parent / "shared" / "policy-corpus" / "laws",
)

FIELDS = ("id", "kind", "role", "question", "gold")
GOLD_FIELDS = ("file", "phrase")
KINDS = frozenset({"duty", "procedure", "fact", "role", "report", "unanswerable"})
ROLES = frozenset({"教师", "班主任", "分管副校长", "校长", "教育局", "家长", ""})
ID_PATTERN = re.compile(r"^q\d{3,}$")

MIN_PHRASE_CHARS = 8
MAX_PHRASE_CHARS = 30
MAX_OVERLAP_CHARS = 8
MIN_QUESTIONS = 150
MIN_UNANSWERABLE = 20


def longest_common_substring(a: str, b: str) -> str:
    """Return the longest common substring of ``a`` and ``b`` (first found on ties)."""
    if not a or not b:
        return ""
    best_len = 0
    best_end = 0  # end index (exclusive) in ``a``
    prev = [0] * (len(b) + 1)
    for i, ca in enumerate(a, start=1):
        cur = [0] * (len(b) + 1)
        for j, cb in enumerate(b, start=1):
            if ca == cb:
                length = prev[j - 1] + 1
                cur[j] = length
                if length > best_len:
                    best_len = length
                    best_end = i
        prev = cur
    return a[best_end - best_len : best_end]


class _SourceIndex:
    """Locates gold files by base name across the source directories; caches their text."""

    def __init__(self, source_dirs: Iterable[Path | str]):
        self.dirs = [Path(d) for d in source_dirs]
        self._text: dict[str, str | None] = {}
        self._lines: dict[str, list[str]] = {}
        self.load_errors: dict[str, str] = {}

    def text(self, name: str) -> str | None:
        if name in self._text:
            return self._text[name]
        content: str | None = None
        for d in self.dirs:
            candidate = d / name
            if candidate.is_file():
                try:
                    content = candidate.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    self.load_errors[name] = f"{candidate}: {exc}"
                    content = None
                break
        self._text[name] = content
        if content is not None:
            self._lines[name] = content.splitlines()
        return content

    def lines_containing(self, name: str, phrase: str) -> list[str]:
        return [line for line in self._lines.get(name, []) if phrase in line]


def _check_record(
    rec: object,
    where: str,
    sources: _SourceIndex,
    max_overlap: int,
) -> list[str]:
    """Field/type/value checks for one parsed record (ids are checked by the caller)."""
    problems: list[str] = []
    if not isinstance(rec, dict):
        return [f"{where}: record is not a JSON object"]

    keys = set(rec)
    missing = [f for f in FIELDS if f not in keys]
    extra = sorted(keys - set(FIELDS))
    if missing:
        problems.append(f"{where}: missing field(s) {missing}")
    if extra:
        problems.append(f"{where}: unexpected field(s) {extra}")

    for field in ("id", "kind", "role", "question"):
        if field in rec and not isinstance(rec[field], str):
            problems.append(f"{where}: field {field!r} must be a string, got {type(rec[field]).__name__}")

    rid = rec.get("id")
    if isinstance(rid, str) and not ID_PATTERN.match(rid):
        problems.append(f"{where}: id {rid!r} does not look like 'q001'")

    kind = rec.get("kind")
    if isinstance(kind, str) and kind not in KINDS:
        problems.append(f"{where}: kind {kind!r} not in {sorted(KINDS)}")

    role = rec.get("role")
    if isinstance(role, str) and role not in ROLES:
        problems.append(f"{where}: role {role!r} not in {sorted(ROLES)}")

    question = rec.get("question")
    if isinstance(question, str) and not question.strip():
        problems.append(f"{where}: question is empty")

    gold = rec.get("gold")
    if "gold" in rec and not isinstance(gold, list):
        problems.append(f"{where}: field 'gold' must be a list, got {type(gold).__name__}")
        return problems
    if not isinstance(gold, list):
        return problems

    if isinstance(kind, str):
        if kind == "unanswerable" and gold:
            problems.append(f"{where}: unanswerable question must have empty gold")
        if kind != "unanswerable" and not gold:
            problems.append(f"{where}: empty gold but kind is {kind!r} (only 'unanswerable' may have none)")

    seen_gold: set[tuple[str, str]] = set()
    for gi, entry in enumerate(gold):
        gwhere = f"{where}: gold[{gi}]"
        if not isinstance(entry, dict):
            problems.append(f"{gwhere}: not a JSON object")
            continue
        gkeys = set(entry)
        if gkeys != set(GOLD_FIELDS):
            problems.append(f"{gwhere}: fields must be exactly {list(GOLD_FIELDS)}, got {sorted(gkeys)}")
        fname = entry.get("file")
        phrase = entry.get("phrase")
        if not isinstance(fname, str) or not isinstance(phrase, str):
            problems.append(f"{gwhere}: 'file' and 'phrase' must be strings")
            continue
        if (fname, phrase) in seen_gold:
            problems.append(f"{gwhere}: duplicate gold entry ({fname}, {phrase!r})")
        seen_gold.add((fname, phrase))

        n = len(phrase)
        if n < MIN_PHRASE_CHARS or n > MAX_PHRASE_CHARS:
            problems.append(
                f"{gwhere}: phrase length {n} outside {MIN_PHRASE_CHARS}-{MAX_PHRASE_CHARS}: {phrase!r}"
            )
        if "\n" in phrase or "\r" in phrase:
            problems.append(f"{gwhere}: phrase spans a line break: {phrase!r}")

        if "/" in fname or "\\" in fname or fname in {"", ".", ".."}:
            problems.append(f"{gwhere}: gold file must be a base name, got {fname!r}")
            continue
        text = sources.text(fname)
        if text is None:
            if fname in sources.load_errors:
                problems.append(f"{gwhere}: gold file unreadable: {sources.load_errors[fname]}")
            else:
                problems.append(f"{gwhere}: gold file not found in source dirs: {fname!r}")
            continue
        if phrase not in text:
            problems.append(f"{gwhere}: phrase not found in {fname}: {phrase!r}")
            continue

        if isinstance(question, str) and question:
            lines = sources.lines_containing(fname, phrase)
            if not lines:
                problems.append(f"{gwhere}: phrase is not inside a single line of {fname}: {phrase!r}")
                continue
            worst = max((longest_common_substring(question, line) for line in lines), key=len)
            if len(worst) > max_overlap:
                problems.append(
                    f"{gwhere}: verbatim overlap {len(worst)} > {max_overlap} chars between question "
                    f"and the gold line in {fname}: {worst!r}"
                )
    return problems


def check_question_set(
    path: Path | str,
    source_dirs: Sequence[Path | str] | None = None,
    *,
    min_questions: int = MIN_QUESTIONS,
    min_unanswerable: int = MIN_UNANSWERABLE,
    max_overlap: int = MAX_OVERLAP_CHARS,
) -> list[str]:
    """Validate the question set at ``path``; return a list of problems (empty when valid)."""
    path = Path(path)
    dirs = list(source_dirs) if source_dirs else list(DEFAULT_SOURCE_DIRS)
    problems: list[str] = []
    for d in dirs:
        if not Path(d).is_dir():
            problems.append(f"source dir not found: {d}")

    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return problems + [f"{path}: question file not found"]
    except (OSError, UnicodeDecodeError) as exc:
        return problems + [f"{path}: cannot read question file: {exc}"]

    sources = _SourceIndex(dirs)
    seen_ids: dict[str, int] = {}
    seen_questions: dict[str, str] = {}
    n_questions = 0
    n_unanswerable = 0

    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # final newline
    for lineno, line in enumerate(lines, start=1):
        where = f"{path.name}:{lineno}"
        if not line.strip():
            problems.append(f"{where}: empty line")
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: invalid JSON: {exc}")
            continue
        n_questions += 1
        if isinstance(rec, dict):
            rid = rec.get("id")
            if isinstance(rid, str):
                where = f"{where} ({rid})"
                if rid in seen_ids:
                    problems.append(f"{where}: duplicate id {rid!r} (first on line {seen_ids[rid]})")
                else:
                    seen_ids[rid] = lineno
            q = rec.get("question")
            if isinstance(q, str) and q.strip():
                key = q.strip()
                if key in seen_questions:
                    problems.append(f"{where}: duplicate question (same text as {seen_questions[key]})")
                else:
                    seen_questions[key] = str(rid)
            if rec.get("kind") == "unanswerable":
                n_unanswerable += 1
        problems.extend(_check_record(rec, where, sources, max_overlap))

    if n_questions < min_questions:
        problems.append(f"{path.name}: only {n_questions} questions, need at least {min_questions}")
    if n_unanswerable < min_unanswerable:
        problems.append(
            f"{path.name}: only {n_unanswerable} unanswerable questions, need at least {min_unanswerable}"
        )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate the dev question set against the source texts.")
    parser.add_argument("--qa", type=Path, default=DEFAULT_QA, help=f"question file (default: {DEFAULT_QA})")
    parser.add_argument(
        "--sources",
        type=Path,
        action="append",
        metavar="DIR",
        help="directory holding gold files; repeatable (default: ../shared/seeds and ../shared/policy-corpus/laws)",
    )
    parser.add_argument("--min-questions", type=int, default=MIN_QUESTIONS, help="smallest acceptable set (default %(default)s)")
    parser.add_argument("--min-unanswerable", type=int, default=MIN_UNANSWERABLE, help="(default %(default)s)")
    args = parser.parse_args(argv)
    problems = check_question_set(args.qa, args.sources, min_questions=args.min_questions, min_unanswerable=args.min_unanswerable)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) in {args.qa}", file=sys.stderr)
        return 1
    print(f"OK: {args.qa} passes all checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
