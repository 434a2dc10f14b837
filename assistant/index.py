"""The knowledge base: one directory holding documents, a Chroma collection, a BM25 index and a manifest.

The manifest is the commit point. An ingest writes new document files and vectors first, then swaps in a
new manifest with ``os.replace``; anything written before that swap is invisible to readers, so a failed
or killed ingest leaves the previous knowledge base exactly as it was. Leftovers are swept next time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from assistant.bm25 import BM25Index
from assistant.embed import Embedder, EmbeddingCache
from assistant.errors import AssistantError, CorpusError, EmbedderMismatchError, KnowledgeBaseError
from assistant.exact import VectorTable, read_collection
from assistant.ingest import discover_files, document_meta, load_file, parse_structure, split_into_chunks
from assistant.ingest.loaders import LoadedFile
from assistant.ingest.metadata import title_key
from assistant.text import bm25_tokens, sentence_spans
from assistant.types import Chunk, DocMeta, SourceDoc

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# Bump when parsing, chunking or metadata inference changes: documents are then re-processed on the next
# ingest even though their bytes did not change (their vectors come from the embedding cache).
PROCESSING_VERSION = 4
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

    def __init__(
        self, root: Path, embedder: Embedder, aux_embedder: Embedder | None = None, *, chroma_url: str | None = None,
        chroma_prefix: str = "", bulk: bool = False, bulk_vectors: bool = True, commit_every: int = 200,
        exact_max: int = 60_000,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.embedder = embedder
        self.aux_embedder = aux_embedder
        self.chroma_url = chroma_url or None  # a Chroma server instead of the embedded store under root/chroma
        self.chroma_prefix = chroma_prefix
        self.bulk = bulk  # bulk profile: article vectors only (no sentence windows), parsing in a process pool
        self.bulk_vectors = bulk_vectors  # False: bulk documents are found by BM25 only (no model time at all)
        self.commit_every = max(1, commit_every)  # an interrupted ingest keeps every committed batch of files
        self._pending_tokens: dict[str, list[str]] = {}  # chunk id → BM25 tokens computed while parsing
        self._client = None
        self._collections: dict[str, object] = {}
        self.exact_max = exact_max  # collections up to this many vectors are searched exactly, in memory
        self._tables: dict[str, VectorTable | None] = {}  # per collection, for the loaded generation
        self._tables_lock = threading.Lock()
        self._manifest: dict = {}
        self._manifest_mtime = 0.0
        self.docs: dict[str, SourceDoc] = {}
        self.chunks: dict[str, Chunk] = {}
        self.chunk_tokens: dict[str, list[str]] = {}
        self.bm25 = BM25Index.build([], [])
        self.titles: frozenset[str] = frozenset()  # document titles, for questions that name a law
        self.superseded: dict[str, str] = {}  # doc_id → title of the newer version
        self.has_older_versions: set[str] = set()  # doc_ids of the newest version where several are ingested
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

    def _load(self, bm25: BM25Index | None = None) -> None:
        """Read the committed manifest and what it names; ``bm25``: its BM25 index when already in memory."""
        path = self.manifest_path
        if not path.exists():
            self._manifest = {"format": FORMAT_VERSION, "embedder": self.embedder.name, "dim": self.embedder.dim,
                              "aux_embedder": self._aux_name, "generation": 0, "documents": {}}
            if self.chroma_url:
                self._manifest["chroma_prefix"] = _new_chroma_prefix(self.root, self.chroma_prefix)
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
        # Document files are immutable (named by doc id and content hash): keep what is already loaded.
        loaded = {(e["file"], e.get("processing")) for e in self._manifest.get("documents", {}).values()}
        for source, entry in manifest["documents"].items():
            if (entry["file"], entry.get("processing")) in loaded and entry["doc_id"] in self.docs and all(c in self.chunks for c in entry["chunks"]):
                docs[entry["doc_id"]] = self.docs[entry["doc_id"]]
                for cid in entry["chunks"]:
                    chunks[cid], tokens[cid] = self.chunks[cid], self.chunk_tokens[cid]
                continue
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
                tokens[chunk.chunk_id] = list(map(sys.intern, raw["tokens"]))  # one copy of each term: ~3× less memory
        if bm25 is None:
            bm25_dir = self.root / "bm25" / str(manifest["generation"])
            bm25 = BM25Index.load(bm25_dir) if (bm25_dir / "terms.json").exists() else BM25Index.build(list(tokens), list(tokens.values()))
        self._manifest, self.docs, self.chunks, self.chunk_tokens, self.bm25 = manifest, docs, chunks, tokens, bm25
        self._tables = {}  # vector tables follow the committed generation: re-read on next use
        self._manifest_mtime = path.stat().st_mtime
        self.superseded, self.has_older_versions = _find_versions(docs.values())
        self.titles = frozenset(doc.meta.title for doc in docs.values())

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
    def _collection_name(self, name: str) -> str:
        """On a shared Chroma server every KB gets its own collections, named by the prefix in its manifest."""
        if not self.chroma_url:
            return name
        prefix = self._manifest.get("chroma_prefix") or _new_chroma_prefix(self.root, self.chroma_prefix, unique=False)
        return f"{prefix}-{name}"

    def _collection_handle(self, name: str = COLLECTION):
        full = self._collection_name(name)
        if full not in self._collections:
            where = self.chroma_url or self.root / "chroma"
            try:
                import chromadb

                if self._client is None:
                    settings = chromadb.Settings(anonymized_telemetry=False, allow_reset=True)
                    if self.chroma_url:
                        host, port, ssl = _parse_chroma_url(self.chroma_url)
                        self._client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
                    else:
                        self._client = chromadb.PersistentClient(path=str(self.root / "chroma"), settings=settings)
                model = self._aux_name if name == AUX_WINDOWS else self.embedder.name
                self._collections[full] = self._client.get_or_create_collection(
                    full, embedding_function=None, metadata={"hnsw:space": "cosine", "embedder": model}
                )
            except Exception as exc:
                raise KnowledgeBaseError(f"cannot open the vector store at {where} ({exc}); is the Chroma server running?") from exc
        return self._collections[full]

    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Nearest articles by cosine similarity; ids not in the committed manifest are ignored."""
        if not self.chunks:
            return []
        table = self._table(COLLECTION)
        if table is not None:
            return table.best(vector, k)
        n = k + 20
        while True:
            results = self._query(COLLECTION, vector, n)
            found = [(cid, sim) for cid, sim in results if cid in self.chunks]
            # Vectors of an uncommitted ingest (running in another process, or killed mid-way) are skipped;
            # look deeper until k committed articles are found, so they cannot crowd out the answer.
            if len(found) >= k or len(results) < n:
                return found[:k]
            n *= 4

    def window_search(self, vector: np.ndarray, k: int, *, aux: bool = False) -> list[tuple[str, float]]:
        """Articles ranked by their best-matching sentence (max over the sentence vectors of each article)."""
        if not self.chunks or (aux and self.aux_embedder is None):
            return []
        table = self._table(AUX_WINDOWS if aux else WINDOWS)
        if table is not None:
            return table.best(vector, k)
        n = 3 * k
        while True:
            results = self._query(AUX_WINDOWS if aux else WINDOWS, vector, n)
            committed = [(wid, sim) for wid, sim in results if wid.rsplit(":", 1)[0] in self.chunks]
            if len(committed) >= 3 * k or len(results) < n:
                break
            n *= 4  # uncommitted sentence vectors took some of the places: look deeper (see dense_search)
        best: dict[str, float] = {}
        for wid, sim in committed[: 3 * k]:
            cid = wid.rsplit(":", 1)[0]
            if sim > best.get(cid, -2.0):
                best[cid] = sim
        return sorted(best.items(), key=lambda item: -item[1])[:k]

    def _table(self, name: str) -> VectorTable | None:
        """The committed vectors of one collection in memory, or None when it is too large (then Chroma's index
        is queried). Read once per generation; vectors of uncommitted ingests are left out."""
        tables = self._tables
        if name in tables:
            return tables[name]
        with self._tables_lock:
            if name in self._tables:
                return self._tables[name]
            collection = self._collection_handle(name)
            table = None
            if collection.count() <= self.exact_max:
                chunks = self.chunks
                dim = self.aux_embedder.dim if name == AUX_WINDOWS and self.aux_embedder else self.embedder.dim
                table = VectorTable.from_rows(read_collection(collection), lambda vid: _owner(vid, chunks, name != COLLECTION), dim)
            if tables is self._tables:  # no reload happened meanwhile
                tables[name] = table
            return table

    def _query(self, name: str, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        collection = self._collection_handle(name)
        # Chroma returns fewer results when the collection holds fewer than n: no count() round trip needed.
        result = collection.query(query_embeddings=[np.asarray(vector, dtype=np.float32).tolist()], n_results=n, include=["distances"])
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
            pending: list[tuple[Path, LoadedFile, bool]] = []
            seen_sources: dict[str, Path] = {}
            committed = False
            with _Parser(parallel=self.bulk) as parser:
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
                    pending.append((path, loaded, bool(old)))
                    if len(pending) >= self.commit_every and index < len(files) - 1:
                        # Commit in batches: a killed ingest keeps what it finished, and a re-run skips those files.
                        if self._ingest_batch(parser, pending, manifest, report, progress):
                            self._commit(manifest, sweep=False)
                            committed = True
                        pending = []
                if progress:
                    progress("读取与解析", len(files), len(files))
                if self._ingest_batch(parser, pending, manifest, report, progress):
                    self._commit(manifest)
                elif committed:
                    self._sweep()
        report.seconds = time.perf_counter() - started
        return report

    def _ingest_batch(self, parser: _Parser, pending: list[tuple[Path, LoadedFile, bool]], manifest: dict,
                      report: IngestReport, progress: ProgressFn | None) -> bool:
        """Parse, embed and stage a batch of changed files; True when the manifest has something to commit."""
        new_docs: list[tuple[SourceDoc, list[Chunk]]] = []
        for (path, _, is_update), parsed in zip(pending, parser.parse(pending), strict=True):
            if isinstance(parsed, str):
                report.skipped.append(parsed)
                continue
            doc, chunks, tokens = parsed
            if not chunks:
                report.skipped.append(f"{path.name}: no text to index after parsing")
                continue
            (report.updated if is_update else report.added).append(path.name)
            new_docs.append((doc, chunks))
            self._pending_tokens.update(tokens)
        if not new_docs:
            return False
        report.chunks_embedded += self._store(new_docs, manifest, progress)
        return True

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

        windows = [] if self.bulk else [
            (f"{c.chunk_id}:{i}", window_text(c, span)) for c in all_chunks for i, span in enumerate(sentence_windows(c))
        ]
        total = len(all_chunks) + len(windows) * (2 if self.aux_embedder else 1)
        try:
            if not self.bulk or self.bulk_vectors:
                vectors = cache.embed(self.embedder, [c.index_text() for c in all_chunks], progress=advance)
                self._upsert(COLLECTION, [c.chunk_id for c in all_chunks], vectors)
            window_ids = [w for w, _ in windows]
            self._upsert(WINDOWS, window_ids, cache.embed(self.embedder, [t for _, t in windows], progress=advance))
            if self.aux_embedder is not None and windows:
                self._upsert(AUX_WINDOWS, window_ids, cache.embed(self.aux_embedder, [t for _, t in windows], batch_size=64, progress=advance))
        finally:
            cache.close()
        for doc, chunks in new_docs:
            name = f"{doc.doc_id}-{doc.sha256[:12]}.json"
            payload = {
                "path": doc.path, "text": doc.text, "meta": asdict(doc.meta), "encoding": doc.encoding,
                "chunks": [
                    {"chunk_id": c.chunk_id, "section": c.section, "start": c.start, "end": c.end, "kind": c.kind,
                     "ordinal": c.ordinal, "tokens": self._pending_tokens.pop(c.chunk_id, None) or bm25_tokens(c.index_text())}
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

    def _commit(self, manifest: dict, *, sweep: bool = True) -> None:
        manifest["generation"] = int(manifest.get("generation", 0)) + 1
        bm25 = self._bm25_for(manifest)
        bm25.save(self.root / "bm25" / str(manifest["generation"]))
        _atomic_write(self.manifest_path, json.dumps(manifest, ensure_ascii=False, indent=1))
        self._load(bm25)
        if sweep:
            self._sweep()

    def _bm25_for(self, manifest: dict) -> BM25Index:
        """The BM25 index of a manifest about to be committed. Normally the loaded index with the chunks of
        removed and changed documents taken out and those of new and changed ones put in; built from scratch
        when the loaded index has no term counts (saved by an older version) or does not match its manifest."""
        loaded = {(e["file"], e.get("processing")) for e in self._manifest.get("documents", {}).values()}
        fresh = [e for e in manifest["documents"].values() if (e["file"], e.get("processing")) not in loaded]
        ids: list[str] = []
        token_lists: list[list[str]] = []
        for entry in fresh:  # their tokens were just written to their document files
            data = json.loads((self.root / "docs" / entry["file"]).read_text(encoding="utf-8"))
            ids.extend(raw["chunk_id"] for raw in data["chunks"])
            token_lists.extend(raw["tokens"] for raw in data["chunks"])
        wanted = {c for e in manifest["documents"].values() for c in e["chunks"]}
        if self.bm25.updatable:
            gone = {c for c in self.bm25.ids if c not in wanted}.union(ids)
            bm25 = self.bm25.update(remove=gone, add_ids=ids, token_lists=token_lists)
            if len(bm25.ids) == len(wanted):
                return bm25
            reason = "does not match its manifest"
        else:
            reason = "was saved by an older version, without term counts"
        log.warning("the BM25 index of %s %s: building it from scratch (%d chunks, once; later commits update it in place)",
                    self.root, reason, len(wanted))
        for entry in manifest["documents"].values():
            if (entry["file"], entry.get("processing")) in loaded:
                ids.extend(entry["chunks"])
                token_lists.extend(self.chunk_tokens[c] for c in entry["chunks"])
        return BM25Index.build(ids, token_lists)

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
    root: Path, embedder: Embedder, paths: list[Path], *, aux_embedder: Embedder | None = None, progress: ProgressFn | None = None,
    **options,
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
    kb = KnowledgeBase(staging, embedder, aux_embedder, **options)  # options: chroma_url, bulk, ... as for KnowledgeBase
    try:
        report = kb.ingest(paths, progress=progress)
    finally:
        kb.close()
    retired = root.with_name(root.name + ".old")
    shutil.rmtree(retired, ignore_errors=True)
    old_prefix = _manifest_value(root, "chroma_prefix")
    if root.exists():
        os.replace(root, retired)
    os.replace(staging, root)
    shutil.rmtree(retired, ignore_errors=True)
    if options.get("chroma_url") and old_prefix:
        _drop_server_collections(options["chroma_url"], old_prefix)  # the old KB's vectors on the shared server
    return report


def _manifest_value(root: Path, key: str) -> str:
    with contextlib.suppress(OSError, ValueError):
        return str(json.loads((root / MANIFEST).read_text(encoding="utf-8")).get(key) or "")
    return ""


def _drop_server_collections(url: str, prefix: str) -> None:
    """Delete a retired KB's collections from a Chroma server (best effort: a leftover only costs space)."""
    import chromadb

    host, port, ssl = _parse_chroma_url(url)
    client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=chromadb.Settings(anonymized_telemetry=False))
    for name in (COLLECTION, WINDOWS, AUX_WINDOWS):
        with contextlib.suppress(Exception):
            client.delete_collection(f"{prefix}-{name}")


def build_document(path: Path, text: str, sha256: str, encoding: str) -> tuple[SourceDoc, list[Chunk]]:
    structure = parse_structure(text)
    meta = document_meta(path, text, structure.title)
    doc = SourceDoc(doc_id_for(path.name), path.name, str(path), sha256, text, meta, encoding)
    return doc, split_into_chunks(doc, structure)


def _parse_one(path: Path, text: str, sha256: str, encoding: str) -> tuple[SourceDoc, list[Chunk], dict[str, list[str]]] | str:
    """Parse one file and tokenise its chunks for BM25; a message instead when it cannot be parsed."""
    try:
        doc, chunks = build_document(path, text, sha256, encoding)
    except AssistantError as exc:
        return str(exc)
    return doc, chunks, {c.chunk_id: bm25_tokens(c.index_text()) for c in chunks}


class _Parser:
    """Parses batches of files in this process, or (bulk profile) in a process pool started on first use."""

    def __init__(self, *, parallel: bool) -> None:
        self._parallel = parallel and (os.cpu_count() or 1) > 1
        self._pool = None

    def __enter__(self) -> _Parser:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def parse(self, pending: list[tuple[Path, LoadedFile, bool]]) -> list:
        args = [(path, loaded.text, loaded.sha256, loaded.encoding) for path, loaded, _ in pending]
        if not self._parallel or len(args) < 8:
            return [_parse_one(*a) for a in args]
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: the parent holds Chroma's and SQLite's threads and locks.
            self._pool = ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=multiprocessing.get_context("spawn"))
        return list(self._pool.map(_parse_one, *zip(*args, strict=True), chunksize=4))


def _owner(vector_id: str, chunks: dict[str, Chunk], sentence: bool) -> str | None:
    """The committed article a stored vector belongs to (sentence vectors are named ``<chunk id>:<n>``)."""
    cid = vector_id.rsplit(":", 1)[0] if sentence else vector_id
    return cid if cid in chunks else None


def _new_chroma_prefix(root: Path, configured: str, *, unique: bool = True) -> str:
    """Collection-name prefix for one KB on a shared server: the configured one or a hash of the KB path,
    plus a random part so a rebuild (staged beside the live KB) never writes into the live collections."""
    import hashlib
    import uuid

    base = configured.strip() or "kb" + hashlib.sha1(str(root).encode("utf-8")).hexdigest()[:10]
    return f"{base}-{uuid.uuid4().hex[:8]}" if unique else base


def _parse_chroma_url(url: str) -> tuple[str, int, bool]:
    """``http://host:8001`` → (host, port, ssl)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        raise KnowledgeBaseError(f"DUTY_CHROMA_URL={url!r} is not a URL like http://127.0.0.1:8001")
    ssl = parts.scheme == "https"
    return parts.hostname, parts.port or (443 if ssl else 8000), ssl


def _find_versions(docs: Iterable[SourceDoc]) -> tuple[dict[str, str], set[str]]:
    """Versions of the same instrument (same title key): older ones mapped to the newest one's label,
    and the ids of the newest ones."""
    by_key: dict[str, list[SourceDoc]] = {}
    for doc in docs:
        if doc.meta.kind in {"law", "regulation", "local_regulation"}:
            by_key.setdefault(title_key(doc.meta.title), []).append(doc)
    result: dict[str, str] = {}
    newest_ids: set[str] = set()
    for versions in by_key.values():
        if len(versions) < 2:
            continue
        versions.sort(key=lambda d: d.meta.version or d.meta.date, reverse=True)
        newest = versions[0]
        newest_ids.add(newest.doc_id)
        for old in versions[1:]:
            result[old.doc_id] = f"{newest.meta.title}（{newest.meta.version or newest.meta.date}）"
    return result, newest_ids


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
