"""Errors the library raises. Every message says what went wrong and what to do about it."""


class AssistantError(Exception):
    """Base class; the CLI prints the message on one line, the API maps subclasses to status codes."""


class ConfigError(AssistantError):
    """A setting is missing, malformed or contradicts the knowledge base."""


class CorpusError(AssistantError):
    """A policy file cannot be read or parsed."""


class KnowledgeBaseError(AssistantError):
    """The knowledge base is missing, locked, or built with something incompatible."""


class EmbedderMismatchError(KnowledgeBaseError):
    """Queries would be embedded by a different model than the one that built the index."""


class RetrievalError(AssistantError):
    """A query cannot be run (empty, too long, invalid options)."""


class LLMError(AssistantError):
    """The configured language model failed or returned something unusable."""
