"""/v1/chat/completions and /v1/models through TestClient: shapes, roles, follow-ups, errors."""

from __future__ import annotations

import json

import pytest

MODEL = "duty-assistant"


def chat(client, messages, **extra):
    return client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages, **extra})


def test_models_lists_the_one_model(laws_client):
    body = laws_client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [MODEL]


def test_completion_has_the_openai_shape_and_citations(laws_client):
    response = chat(laws_client, [{"role": "user", "content": "校车驾驶人需要具备什么条件？"}])
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == MODEL and body["id"].startswith("chatcmpl-")
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert body["citations"] and body["grounded"] is True
    assert "引用：" in content
    for citation in body["citations"]:
        assert f"[{citation['n']}] 《{citation['doc_title']}》" in content
        assert citation["quote"] in content
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


@pytest.mark.parametrize(
    ("system", "user", "role"),
    [("角色：班主任", None, "班主任"), ("班主任", None, "班主任"), ("我是一名分管副校长。", None, "分管副校长"),
     (None, "班主任", "班主任"), (None, "角色：校长", "校长")],
)
def test_the_role_comes_from_a_system_message_or_the_user_field(laws_client, system, user, role):
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": "我的安全职责是什么？"}]
    body = chat(laws_client, messages, **({"user": user} if user else {})).json()
    assert body["choices"][0]["message"]["content"].startswith(f"作为{role}")


def test_a_user_id_in_the_user_field_is_not_a_role(laws_client):
    body = chat(laws_client, [{"role": "user", "content": "校车驾驶人需要具备什么条件？"}], user="user-1234").json()
    assert not body["choices"][0]["message"]["content"].startswith("作为")


def test_an_unknown_labelled_role_is_400(laws_client):
    response = chat(laws_client, [{"role": "system", "content": "角色：保安"}, {"role": "user", "content": "职责？"}])
    assert response.status_code == 400
    assert "保安" in response.json()["error"]["message"]


def test_earlier_turns_give_a_follow_up_its_context(laws_client):
    messages = [
        {"role": "user", "content": "校长的安全职责是什么？"},
        {"role": "assistant", "content": "作为校长……", "refusal": None, "annotations": [], "tool_calls": None},
        {"role": "user", "content": "那班主任呢？"},
    ]
    body = chat(laws_client, messages).json()
    assert "班主任" in body["question"] and "职责" in body["question"]
    assert body["choices"][0]["message"]["content"].startswith("作为班主任")


def test_content_parts_are_read_as_text(laws_client):
    parts = [{"type": "text", "text": "校车驾驶人"}, {"type": "text", "text": "需要具备什么条件？"}]
    assert chat(laws_client, [{"role": "user", "content": parts}]).json()["grounded"] is True
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    response = chat(laws_client, [{"role": "user", "content": image}])
    assert response.status_code == 400 and "image_url" in response.json()["error"]["message"]


def test_session_id_extension_keeps_history_on_the_server(laws_client):
    session_id = laws_client.post("/v1/sessions", json={}).json()["session_id"]
    chat(laws_client, [{"role": "user", "content": "校长的安全职责是什么？"}], session_id=session_id)
    body = chat(laws_client, [{"role": "user", "content": "那班主任呢？"}], session_id=session_id).json()
    assert "班主任" in body["question"] and "职责" in body["question"]
    unknown = chat(laws_client, [{"role": "user", "content": "那班主任呢？"}], session_id="unknownsession1")
    assert unknown.status_code == 404


def test_streaming_chunks_end_with_done_and_carry_citations(laws_client):
    response = chat(laws_client, [{"role": "user", "content": "校车驾驶人需要具备什么条件？"}], stream=True,
                    stream_options={"include_usage": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] == "stop"]
    assert len(finish) == 1 and finish[0]["citations"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert "引用：" in text and all(c["quote"] in text for c in finish[0]["citations"])


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "校车"}]}, 404, "duty-assistant"),
        ({"model": MODEL, "messages": []}, 422, "messages"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "校车"}, {"role": "assistant", "content": "好"}]}, 400, "last message"),
        ({"model": MODEL, "messages": [{"role": "user", "content": ""}]}, 400, "empty"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "校" * 5000}]}, 400, "limit"),
        ({"model": MODEL, "messages": [{"role": "robot", "content": "校车"}]}, 422, "role"),
        ({"model": MODEL, "messages": "校车"}, 422, "messages"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "校车"}], "n": 3}, 422, "n"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "校车"}], "wat": 1}, 422, "wat"),
        ({"messages": [{"role": "user", "content": "校车"}]}, 422, "model"),
    ],
)
def test_bad_chat_requests_are_4xx_in_the_openai_error_shape(laws_client, body, status, fragment):
    response = laws_client.post("/v1/chat/completions", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error["message"] and error["type"] == "invalid_request_error"


def test_sampling_options_are_accepted(laws_client):
    response = chat(laws_client, [{"role": "user", "content": "校车驾驶人需要具备什么条件？"}],
                    temperature=0.2, top_p=1, max_tokens=500, stop=["\n\n"], seed=1, user="班主任")
    assert response.status_code == 200
