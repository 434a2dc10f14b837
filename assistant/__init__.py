"""一岗双责 policy assistant: answers school-safety duty questions from policy texts, with exact citations."""

__version__ = "0.1.0"
