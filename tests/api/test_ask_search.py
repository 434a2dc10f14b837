"""POST /v1/search and /v1/ask (JSON and Server-Sent Events), GET /v1/chunks, sessions, bad input."""

from __future__ import annotations

import json

import pytest

from assistant.schema import answer_to_json

SCHOOL_BUS = "校车驾驶人需要具备什么条件？"


def parse_sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


def test_search_returns_verbatim_articles_from_the_right_law(laws_client):
    response = laws_client.post("/v1/search", json={"query": "校车驾驶人 驾驶资格", "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "校车驾驶人 驾驶资格"
    assert [h["rank"] for h in body["hits"]] == [1, 2, 3, 4, 5]
    assert "校车安全管理条例" in body["hits"][0]["doc_title"]
    for hit in body["hits"]:
        chunk = laws_client.get(f"/v1/chunks/{hit['chunk_id']}").json()
        assert chunk["text"] == hit["text"] and (chunk["start"], chunk["end"]) == (hit["start"], hit["end"])


def test_ask_returns_the_cli_json_shape_with_exact_quotes(laws_client, laws_assistant):
    response = laws_client.post("/v1/ask", json={"question": SCHOOL_BUS, "role": "校长"})
    assert response.status_code == 200
    body = response.json()
    expected = answer_to_json(laws_assistant.ask(SCHOOL_BUS, role="校长"))
    assert body == expected  # the same shape and content as `duty ask --json`
    assert body["grounded"] is True and body["citations"]
    for citation in body["citations"]:
        assert f"[{citation['n']}]" in body["answer"]
        chunk = laws_client.get(f"/v1/chunks/{citation['chunk_id']}").json()
        relative = citation["start"] - chunk["start"]
        assert chunk["text"][relative : relative + len(citation["quote"])] == citation["quote"]
        document = laws_client.get(f"/v1/documents/{chunk['doc_id']}/text").json()
        assert document["text"][citation["start"] : citation["end"]] == citation["quote"]


def test_ask_outside_the_policy_texts_is_not_grounded_and_lists_related(laws_client):
    body = laws_client.post("/v1/ask", json={"question": "今天晚饭吃什么好？"}).json()
    assert body["grounded"] is False
    assert body["citations"] == []
    assert body["related"]
    assert "未找到" in body["answer"]


def test_ask_stream_sends_deltas_then_the_full_answer(laws_client):
    response = laws_client.post("/v1/ask", json={"question": SCHOOL_BUS, "role": "校长", "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "final" and set(kinds[:-1]) == {"delta"} and len(kinds) > 2
    final = events[-1][1]
    assert "".join(data["text"] for _, data in events[:-1]) == final["answer"]
    assert final["grounded"] is True and final["citations"]


def test_stream_with_bad_input_fails_before_the_stream_starts(laws_client):
    response = laws_client.post("/v1/ask", json={"question": "校车", "role": "保安", "stream": True})
    assert response.status_code == 400
    assert "保安" in response.json()["error"]


def test_session_follow_up_is_answered_in_context(laws_client):
    session = laws_client.post("/v1/sessions", json={"role": "校长"})
    assert session.status_code == 201
    session_id = session.json()["session_id"]
    first = laws_client.post("/v1/ask", json={"question": "校长的安全职责是什么？", "session_id": session_id}).json()
    follow = laws_client.post("/v1/ask", json={"question": "那班主任呢？", "session_id": session_id}).json()
    assert first["session_id"] == follow["session_id"] == session_id
    assert "班主任" in follow["question"] and "职责" in follow["question"]
    assert "作为班主任" in follow["answer"]
    stored = laws_client.get(f"/v1/sessions/{session_id}").json()
    assert [t["question"] for t in stored["turns"]] == ["校长的安全职责是什么？", "那班主任呢？"]
    assert "班主任" in stored["turns"][1]["query"]


def test_without_a_session_a_follow_up_is_taken_literally(laws_client):
    body = laws_client.post("/v1/ask", json={"question": "那班主任呢？"}).json()
    assert "职责" not in body["question"]


def test_streamed_turns_are_recorded_in_the_session(laws_client):
    session_id = laws_client.post("/v1/sessions", json={}).json()["session_id"]
    laws_client.post("/v1/ask", json={"question": SCHOOL_BUS, "session_id": session_id, "stream": True})
    turns = laws_client.get(f"/v1/sessions/{session_id}").json()["turns"]
    assert len(turns) == 1 and turns[0]["grounded"] is True


def test_unknown_session_is_404_with_a_hint(laws_client):
    response = laws_client.post("/v1/ask", json={"question": SCHOOL_BUS, "session_id": "nosuchsession123"})
    assert response.status_code == 404
    assert "POST /v1/sessions" in response.json()["error"]
    assert laws_client.get("/v1/sessions/nosuchsession123").status_code == 404
    assert laws_client.delete("/v1/sessions/nosuchsession123").status_code == 404


def test_deleted_session_is_gone(laws_client):
    session_id = laws_client.post("/v1/sessions").json()["session_id"]
    assert laws_client.delete(f"/v1/sessions/{session_id}").status_code == 204
    assert laws_client.post("/v1/ask", json={"question": SCHOOL_BUS, "session_id": session_id}).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"question": ""}, 422, "question"),
        ({"question": "   \n "}, 400, "empty"),
        ({"question": "校" * 2001}, 400, "2000"),
        ({"question": 42}, 422, "question"),
        ({"question": ["校车"]}, 422, "question"),
        ({}, 422, "question"),
        ({"question": "校车", "role": "保安"}, 400, "unknown role"),
        ({"question": "校车", "mode": "magic"}, 422, "mode"),
        ({"question": "校车", "mode": "llm"}, 400, "DUTY_LLM_BASE_URL"),
        ({"question": "校车", "stream": "sometimes"}, 422, "stream"),
        ({"question": "校车", "session_id": "../../etc"}, 422, "session_id"),
        ({"question": "校车", "colour": "blue"}, 422, "colour"),
    ],
)
def test_bad_ask_input_is_a_4xx_with_a_message(laws_client, body, status, fragment):
    response = laws_client.post("/v1/ask", json=body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_malformed_json_and_wrong_content_type_are_4xx(laws_client):
    bad_json = laws_client.post("/v1/ask", content=b'{"question": ', headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 422 and bad_json.json()["error"]
    not_json = laws_client.post("/v1/ask", content=b"question=x", headers={"Content-Type": "text/plain"})
    assert 400 <= not_json.status_code < 500 and not_json.json()["error"]


def test_a_body_over_the_limit_is_413(laws_client):
    response = laws_client.post("/v1/ask", content=json.dumps({"question": "校" * 700_000}).encode(),
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [({"query": ""}, "query"), ({"query": "校车", "k": 0}, "k"), ({"query": "校车", "k": 500}, "k"), ({"query": "校车", "k": "many"}, "k")],
)
def test_bad_search_input_is_422(laws_client, body, fragment):
    response = laws_client.post("/v1/search", json=body)
    assert response.status_code == 422
    assert fragment in response.json()["error"]


def test_unknown_chunk_and_document_are_404(laws_client):
    assert laws_client.get("/v1/chunks/nope").status_code == 404
    assert "no passage" in laws_client.get("/v1/chunks/nope").json()["error"]
    assert laws_client.get("/v1/documents/nope/text").status_code == 404
    assert laws_client.get("/v1/nothing-here").json() == {"error": "Not Found"}


def test_a_blank_role_means_no_role(laws_client):
    response = laws_client.post("/v1/ask", json={"question": SCHOOL_BUS, "role": "  "})
    assert response.status_code == 200
    assert not response.json()["answer"].startswith("作为")


def test_stream_in_an_unavailable_mode_fails_before_the_stream_starts(laws_client):
    response = laws_client.post("/v1/ask", json={"question": SCHOOL_BUS, "mode": "llm", "stream": True})
    assert response.status_code == 400
    assert "DUTY_LLM_BASE_URL" in response.json()["error"]
