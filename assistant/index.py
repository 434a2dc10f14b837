"""The knowledge base: one directory holding documents, a Chroma collection, a BM25 index and a manifest.

The manifest is the commit point. An ingest writes new document files and vectors first, then swaps in a
new manifest with ``os.replace``; anything written before that swap is invisible to readers, so a failed
or killed ingest leaves the previous knowledge base exactly as it was. Leftovers are swept next time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from assistant.bm25 import BM25Index
from assistant.embed import Embedder, EmbeddingCache
from assistant.errors import AssistantError, CorpusError, EmbedderMismatchError, KnowledgeBaseError
from assistant.ingest import discover_files, document_meta, load_file, parse_structure, split_into_chunks
from assistant.ingest.metadata import title_key
from assistant.text import bm25_tokens, sentence_spans
from assistant.types import Chunk, DocMeta, SourceDoc

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# Bump when parsing, chunking or metadata inference changes: documents are then re-processed on the next
# ingest even though their bytes did not change (their vectors come from the embedding cache).
PROCESSING_VERSION = 3
COLLECTION = "duty_chunks"  # one vector per article/unit (primary embedder)
WINDOWS = "duty_windows"  # one vector per sentence inside a unit (primary embedder)
AUX_WINDOWS = "duty_windows_aux"  # the same sentences, second embedder (optional)

# progress(stage, done, total)
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    doc_id: str
    title: str
    kind: str
    source: str
    chunks: int
    sha256: str
    path: str = ""
    meta: DocMeta | None = None
    superseded_by: str = ""

    def to_json(self) -> dict:
        return {"doc_id": self.doc_id, "title": self.title, "kind": self.kind, "source": self.source, "chunks": self.chunks, "sha256": self.sha256}


@dataclass(slots=True)
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: reason"
    chunks_embedded: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def doc_id_for(source: str) -> str:
    import hashlib

    return "d" + hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]


class KnowledgeBase:
    """Documents, chunks and both search indexes under one directory."""

    def __init__(self, root: Path, embedder: Embedder, aux_embedder: Embedder | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.embedder = embedder
        self.aux_embedder = aux_embedder
        self._client = None
        self._collections: dict[str, object] = {}
        self._manifest: dict = {}
        self._manifest_mtime = 0.0
        self.docs: dict[str, SourceDoc] = {}
        self.chunks: dict[str, Chunk] = {}
        self.chunk_tokens: dict[str, list[str]] = {}
        self.bm25 = BM25Index.build([], [])
        self.superseded: dict[str, str] = {}  # doc_id → title of the newer version
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "docs").mkdir(exist_ok=True)
        self._load()

    # ------------------------------------------------------------------ reading
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def is_empty(self) -> bool:
        return not self._manifest.get("documents")

    def _load(self) -> None:
        path = self.manifest_path
        if not path.exists():
            self._manifest = {"format": FORMAT_VERSION, "embedder": self.embedder.name, "dim": self.embedder.dim,
                              "aux_embedder": self._aux_name, "generation": 0, "documents": {}}
            return
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise KnowledgeBaseError(f"the manifest {path} is unreadable ({exc}); rebuild with `duty ingest --rebuild PATH...`") from exc
        built = (manifest.get("embedder"), manifest.get("aux_embedder", ""))
        if manifest.get("documents") and built != (self.embedder.name, self._aux_name):
            raise EmbedderMismatchError(
                f"the knowledge base at {self.root} was built with embedder '{'+'.join(filter(None, built))}' but this run uses "
                f"'{'+'.join(filter(None, (self.embedder.name, self._aux_name)))}'. Set DUTY_EMBEDDER to match, or rebuild it: "
                "`duty ingest --rebuild PATH...`"
            )
        docs: dict[str, SourceDoc] = {}
        chunks: dict[str, Chunk] = {}
        tokens: dict[str, list[str]] = {}
        for source, entry in manifest["documents"].items():
            data = json.loads((self.root / "docs" / entry["file"]).read_text(encoding="utf-8"))
            doc = SourceDoc(
                doc_id=entry["doc_id"], source=source, path=data["path"], sha256=entry["sha256"], text=data["text"],
                meta=DocMeta(**data["meta"]), encoding=data.get("encoding", "utf-8"),
            )
            docs[doc.doc_id] = doc
            for raw in data["chunks"]:
                chunk = Chunk(
                    chunk_id=raw["chunk_id"], doc_id=doc.doc_id, doc_title=doc.meta.title, source=source,
                    section=raw["section"], text=doc.text[raw["start"] : raw["end"]], start=raw["start"], end=raw["end"],
                    kind=raw["kind"], ordinal=raw["ordinal"], doc_kind=doc.meta.kind,
                )
                chunks[chunk.chunk_id] = chunk
                tokens[chunk.chunk_id] = raw["tokens"]
        bm25_dir = self.root / "bm25" / str(manifest["generation"])
        bm25 = BM25Index.load(bm25_dir) if (bm25_dir / "terms.json").exists() else BM25Index.build(list(tokens), list(tokens.values()))
        self._manifest, self.docs, self.chunks, self.chunk_tokens, self.bm25 = manifest, docs, chunks, tokens, bm25
        self._manifest_mtime = path.stat().st_mtime
        self.superseded = _find_superseded(docs.values())

    def refresh(self) -> bool:
        """Reload if another process committed a new manifest; True when something changed."""
        try:
            mtime = self.manifest_path.stat().st_mtime
        except FileNotFoundError:
            return False
        if mtime != self._manifest_mtime:
            self._load()
            return True
        return False

    def documents(self) -> list[DocumentInfo]:
        out = []
        for source, entry in sorted(self._manifest.get("documents", {}).items()):
            doc = self.docs[entry["doc_id"]]
            out.append(
                DocumentInfo(doc.doc_id, doc.meta.title, doc.meta.kind, source, len(entry["chunks"]), entry["sha256"],
                             doc.path, doc.meta, self.superseded.get(doc.doc_id, ""))
            )
        return out

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return sorted((c for c in self.chunks.values() if c.doc_id == doc_id), key=lambda c: c.ordinal)

    @property
    def _aux_name(self) -> str:
        return self.aux_embedder.name if self.aux_embedder else ""

    # ------------------------------------------------------------------ dense store
    def _collection_handle(self, name: str = COLLECTION):
        if name not in self._collections:
            try:
                import chromadb

                if self._client is None:
                    self._client = chromadb.PersistentClient(
                        path=str(self.root / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False, allow_reset=True)
                    )
                model = self._aux_name if name == AUX_WINDOWS else self.embedder.name
                self._collections[name] = self._client.get_or_create_collection(
                    name, embedding_function=None, metadata={"hnsw:space": "cosine", "embedder": model}
                )
            except Exception as exc:
                raise KnowledgeBaseError(f"cannot open the vector store under {self.root / 'chroma'} ({exc})") from exc
        return self._collections[name]

    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Nearest articles by cosine similarity; ids not in the committed manifest are ignored."""
        if not self.chunks:
            return []
        return [(cid, sim) for cid, sim in self._query(COLLECTION, vector, k + 20) if cid in self.chunks][:k]

    def window_search(self, vector: np.ndarray, k: int, *, aux: bool = False) -> list[tuple[str, float]]:
        """Articles ranked by their best-matching sentence (max over the sentence vectors of each article)."""
        if not self.chunks or (aux and self.aux_embedder is None):
            return []
        best: dict[str, float] = {}
        for wid, sim in self._query(AUX_WINDOWS if aux else WINDOWS, vector, 3 * k):
            cid = wid.rsplit(":", 1)[0]
            if cid in self.chunks and sim > best.get(cid, -2.0):
                best[cid] = sim
        return sorted(best.items(), key=lambda item: -item[1])[:k]

    def _query(self, name: str, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        collection = self._collection_handle(name)
        count = collection.count()
        if count == 0:
            return []
        result = collection.query(query_embeddings=[np.asarray(vector, dtype=np.float32).tolist()], n_results=min(n, count), include=["distances"])
        return [(i, 1.0 - float(d)) for i, d in zip(result["ids"][0], result["distances"][0], strict=True)]

    def close(self) -> None:
        self._collections = {}
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.clear_system_cache()
        self._client = None

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        lock_path = self.root / ".lock"
        with open(lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                # Another ingest is running; wait for it rather than interleave.
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self.refresh()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def ingest(self, paths: Iterable[Path], *, progress: ProgressFn | None = None) -> IngestReport:
        """Add or update files and folders. Unchanged files (same bytes) cost nothing."""
        started = time.perf_counter()
        report = IngestReport()
        files, skipped = discover_files(paths)
        report.skipped.extend(f"{s.path.name}: {s.reason}" for s in skipped)
        with self._write_lock():
            manifest = json.loads(json.dumps(self._manifest))
            new_docs: list[tuple[SourceDoc, list[Chunk]]] = []
            seen_sources: dict[str, Path] = {}
            for index, path in enumerate(files):
                if progress:
                    progress("读取与解析", index, len(files))
                source = path.name
                if source in seen_sources:
                    report.skipped.append(f"{source}: same file name as {seen_sources[source]}; rename one of them")
                    continue
                seen_sources[source] = path
                try:
                    loaded = load_file(path)
                except CorpusError as exc:
                    report.skipped.append(str(exc))
                    continue
                old = manifest["documents"].get(source)
                if old and old["sha256"] == loaded.sha256 and old.get("processing") == PROCESSING_VERSION:
                    report.unchanged.append(source)
                    continue
                try:
                    doc, chunks = build_document(path, loaded.text, loaded.sha256, loaded.encoding)
                except AssistantError as exc:
                    report.skipped.append(str(exc))
                    continue
                if not chunks:
                    report.skipped.append(f"{source}: no text to index after parsing")
                    continue
                (report.updated if old else report.added).append(source)
                new_docs.append((doc, chunks))
            if progress:
                progress("读取与解析", len(files), len(files))
            if new_docs:
                report.chunks_embedded = self._store(new_docs, manifest, progress)
            if new_docs:
                self._commit(manifest)
        report.seconds = time.perf_counter() - started
        return report

    def remove(self, names: Iterable[str]) -> IngestReport:
        """Remove documents by file name (or path; only its name counts)."""
        report = IngestReport()
        with self._write_lock():
            manifest = json.loads(json.dumps(self._manifest))
            for name in names:
                source = Path(name).name
                if manifest["documents"].pop(source, None) is None:
                    report.skipped.append(f"{source}: not in the knowledge base (see `duty docs`)")
                else:
                    report.removed.append(source)
            if report.removed:
                self._commit(manifest)
        return report

    def _store(self, new_docs: list[tuple[SourceDoc, list[Chunk]]], manifest: dict, progress: ProgressFn | None) -> int:
        all_chunks = [c for _, chunks in new_docs for c in chunks]
        cache = EmbeddingCache(self.root / "embed-cache.sqlite")
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress("向量化", done, total)

        windows = [(f"{c.chunk_id}:{i}", window_text(c, span)) for c in all_chunks for i, span in enumerate(sentence_windows(c))]
        total = len(all_chunks) + len(windows) * (2 if self.aux_embedder else 1)
        try:
            vectors = cache.embed(self.embedder, [c.index_text() for c in all_chunks], progress=advance)
            self._upsert(COLLECTION, [c.chunk_id for c in all_chunks], vectors)
            window_ids = [w for w, _ in windows]
            self._upsert(WINDOWS, window_ids, cache.embed(self.embedder, [t for _, t in windows], progress=advance))
            if self.aux_embedder is not None:
                self._upsert(AUX_WINDOWS, window_ids, cache.embed(self.aux_embedder, [t for _, t in windows], batch_size=64, progress=advance))
        finally:
            cache.close()
        for doc, chunks in new_docs:
            name = f"{doc.doc_id}-{doc.sha256[:12]}.json"
            payload = {
                "path": doc.path, "text": doc.text, "meta": asdict(doc.meta), "encoding": doc.encoding,
                "chunks": [
                    {"chunk_id": c.chunk_id, "section": c.section, "start": c.start, "end": c.end, "kind": c.kind,
                     "ordinal": c.ordinal, "tokens": bm25_tokens(c.index_text())}
                    for c in chunks
                ],
            }
            _atomic_write(self.root / "docs" / name, json.dumps(payload, ensure_ascii=False))
            manifest["documents"][doc.source] = {
                "doc_id": doc.doc_id, "sha256": doc.sha256, "file": name, "title": doc.meta.title, "processing": PROCESSING_VERSION,
                "chunks": [c.chunk_id for c in chunks],
            }
        return len(all_chunks)

    def _upsert(self, name: str, ids: list[str], vectors: np.ndarray) -> None:
        collection = self._collection_handle(name)
        for i in range(0, len(ids), 1000):
            collection.upsert(ids=ids[i : i + 1000], embeddings=vectors[i : i + 1000].tolist())

    def _commit(self, manifest: dict) -> None:
        manifest["generation"] = int(manifest.get("generation", 0)) + 1
        ids: list[str] = []
        token_lists: list[list[str]] = []
        for entry in manifest["documents"].values():
            data = json.loads((self.root / "docs" / entry["file"]).read_text(encoding="utf-8"))
            for raw in data["chunks"]:
                ids.append(raw["chunk_id"])
                token_lists.append(raw["tokens"])
        BM25Index.build(ids, token_lists).save(self.root / "bm25" / str(manifest["generation"]))
        _atomic_write(self.manifest_path, json.dumps(manifest, ensure_ascii=False, indent=1))
        self._load()
        self._sweep()

    def _sweep(self) -> None:
        """Delete what no committed manifest refers to: old document files, BM25 generations, stray vectors."""
        keep_files = {e["file"] for e in self._manifest["documents"].values()}
        for path in (self.root / "docs").glob("*.json"):
            if path.name not in keep_files:
                path.unlink(missing_ok=True)
        for folder in (self.root / "bm25").glob("*"):
            if folder.name != str(self._manifest["generation"]):
                shutil.rmtree(folder, ignore_errors=True)
        for name in (COLLECTION, WINDOWS, AUX_WINDOWS):
            if name == AUX_WINDOWS and self.aux_embedder is None:
                continue
            collection = self._collection_handle(name)
            stored = collection.get(include=[])["ids"]
            stray = [i for i in stored if i.rsplit(":", 1)[0] not in self.chunks]
            for i in range(0, len(stray), 5000):
                collection.delete(ids=stray[i : i + 5000])


def sentence_windows(chunk: Chunk) -> list[tuple[int, int]]:
    """The sentences of a unit that get their own vectors (fragments under 6 characters carry no meaning)."""
    return [(s, e) for s, e in sentence_spans(chunk.text) if e - s >= 6]


def window_text(chunk: Chunk, span: tuple[int, int]) -> str:
    return f"《{chunk.doc_title}》 {chunk.section}\n{chunk.text[span[0] : span[1]]}"


def rebuild_knowledge_base(
    root: Path, embedder: Embedder, paths: list[Path], *, aux_embedder: Embedder | None = None, progress: ProgressFn | None = None
) -> IngestReport:
    """Build a fresh index (e.g. with another embedder) beside the old one and swap it in at the end.

    Until the final rename the old knowledge base stays untouched and usable; other state in the folder
    (embedding cache, conversations) is carried over.
    """
    root = Path(root).expanduser().resolve()
    staging = root.with_name(root.name + ".rebuild")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    index_parts = {MANIFEST, "chroma", "bm25", "docs", ".lock"}
    if root.exists():
        for item in root.iterdir():
            if item.name in index_parts or item.name.endswith((".sqlite-wal", ".sqlite-shm")):
                continue
            if item.is_dir():
                shutil.copytree(item, staging / item.name)
            else:
                shutil.copy2(item, staging / item.name)
    kb = KnowledgeBase(staging, embedder, aux_embedder)
    try:
        report = kb.ingest(paths, progress=progress)
    finally:
        kb.close()
    retired = root.with_name(root.name + ".old")
    shutil.rmtree(retired, ignore_errors=True)
    if root.exists():
        os.replace(root, retired)
    os.replace(staging, root)
    shutil.rmtree(retired, ignore_errors=True)
    return report


def build_document(path: Path, text: str, sha256: str, encoding: str) -> tuple[SourceDoc, list[Chunk]]:
    structure = parse_structure(text)
    meta = document_meta(path, text, structure.title)
    doc = SourceDoc(doc_id_for(path.name), path.name, str(path), sha256, text, meta, encoding)
    return doc, split_into_chunks(doc, structure)


def _find_superseded(docs: Iterable[SourceDoc]) -> dict[str, str]:
    """Older versions of the same instrument (same title key), mapped to the newer version's label."""
    by_key: dict[str, list[SourceDoc]] = {}
    for doc in docs:
        if doc.meta.kind in {"law", "regulation", "local_regulation"}:
            by_key.setdefault(title_key(doc.meta.title), []).append(doc)
    result: dict[str, str] = {}
    for versions in by_key.values():
        if len(versions) < 2:
            continue
        versions.sort(key=lambda d: d.meta.version or d.meta.date, reverse=True)
        newest = versions[0]
        for old in versions[1:]:
            result[old.doc_id] = f"{newest.meta.title}（{newest.meta.version or newest.meta.date}）"
    return result


def _atomic_write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
