"""Streaming LLM answers (SSE from the fake server): verified text streams, the final event is authoritative."""

from __future__ import annotations

from fake_openai import Reply
from helpers import QUESTION, assert_citations_exact, clause, passage_text

from assistant.prompts import render


def collect(events) -> tuple[list[str], object]:
    deltas, final = [], None
    for kind, value in events:
        if kind == "delta":
            deltas.append(value)
        else:
            assert final is None
            final = value
    return deltas, final


def mixed(body: dict) -> str:
    return ("校车驾驶人须符合条例规定的下列条件：\n"
            f"1. 「{clause(passage_text(body, 1))}」[1]\n"
            "2. 「校车驾驶人每天出车前必须接受酒精检测」[2]\n"
            f"3. 「{clause(passage_text(body, 2))}」[2][9]\n"
            "4. 驾驶人每月须体检一次[9]。")


def test_streamed_deltas_are_verified_and_add_up_to_the_final_answer(llm_assistant, fake_llm):
    fake_llm.push(Reply(mixed, chunk_size=3))
    deltas, final = collect(llm_assistant.ask_stream(QUESTION, mode="llm"))
    request = fake_llm.requests[0]
    assert request.body["stream"] is True
    assert len(deltas) >= 3 and "".join(deltas) == final.answer
    streamed = "".join(deltas)
    assert "酒精检测" not in streamed and "[9]" not in streamed and "每月须体检" not in streamed
    assert final.grounded and final.mode == "llm" and [c.n for c in final.citations] == [1, 2]
    assert f"「{clause(passage_text(request.body, 2))}」[2]" in final.answer
    assert [r.reason for r in final.removed_citations] == ["quote_not_found", "unknown_passage", "unknown_passage"]
    assert_citations_exact(llm_assistant, final)


def test_streamed_and_non_streamed_answers_agree(llm_assistant, fake_llm):
    fake_llm.push(Reply(mixed, chunk_size=2), Reply(mixed))
    _, streamed = collect(llm_assistant.ask_stream(QUESTION, mode="llm"))
    whole = llm_assistant.ask(QUESTION, mode="llm")
    assert streamed.answer == whole.answer and streamed.citations == whole.citations
    assert streamed.removed_citations == whole.removed_citations


def test_uncited_stream_shows_nothing_of_the_model_text(llm_assistant, fake_llm):
    fake_llm.push(Reply("校车驾驶人应当身体健康。驾驶经验要丰富。", chunk_size=2))
    deltas, final = collect(llm_assistant.ask_stream(QUESTION, mode="llm"))
    assert not final.grounded and "".join(deltas) == final.answer
    assert "身体健康" not in "".join(deltas)


def test_stream_hang_before_any_text_falls_back_to_extractive(llm_assistant_factory, fake_llm):
    assistant = llm_assistant_factory(llm_timeout_s=0.5, llm_max_retries=0)
    fake_llm.push(Reply(mixed, hang=3, hang_after=2))
    deltas, final = collect(assistant.ask_stream(QUESTION, mode="llm"))
    assert final.mode == "extractive" and final.notices == (render("llm", "notice_unavailable"),)
    assert "".join(deltas) == final.answer
    assert_citations_exact(assistant, final)


def test_stream_broken_after_verified_text_keeps_the_verified_part(llm_assistant_factory, fake_llm):
    assistant = llm_assistant_factory(llm_timeout_s=0.5, llm_max_retries=0)

    def long_answer(body: dict) -> str:
        return f"「{clause(passage_text(body, 1))}」[1]。\n" + "后面还有很长的内容" * 20

    fake_llm.push(Reply(long_answer, chunk_size=4, hang=3, hang_after=30))
    deltas, final = collect(assistant.ask_stream(QUESTION, mode="llm"))
    assert final.mode == "llm" and final.grounded and [c.n for c in final.citations] == [1]
    assert "".join(deltas) == final.answer and "后面还有" not in final.answer
    assert final.notices == (render("llm", "notice_interrupted"),)


def test_garbage_in_the_stream_falls_back_to_extractive(llm_assistant, fake_llm):
    fake_llm.push(Reply(stream_raw=["data: {not json\n\n", "data: [DONE]\n\n"]))
    deltas, final = collect(llm_assistant.ask_stream(QUESTION, mode="llm"))
    assert final.mode == "extractive" and final.notices == (render("llm", "notice_unavailable"),)
    assert "".join(deltas) == final.answer


def test_extractive_mode_streams_without_the_model(llm_assistant, fake_llm):
    deltas, final = collect(llm_assistant.ask_stream(QUESTION))
    assert fake_llm.requests == [] and final.mode == "extractive" and "".join(deltas) == final.answer
