"""Shared fixtures. The real-law knowledge base is built once per test session with the fake embedder;
tests that exercise a real embedder build their own, small ones."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.embed import FakeEmbedder
from assistant.pipeline import Assistant, build_assistant

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
LAWS = SHARED / "policy-corpus" / "laws"
SEEDS = SHARED / "seeds"
CORPUS = REPO / "corpus"


def law(name_prefix: str) -> Path:
    """The shared law file whose name starts with ``name_prefix``."""
    matches = sorted(LAWS.glob(f"{name_prefix}*.md"))
    assert matches, f"no law file starting with {name_prefix} in {LAWS}"
    return matches[0]


def make_assistant(kb_dir: Path, **overrides) -> Assistant:
    settings = Settings(kb=kb_dir, embedder="fake", _env_file=None, **overrides)
    return build_assistant(settings, embedder=FakeEmbedder())


def assistant_over(folder: Path, docs: dict[str, str], **overrides) -> Assistant:
    """An assistant (fake embedder) with a few hand-written documents written to ``folder`` and ingested into
    ``folder/kb``. The caller closes it."""
    paths = []
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
        paths.append(folder / name)
    assistant = make_assistant(folder / "kb", **overrides)
    assistant.ingest(paths)
    return assistant


@pytest.fixture(scope="session")
def laws_kb_dir(tmp_path_factory) -> Path:
    """A knowledge base of the customer's document and the 22 shared laws (fake embedder), built once."""
    if not LAWS.is_dir():
        pytest.fail(f"shared law texts not found at {LAWS}; tests read them from ../shared")
    root = tmp_path_factory.mktemp("laws-kb")
    assistant = make_assistant(root)
    report = assistant.ingest([SEEDS, LAWS])
    assert len(report.added) == 23, report.skipped
    assistant.close()
    return root


@pytest.fixture(scope="session")
def laws_assistant(laws_kb_dir) -> Assistant:
    assistant = make_assistant(laws_kb_dir)
    yield assistant
    assistant.close()


@pytest.fixture
def empty_assistant(tmp_path) -> Assistant:
    assistant = make_assistant(tmp_path / "kb")
    yield assistant
    assistant.close()
    gc.collect()
