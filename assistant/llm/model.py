"""The chat model: LangChain's OpenAI-compatible client, built from settings, with failures wrapped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from assistant.config import Settings
from assistant.errors import ConfigError, LLMError

Role = Literal["system", "user"]
Message = tuple[Role, str]
# Sent when no key is configured: local servers (vLLM, Ollama) ignore it, and an explicit value keeps the
# client from picking up an unrelated OPENAI_API_KEY from the environment and sending it elsewhere.
NO_API_KEY = "not-needed"


def require_llm_config(settings: Settings) -> None:
    """Raise ConfigError naming the missing DUTY_LLM_* variables."""
    missing = [name for name, value in (("DUTY_LLM_BASE_URL", settings.llm_base_url), ("DUTY_LLM_MODEL", settings.llm_model)) if not value]
    if missing:
        raise ConfigError(
            f"LLM mode needs {' and '.join(missing)} (e.g. DUTY_LLM_BASE_URL=https://api.deepseek.com/v1 "
            "DUTY_LLM_MODEL=deepseek-chat, plus DUTY_LLM_API_KEY if the server wants one); or use --mode extractive"
        )


def build_chat_model(settings: Settings, *, streaming: bool = False) -> Any:
    """A ``ChatOpenAI`` for the configured endpoint; retries (429, 5xx, timeouts) are the client's, bounded."""
    require_llm_config(settings)
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:  # pragma: no cover - langchain-openai is a main dependency
        raise ConfigError("LLM mode needs langchain-openai; run `pip install duty-assistant[llm]`") from exc
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key or NO_API_KEY,
        model=settings.llm_model,
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        temperature=settings.llm_temperature,
        streaming=streaming,
    )


class ChatClient:
    """Sends (role, text) messages and returns text; every failure surfaces as one LLMError."""

    def __init__(self, settings: Settings) -> None:
        self.model = build_chat_model(settings)
        self.stream_model = build_chat_model(settings, streaming=True)
        self.name = settings.llm_model or ""

    def complete(self, messages: Sequence[Message]) -> str:
        """The whole reply at once.

        Raises:
            LLMError: the server timed out, refused, failed after retries, or sent something malformed.
        """
        try:
            reply = self.model.invoke(_to_langchain(messages))
        except Exception as exc:
            raise _wrap(exc) from exc
        return _text_of(reply)

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        """The reply as text pieces, as they arrive.

        Raises:
            LLMError: as :meth:`complete`, possibly after some pieces were already yielded.
        """
        received = False
        try:
            for chunk in self.stream_model.stream(_to_langchain(messages)):
                text = _text_of(chunk, allow_empty=True)
                if text:
                    received = True
                    yield text
        except LLMError:
            raise
        except Exception as exc:
            raise _wrap(exc) from exc
        if not received:
            raise LLMError(f"the language model {self.name!r} streamed an empty reply")


def _to_langchain(messages: Sequence[Message]) -> list:
    from langchain_core.messages import HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage}
    return [kinds[role](content=text) for role, text in messages]


def _text_of(message: Any, *, allow_empty: bool = False) -> str:
    content = getattr(message, "content", None)
    if isinstance(content, list):  # content blocks; keep the text ones
        content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    if not isinstance(content, str) or (not content.strip() and not allow_empty):
        raise LLMError("the language model returned no text; check DUTY_LLM_MODEL and the server's logs")
    return content


def _wrap(exc: Exception) -> LLMError:
    """One line saying what failed, from the openai/httpx exception (names checked, not imported)."""
    kind = type(exc).__name__
    if "Timeout" in kind:
        what = "timed out (DUTY_LLM_TIMEOUT_S)"
    elif kind == "RateLimitError":
        what = "is rate-limiting requests (HTTP 429) after the allowed retries (DUTY_LLM_MAX_RETRIES)"
    elif kind == "APIConnectionError":
        what = "is unreachable; check DUTY_LLM_BASE_URL"
    elif kind == "AuthenticationError":
        what = "refused the API key; check DUTY_LLM_API_KEY"
    elif hasattr(exc, "status_code"):
        what = f"answered HTTP {exc.status_code}"
    else:
        what = f"sent a malformed response ({kind})"
    return LLMError(f"the language model {what}: {str(exc)[:200]}")
