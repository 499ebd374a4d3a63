"""Chunking: code by syntax tree, documents along their headings, anything else in windows.

    chunk_file(path, data, options) -> [Chunk]

`language_of(path)` names the chunker a file gets; `kind_of(language)` says whether its chunks
are ranked as code or as documentation.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from seekgate.context.chunking.code import LANGUAGES, chunk_code
from seekgate.context.chunking.docs import DOC_LANGUAGES, chunk_doc
from seekgate.context.chunking.windows import ChunkOptions, chunk_windows
from seekgate.context.types import Chunk, Kind

__all__ = ["ChunkOptions", "chunk_file", "kind_of", "language_of"]

_BY_SUFFIX = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx", ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp", ".ipp": "cpp",
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown", ".rst": "rst", ".html": "html", ".htm": "html", ".pdf": "pdf",
    ".txt": "text", ".adoc": "text", ".asciidoc": "text",
}  # fmt: skip
_DOC_NAMES = frozenset({"readme", "changelog", "changes", "history", "license", "copying", "authors", "contributing", "notice", "news"})


def language_of(path: str) -> str:
    """The chunker's name for a file: a programming language, a document format, or (for any
    other text) its extension, or "text"."""
    p = PurePosixPath(path)
    suffix = p.suffix.lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    if p.stem.lower() in _DOC_NAMES:
        return "text"
    return suffix.lstrip(".") or "text"


def kind_of(language: str) -> Kind:
    return "doc" if language in DOC_LANGUAGES else "code"


def chunk_file(path: str, data: bytes, options: ChunkOptions) -> list[Chunk]:
    language = language_of(path)
    if language == "pdf":
        return chunk_doc(path, language, data, options)
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    if language in LANGUAGES:
        return chunk_code(path, language, text, options)
    if language in DOC_LANGUAGES:
        return chunk_doc(path, language, text, options)
    return chunk_windows(path, language, text, options)
