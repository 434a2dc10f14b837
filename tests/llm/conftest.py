"""LLM-mode fixtures: one scripted OpenAI-compatible server per session on a loopback port, reset per test."""

from __future__ import annotations

import pytest
from fake_openai import FakeOpenAI

from tests.conftest import make_assistant


@pytest.fixture(scope="session")
def fake_llm_server():
    fake = FakeOpenAI()
    server, thread = fake.start()
    yield fake
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def fake_llm(fake_llm_server) -> FakeOpenAI:
    fake_llm_server.reset()
    yield fake_llm_server
    fake_llm_server.reset()


@pytest.fixture
def llm_assistant_factory(laws_kb_dir, fake_llm):
    """Build assistants on the shared laws KB talking to the fake server; closed after the test."""
    made = []

    def build(kb_dir=None, **overrides):
        settings = {"llm_base_url": fake_llm.url, "llm_model": "fake-model", "llm_api_key": "test-key",
                    "llm_timeout_s": 1.0, "llm_max_retries": 1, **overrides}
        assistant = make_assistant(kb_dir or laws_kb_dir, **settings)
        made.append(assistant)
        return assistant

    yield build
    for assistant in made:
        assistant.close()


@pytest.fixture
def llm_assistant(llm_assistant_factory):
    return llm_assistant_factory()
