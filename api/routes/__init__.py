"""One router per concern: ask/search, sessions, documents, OpenAI-compatible, health, the web page."""
