"""LLM mode against the scripted OpenAI-compatible server: what the user finally receives in each case."""

from __future__ import annotations

import time

import pytest
from fake_openai import Reply
from helpers import QUESTION, assert_citations_exact, clause, passage_text

from assistant.errors import ConfigError
from assistant.prompts import render
from assistant.schema import answer_to_json
from tests.conftest import make_assistant

UNAVAILABLE = render("llm", "notice_unavailable")


def two_quotes(body: dict) -> str:
    q1, q2 = clause(passage_text(body, 1)), clause(passage_text(body, 2))
    return f"校车驾驶人须符合条例规定的下列条件：\n1. 「{q1}」[1]\n2. 「{q2[:4]} {q2[4:]}」[2]"


def test_correct_citations_are_kept_and_exact(llm_assistant, fake_llm):
    fake_llm.push(Reply(two_quotes))
    answer = llm_assistant.ask(QUESTION, mode="llm")
    body = fake_llm.requests[0].body
    q1, q2 = clause(passage_text(body, 1)), clause(passage_text(body, 2))
    assert answer.grounded and answer.mode == "llm"
    assert f"「{q1}」[1]" in answer.answer and f"「{q2}」[2]" in answer.answer  # the space was normalised away
    assert [(c.n, c.quote) for c in answer.citations] == [(1, q1), (2, q2)]
    assert_citations_exact(llm_assistant, answer)
    data = answer_to_json(answer)
    assert "removed_citations" not in data and answer.notices == ()
    # the request: configured model, non-streaming, key sent, system prompt first, passages numbered from 1
    assert body["model"] == "fake-model" and not body.get("stream") and body["temperature"] == pytest.approx(0.1)
    assert fake_llm.requests[0].headers["authorization"] == "Bearer test-key"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert sorted(fake_llm.requests[0].passages()) == list(range(1, 9))


def test_out_of_range_marker_is_removed_and_reported(llm_assistant, fake_llm):
    fake_llm.push(Reply(lambda body: f"「{clause(passage_text(body, 1))}」[1][9]。另外，驾驶人每月须体检一次[9]。"))
    answer = llm_assistant.ask(QUESTION, mode="llm")
    assert answer.grounded and "[9]" not in answer.answer and "每月须体检" not in answer.answer
    assert [c.n for c in answer.citations] == [1]
    assert answer_to_json(answer)["removed_citations"] == [
        {"marker": "[9]", "reason": "unknown_passage"},
        {"marker": "[9]", "reason": "unknown_passage", "sentence": "另外，驾驶人每月须体检一次[9]。"},
    ]
    assert answer.notices == (render("llm", "notice_removed", count=2),)


def test_fabricated_quote_is_removed_and_reported(llm_assistant, fake_llm):
    fabricated = "校车驾驶人每天出车前必须接受酒精检测"
    fake_llm.push(Reply(lambda body: f"「{clause(passage_text(body, 1))}」[1]。同时「{fabricated}」[2]。"))
    answer = llm_assistant.ask(QUESTION, mode="llm")
    assert answer.grounded and fabricated not in answer.answer
    assert [c.n for c in answer.citations] == [1]
    assert_citations_exact(llm_assistant, answer)
    removed = answer_to_json(answer)["removed_citations"]
    assert removed == [{"marker": "[2]", "reason": "quote_not_found", "quote": fabricated, "sentence": f"同时「{fabricated}」[2]。"}]


def test_nearly_verbatim_quote_is_replaced_by_the_source_text(llm_assistant, fake_llm):
    def misquote(body: dict) -> str:
        q = clause(passage_text(body, 1))
        return f"「{q[:-2]}X{q[-1]}」[1]。"  # one character changed

    fake_llm.push(Reply(misquote))
    answer = llm_assistant.ask(QUESTION, mode="llm")
    q = clause(passage_text(fake_llm.requests[0].body, 1))
    assert f"「{q}」[1]" in answer.answer and answer.citations[0].quote == q
    assert answer.removed_citations[0].reason == "quote_corrected" and answer.removed_citations[0].replacement == q


def test_no_citations_at_all_becomes_not_grounded(llm_assistant, fake_llm):
    fake_llm.push(Reply("校车驾驶人应当身体健康、驾驶经验丰富，并定期参加培训。"))
    answer = llm_assistant.ask(QUESTION, mode="llm")
    assert not answer.grounded and answer.citations == ()
    assert answer.answer.startswith("现有政策文件中未找到依据")
    assert "身体健康" not in answer.answer
    assert answer.related and answer.notices == (render("llm", "notice_unverified"),)
    assert [r.reason for r in answer.removed_citations] == ["uncited_claim"]


def test_model_saying_not_found_is_passed_on_without_a_warning(llm_assistant, fake_llm):
    fake_llm.push(Reply("现有政策文件中未找到依据。"))
    answer = llm_assistant.ask(QUESTION, mode="llm")
    assert not answer.grounded and answer.answer.startswith("现有政策文件中未找到依据") and answer.notices == ()


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limit_or_server_error_then_success_is_retried(llm_assistant, fake_llm, status):
    fake_llm.push(Reply(status=status, headers={"retry-after-ms": "10"}), Reply(two_quotes))
    answer = llm_assistant.ask(QUESTION, mode="llm")
    assert len(fake_llm.requests) == 2
    assert answer.grounded and answer.mode == "llm" and [c.n for c in answer.citations] == [1, 2]


