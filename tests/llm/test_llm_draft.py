"""LLM drafting of 述职报告 sections: same citation verification as answers, plus the fact check."""

from __future__ import annotations

import pytest
from fake_openai import Reply
from helpers import passage_text

from assistant.draft import DraftRequest, to_markdown
from assistant.prompts import render

FACTS = "本年度组织消防疏散演练4次。\n排查整改安全隐患23处。"
REQUEST = DraftRequest("校长", "某某镇中心校", 2026, FACTS, section="work")


def prose(body: dict, *, drills: str = "4次") -> str:
    return (f"本年度，本人牢记「{passage_text(body, 1).strip().rstrip('。')}」[1]，"
            f"组织消防疏散演练{drills}，排查整改安全隐患23处。\n"
            f"同时落实「{passage_text(body, 2).strip().rstrip('。')}」[2]的要求。")


@pytest.fixture
def drafter(llm_assistant):
    return llm_assistant.drafter("llm")


def test_llm_section_keeps_facts_and_verified_citations(drafter, llm_assistant, fake_llm):
    template = llm_assistant.drafter("template").draft(REQUEST)
    fake_llm.push(Reply(prose))
    draft = drafter.draft(REQUEST)
    section = draft.sections[0]
    prompt = fake_llm.requests[0].user_prompt
    assert "本年度组织消防疏散演练4次。" in prompt and "某某镇中心校" in prompt and section.heading in prompt
    assert draft.mode == "llm" and [b.kind for b in section.blocks] == ["prose", "prose"]
    assert "组织消防疏散演练4次" in section.text and "排查整改安全隐患23处" in section.text
    assert [c.n for c in section.citations] == [1, 2]
    for c, t in zip(section.citations, template.sections[0].citations, strict=False):
        assert c.chunk_id == t.chunk_id and t.quote.startswith(c.quote)
    for c in draft.citations:
        assert llm_assistant.kb.docs[llm_assistant.kb.chunks[c.chunk_id].doc_id].text[c.start : c.end] == c.quote
    assert not any("大模型" in n for n in draft.notices)
    assert "[1]" in to_markdown(draft)


def test_llm_section_that_changes_a_fact_falls_back_to_the_template(drafter, llm_assistant, fake_llm):
    fake_llm.push(Reply(lambda body: prose(body, drills="多次")))
    draft = drafter.draft(REQUEST)
    template = llm_assistant.drafter("template").draft(REQUEST)
    assert draft.mode == "template" and draft.sections == template.sections
    assert render("llm", "draft_notice_facts", heading=template.sections[0].heading, items="4") in draft.notices


def test_llm_section_without_verifiable_citations_falls_back(drafter, fake_llm):
    fake_llm.push(Reply("本人牢记「校长每天必须巡查校园三次」[1]，组织消防疏散演练4次，排查整改安全隐患23处。"))
    draft = drafter.draft(REQUEST)
    assert draft.mode == "template" and "巡查校园三次" not in draft.sections[0].text
    assert render("llm", "draft_notice_unverified", heading=draft.sections[0].heading) in draft.notices


def test_model_down_keeps_the_template_draft(drafter, fake_llm):
    fake_llm.push(Reply(status=500, headers={"x-should-retry": "false"}))
    draft = drafter.draft(REQUEST)
    assert draft.mode == "template" and render("llm", "draft_notice_unavailable") in draft.notices
    assert len(fake_llm.requests) == 1
