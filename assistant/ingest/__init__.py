"""From files on disk to chunks: load (decode) → parse structure → chunk."""

from assistant.ingest.chunker import split_into_chunks
from assistant.ingest.loaders import SUPPORTED_SUFFIXES, LoadedFile, SkippedFile, discover_files, load_file
from assistant.ingest.metadata import document_meta
from assistant.ingest.parser import parse_structure

__all__ = [
    "SUPPORTED_SUFFIXES",
    "LoadedFile",
    "SkippedFile",
    "discover_files",
    "document_meta",
    "load_file",
    "parse_structure",
    "split_into_chunks",
]