def test_rate_limit_beyond_the_retries_falls_back_to_extractive(llm_assistant, fake_llm):
    fake_llm.push(*[Reply(status=429, headers={"retry-after-ms": "10"})] * 2)
    answer = llm_assistant.ask(QUESTION, mode="llm")
    assert len(fake_llm.requests) == 2  # DUTY_LLM_MAX_RETRIES=1
    assert answer.mode == "extractive" and answer.grounded and answer.notices == (UNAVAILABLE,)
    assert_citations_exact(llm_assistant, answer)


def test_hang_past_the_timeout_falls_back_to_extractive(llm_assistant_factory, fake_llm):
    assistant = llm_assistant_factory(llm_timeout_s=0.5, llm_max_retries=0)
    fake_llm.push(Reply(two_quotes, hang=3))
    started = time.monotonic()
    answer = assistant.ask(QUESTION, mode="llm")
    assert time.monotonic() - started < 2.5
    assert answer.mode == "extractive" and answer.grounded and answer.notices == (UNAVAILABLE,)
    assert answer.answer == assistant.ask(QUESTION).answer
    assert_citations_exact(assistant, answer)


@pytest.mark.parametrize("raw", ["{not json", '{"id": "x", "object": "chat.completion"}', '{"choices": []}',
                                 '{"choices": [{"index": 0, "message": {"role": "assistant", "content": ""}}]}'])
def test_malformed_response_falls_back_to_extractive(llm_assistant, fake_llm, raw):
    fake_llm.push(Reply(raw=raw))
    answer = llm_assistant.ask(QUESTION, mode="llm")
    assert len(fake_llm.requests) == 1
    assert answer.mode == "extractive" and answer.grounded and answer.notices == (UNAVAILABLE,)


def test_not_grounded_retrieval_does_not_call_the_model(llm_assistant, fake_llm):
    answer = llm_assistant.ask("明天会下雨吗", mode="llm")
    assert fake_llm.requests == []
    assert not answer.grounded and answer.citations == ()
    assert answer.answer == llm_assistant.ask("明天会下雨吗").answer


def test_role_question_uses_the_checklist_prompt_over_duty_sentences(llm_assistant, fake_llm):
    def checklist(body: dict) -> str:
        from fake_openai import Recorded

        passages = Recorded(body, {}).passages()
        return "班主任的安全职责：\n" + "\n".join(f"- {n}「{text.strip()}」[{n}]" for n, (_, _, text) in sorted(passages.items()))

    fake_llm.push(Reply(checklist))
    answer = llm_assistant.ask("我的安全职责是什么？", role="班主任", mode="llm")
    request = fake_llm.requests[0]
    assert render("llm", "checklist", role="班主任", question="我的安全职责是什么？", passages="").split("\n")[0] in request.user_prompt
    assert answer.grounded and len(answer.citations) == len(request.passages()) >= 5
    assert all("班主任" in c.quote or "教" in c.quote or "负责" in c.quote for c in answer.citations)
    assert_citations_exact(llm_assistant, answer)


def test_llm_mode_without_configuration_names_the_variables(laws_kb_dir):
    assistant = make_assistant(laws_kb_dir)
    try:
        with pytest.raises(ConfigError, match="DUTY_LLM_BASE_URL and DUTY_LLM_MODEL"):
            assistant.ask(QUESTION, mode="llm")
        with pytest.raises(ConfigError, match="DUTY_LLM_BASE_URL"):
            list(assistant.ask_stream(QUESTION, mode="llm"))
    finally:
        assistant.close()
    partial = make_assistant(laws_kb_dir, llm_base_url="http://127.0.0.1:9/v1")
    try:
        with pytest.raises(ConfigError, match="needs DUTY_LLM_MODEL "):
            partial.ask(QUESTION, mode="llm")
    finally:
        partial.close()


def test_the_model_is_not_shown_kindergarten_texts_for_a_school_question(llm_assistant, fake_llm):
    from assistant.retrieve import RetrieverParams

    def first_passage(body: dict) -> str:
        return f"「{clause(passage_text(body, 1))}」[1]"

    fake_llm.push(Reply(first_passage))
    question = "初中的安全保卫人员要不要每年进行健康检查？"
    # without the ranking penalty a kindergarten article is the first hit; the prompt must still leave it out
    llm_assistant.retriever.params = RetrieverParams(level_penalty=1.0)
    first = llm_assistant.search(question, k=1)[0]
    answer = llm_assistant.ask(question, mode="llm")
    assert first.chunk.doc_title == "中华人民共和国学前教育法"
    sent = fake_llm.requests[0].passages()
    assert sent and all(title != "中华人民共和国学前教育法" for title, _, _ in sent.values())
    assert answer.grounded and answer.mode == "llm"
    assert_citations_exact(llm_assistant, answer)


def test_an_own_duty_question_no_text_answers_does_not_call_the_model(llm_assistant_factory, fake_llm, tmp_path):
    from tests.conftest import assistant_over

    docs = {"学校安全制度.md": "第一条 学校应当建立安全管理制度，每学期召开家长会，向家长通报学校安全工作情况。\n"}
    assistant_over(tmp_path, docs).close()
    assistant = llm_assistant_factory(tmp_path / "kb")
    answer = assistant.ask("我是家长，我的安全职责有哪些？", role="家长", mode="llm")
    assert fake_llm.requests == []
    assert not answer.grounded and answer.citations == ()
